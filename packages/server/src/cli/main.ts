import { createRequire } from 'node:module';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig, signingAlgs, type SigningAlg } from '../config/defaults.js';
import { GatehouseError } from '../errors.js';
import { supportedGrantTypes } from '../oauth/client-rules.js';
import { ADMIN_API } from '../core.js';
import { DEFAULT_TENANT } from '../tenants/index.js';
import { commandStorage, runCommand, serve, type Output, type SecretSource } from './commands.js';

const program = new Command();
program
  .name('gatehouse')
  .description('Gatehouse identity and authorization server')
  // package.json of this package, from src/cli/ and dist/cli/ alike.
  .version((createRequire(import.meta.url)('../../package.json') as { version: string }).version, '-V, --version', 'print the version')
  .option('--json', 'print machine-readable JSON')
  .showHelpAfterError();

const out = (): Output => ({ json: Boolean(program.opts().json) });
const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);

program.command('serve').description('run the server').action(() => serve(loadConfig()));

const tenants = program.command('tenants').description('manage tenants');
tenants
  .command('create <name>')
  .option('--display-name <name>', 'human-readable name')
  .action((name: string, o: { displayName?: string }) => runCommand(out(), { kind: 'tenant.create', id: name, displayName: o.displayName }));
tenants.command('list').action(() => runCommand(out(), { kind: 'tenant.list' }));
tenants
  .command('update <name>')
  .description("change what the tenant's sign-in pages show")
  .option('--display-name <name>', 'human-readable name')
  .option('--logo <file>', 'a PNG, JPEG, GIF or WebP image (at most 256 KiB)')
  .option('--remove-logo', 'show no logo')
  .action((name: string, o: { displayName?: string; logo?: string; removeLogo?: boolean }) =>
    runCommand(out(), { kind: 'tenant.update', id: name, displayName: o.displayName, logo: o.logo, removeLogo: o.removeLogo ?? false }),
  );

const apis = program.command('apis').description('manage APIs (resource servers)');
apis
  .command('create')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--identifier <uri>', 'the audience, an absolute URI')
  .requiredOption('--scopes <list>', 'comma-separated scopes', list)
  .option('--name <name>')
  .option('--ttl <seconds>', 'access-token lifetime in seconds', (v) => Number(v))
  .action((o: { tenant: string; identifier: string; scopes: string[]; name?: string; ttl?: number }) =>
    runCommand(out(), { kind: 'api.create', tenant: o.tenant, identifier: o.identifier, scopes: o.scopes, name: o.name, ttl: o.ttl }),
  );
apis.command('list').requiredOption('--tenant <tenant>').action((o: { tenant: string }) => runCommand(out(), { kind: 'api.list', tenant: o.tenant }));

const clients = program.command('clients').description('manage clients');
clients
  .command('create')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--name <name>')
  .requiredOption('--grant-types <list>', `comma-separated grant types: ${supportedGrantTypes.join(', ')}`, list)
  .option('--api <uri>', 'API the client may call')
  .option('--scopes <list>', 'comma-separated scopes it may request for --api', list)
  .option('--redirect-uris <list>', 'comma-separated redirect URIs (authorization_code; matched exactly)', list)
  .option('--post-logout-redirect-uris <list>', 'comma-separated URIs logout may return to (matched exactly)', list)
  .option('--public', 'a public client (browser or native app): no secret, PKCE only')
  .option('--first-party', 'your own application: users are not asked for consent')
  .addOption(new Option('--auth-method <method>', 'token endpoint auth method').choices(['client_secret_basic', 'client_secret_post']))
  .addOption(new Option('--id-token-alg <alg>', "how its ID tokens are signed: the tenant's default algorithm or RS256 (the default)").choices([...signingAlgs]))
  .action(
    (o: {
      tenant: string;
      name: string;
      grantTypes: string[];
      api?: string;
      scopes?: string[];
      redirectUris?: string[];
      postLogoutRedirectUris?: string[];
      public?: boolean;
      firstParty?: boolean;
      authMethod?: 'client_secret_basic' | 'client_secret_post';
      idTokenAlg?: SigningAlg;
    }) =>
      runCommand(out(), {
        kind: 'client.create',
        tenant: o.tenant,
        name: o.name,
        grantTypes: o.grantTypes,
        api: o.api,
        scopes: o.scopes ?? [],
        redirectUris: o.redirectUris ?? [],
        postLogoutRedirectUris: o.postLogoutRedirectUris ?? [],
        public: o.public ?? false,
        firstParty: o.firstParty ?? false,
        authMethod: o.authMethod,
        idTokenAlg: o.idTokenAlg,
      }),
  );
clients.command('list').requiredOption('--tenant <tenant>').action((o: { tenant: string }) => runCommand(out(), { kind: 'client.list', tenant: o.tenant }));
clients
  .command('rotate-secret')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--client-id <id>')
  .option('--grace <seconds>', 'how long the previous secret keeps working', (v) => Number(v))
  .action((o: { tenant: string; clientId: string; grace?: number }) => runCommand(out(), { kind: 'client.rotate', tenant: o.tenant, clientId: o.clientId, grace: o.grace }));

const keys = program.command('keys').description('manage signing keys');
keys
  .command('rotate')
  .requiredOption('--tenant <tenant>')
  .addOption(new Option('--alg <alg>', 'algorithm of the new key').choices([...signingAlgs]))
  .action((o: { tenant: string; alg?: SigningAlg }) => runCommand(out(), { kind: 'key.rotate', tenant: o.tenant, alg: o.alg }));
keys.command('list').requiredOption('--tenant <tenant>').action((o: { tenant: string }) => runCommand(out(), { kind: 'key.list', tenant: o.tenant }));

const authz = program.command('authz').description('permission service tools');
authz
  .command('validate <files...>')
  .description('evaluate SpiceDB validation files (schema, relationships, assertions); needs no server or database')
  .option('--consistency', 'also check that check, lookup-resources and lookup-subjects agree')
  .action(async (files: string[], o: { consistency?: boolean }) => {
    // Loaded on demand: the permission engine is not needed by the other commands.
    const { validateFiles } = await import('../authz/validate-files.js');
    const report = validateFiles(files, { consistency: o.consistency });
    if (program.opts().json) {
      console.log(JSON.stringify(report, null, 2));
    } else {
      for (const f of report.failures) console.log(`FAIL ${f.file} ${f.kind}: ${f.assertion}\n     expected ${f.expected}, got ${f.actual}`);
      console.log(`${report.passed} passed, ${report.failed} failed`);
    }
    if (report.failed > 0) process.exitCode = 1;
  });

// The permission service, on the database directly (like the commands above), audited as `cli`.
const schema = authz.command('schema').description('the tenant\'s permission schema (SpiceDB schema language)');
schema
  .command('write <file>')
  .description('replace the schema with FILE (- for stdin); refused with line and column when invalid')
  .requiredOption('--tenant <tenant>')
  .action((file: string, o: { tenant: string }) => runCommand(out(), { kind: 'authz.schema.write', tenant: o.tenant, file }));
schema
  .command('read')
  .description('print the schema')
  .requiredOption('--tenant <tenant>')
  .action((o: { tenant: string }) => runCommand(out(), { kind: 'authz.schema.read', tenant: o.tenant }));

const relationships = authz.command('relationships').description('relationships in SpiceDB syntax: type:id#relation@subjectType:subjectId[#subjectRelation]');
relationships
  .command('write <relationships...>')
  .description('create or replace (touch) relationships, in one transaction')
  .requiredOption('--tenant <tenant>')
  .action((rels: string[], o: { tenant: string }) => runCommand(out(), { kind: 'authz.relationships.write', tenant: o.tenant, relationships: rels }));
relationships
  .command('delete <relationships...>')
  .description('delete relationships where present, in one transaction')
  .requiredOption('--tenant <tenant>')
  .action((rels: string[], o: { tenant: string }) => runCommand(out(), { kind: 'authz.relationships.delete', tenant: o.tenant, relationships: rels }));
relationships
  .command('import <file>')
  .description('touch every relationship of FILE (- for stdin): one per line, blank lines and # or // comments skipped; all checked before any is written')
  .requiredOption('--tenant <tenant>')
  .action((file: string, o: { tenant: string }) => runCommand(out(), { kind: 'authz.relationships.import', tenant: o.tenant, file }));
relationships
  .command('read')
  .description('print the relationships matching a filter, one per line')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--resource-type <type>')
  .option('--resource-id <id>')
  .option('--relation <relation>')
  .option('--subject <subject>', 'a subject type (user), a subject (user:ann) or a subject set (group:eng#member)')
  .action((o: { tenant: string; resourceType: string; resourceId?: string; relation?: string; subject?: string }) =>
    runCommand(out(), { kind: 'authz.relationships.read', tenant: o.tenant, resourceType: o.resourceType, resourceId: o.resourceId, relation: o.relation, subject: o.subject }),
  );

authz
  .command('check <resource> <permission> <subject>')
  .description('may SUBJECT (user:ann, group:eng#member) do PERMISSION on RESOURCE (document:plan)? Prints allowed, denied or conditional')
  .requiredOption('--tenant <tenant>')
  .option('--context <json>', 'caveat context (also the Cedar context), a JSON object')
  .option('--explain', 'also print why')
  .action((resource: string, permission: string, subject: string, o: { tenant: string; context?: string; explain?: boolean }) =>
    runCommand(out(), { kind: 'authz.check', tenant: o.tenant, resource, permission, subject, context: o.context, explain: o.explain }),
  );

const policies = authz.command('policies').description('the tenant\'s Cedar policies');
policies
  .command('write <file>')
  .description('replace the policies with FILE (- for stdin; an empty file removes them); refused when they do not parse')
  .requiredOption('--tenant <tenant>')
  .action((file: string, o: { tenant: string }) => runCommand(out(), { kind: 'authz.policies.write', tenant: o.tenant, file }));
policies
  .command('read')
  .description('print the policies')
  .requiredOption('--tenant <tenant>')
  .action((o: { tenant: string }) => runCommand(out(), { kind: 'authz.policies.read', tenant: o.tenant }));

// People who sign in, on the database directly, audited as `cli`. Passwords come from stdin
// only: an argument lands in shell history and in `ps` for everyone on the host.
const users = program.command('users').description('manage the users of a tenant (people who sign in)');
const refusedPassword = () => new Option('--password <password>', 'refused: use --password-stdin').hideHelp();
const noPasswordArgument = (o: { password?: string }) => {
  // The value is never echoed: the message names the flag only.
  if (o.password !== undefined) throw new GatehouseError('CLI_USAGE', 2, '--password is refused (shell history, ps); pipe the password in with --password-stdin');
};
users
  .command('create')
  .description('create a user; with --password-stdin, its password is read from stdin')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--email <email>', 'unique in the tenant, compared case-insensitively')
  .option('--name <name>', 'full name (the `name` claim)')
  .option('--email-verified', 'the address is known to be the user\'s')
  .option('--password-stdin', 'read the password from stdin (one trailing newline is dropped)')
  .addOption(refusedPassword())
  .action((o: { tenant: string; email: string; name?: string; emailVerified?: boolean; passwordStdin?: boolean; password?: string }) => {
    noPasswordArgument(o);
    return runCommand(out(), { kind: 'user.create', tenant: o.tenant, email: o.email, name: o.name, emailVerified: o.emailVerified ?? false, passwordStdin: o.passwordStdin ?? false });
  });
users
  .command('list')
  .description('print the users of a tenant, ordered by email')
  .requiredOption('--tenant <tenant>')
  .option('--email-prefix <prefix>', 'only emails starting with this (case-insensitive)')
  .action((o: { tenant: string; emailPrefix?: string }) => runCommand(out(), { kind: 'user.list', tenant: o.tenant, emailPrefix: o.emailPrefix }));
for (const [name, description] of [
  ['disable', 'stop a user signing in; ends their sessions and revokes their refresh tokens'],
  ['enable', 'let a disabled user sign in again'],
  ['delete', 'delete a user; ends their sessions and revokes their refresh tokens'],
] as const) {
  users
    .command(`${name} <user>`)
    .description(`${description} (USER: an id or an email address)`)
    .requiredOption('--tenant <tenant>')
    .action((user: string, o: { tenant: string }) => runCommand(out(), { kind: `user.${name}`, tenant: o.tenant, user }));
}
users
  .command('reset-password <user>')
  .description('set a new password read from stdin; ends the user\'s sessions (USER: an id or an email address)')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--password-stdin', 'read the password from stdin (one trailing newline is dropped)')
  .addOption(refusedPassword())
  .action((user: string, o: { tenant: string; password?: string }) => {
    noPasswordArgument(o);
    return runCommand(out(), { kind: 'user.reset-password', tenant: o.tenant, user });
  });

program
  .command('token')
  .description('get a client-credentials access token from the running server')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--client-id <id>')
  .option('--client-secret-stdin', 'read the client secret from stdin (one trailing newline is dropped)')
  .option('--client-secret <secret>', 'discouraged: the secret lands in shell history and `ps`; use --client-secret-stdin or GATEHOUSE_CLIENT_SECRET')
  .option('--resource <uri>', 'the API (audience)')
  .option('--scope <scopes>', 'space-separated scopes')
  .action((o: { tenant: string; clientId: string; clientSecret?: string; clientSecretStdin?: boolean; resource?: string; scope?: string }) => {
    const secret = clientSecretSource(o);
    return runCommand(out(), { kind: 'token', tenant: o.tenant, clientId: o.clientId, secret, resource: o.resource, scope: o.scope });
  });

program
  .command('admin-token')
  .description('get a fresh admin API token (for urn:gatehouse:admin) from the running server, e.g. TOKEN=$(gatehouse admin-token --client-secret-stdin < bootstrap.secret)')
  .option('--client-id <id>', 'an admin client of the default tenant', 'gatehouse-bootstrap')
  .option('--client-secret-stdin', 'read the client secret from stdin (one trailing newline is dropped); else GATEHOUSE_CLIENT_SECRET')
  .option('--scope <scopes>', 'space-separated admin scopes, e.g. admin:read (default: all the client may have)')
  .action((o: { clientId: string; clientSecretStdin?: boolean; scope?: string }) => {
    const secret = clientSecretSource(o);
    return runCommand(out(), { kind: 'token', tenant: DEFAULT_TENANT, clientId: o.clientId, secret, resource: ADMIN_API.identifier, scope: o.scope });
  });

/**
 * Where `gatehouse token` takes the secret from: stdin, GATEHOUSE_CLIENT_SECRET, or (with a
 * warning, kept for scripts written before) the --client-secret argument.
 */
function clientSecretSource(o: { clientSecret?: string; clientSecretStdin?: boolean }): SecretSource {
  if (o.clientSecret !== undefined && o.clientSecretStdin) throw new GatehouseError('CLI_USAGE', 2, '--client-secret and --client-secret-stdin exclude each other');
  if (o.clientSecretStdin) return { from: 'stdin' };
  if (o.clientSecret !== undefined) {
    console.error('gatehouse: warning: --client-secret puts the secret in shell history and in `ps` for every local user; pipe it to --client-secret-stdin or set GATEHOUSE_CLIENT_SECRET');
    return { from: 'argument', value: o.clientSecret };
  }
  const fromEnv = process.env.GATEHOUSE_CLIENT_SECRET;
  if (fromEnv) return { from: 'argument', value: fromEnv };
  throw new GatehouseError('CLI_USAGE', 2, "no client secret: pipe it in with --client-secret-stdin (printf '%s' \"$SECRET\" | gatehouse token …) or set GATEHOUSE_CLIENT_SECRET");
}

program.parseAsync().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof GatehouseError) {
    // `details` carries what a script may need, e.g. the line and column of a schema error.
    if (program.opts().json) {
      console.error(JSON.stringify({ code: error.code, message: error.message, ...(error instanceof GatehouseError && error.details ? { details: error.details } : {}), ...(commandStorage ? { storage: commandStorage } : {}) }));
    }
    else console.error(`gatehouse: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
});
