import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { formatRelationship, parseObjectRef, parseRelationship, parseSubjectRef } from '../authz/relationships/index.js';
import type { RelationshipFilter, RelationshipUpdate } from '../authz/store-types.js';
import type { Relationship } from '../authz/types.js';
import { ConfigError, loadConfig, unknownVariables, type Config, type SigningAlg } from '../config/defaults.js';
import { createCore, type Core } from '../core.js';
import { GatehouseError } from '../errors.js';
import { userView, type User } from '../identity/index.js';
import { ID_TOKEN_DEFAULT_ALG } from '../keys/index.js';
import { postgresTarget, SQLITE_FILE } from '../store/database.js';

export interface Output {
  json: boolean;
}

export type Command =
  | { kind: 'tenant.create'; id: string; displayName?: string }
  | { kind: 'tenant.update'; id: string; displayName?: string; logo?: string; removeLogo: boolean }
  | { kind: 'tenant.list' }
  | { kind: 'api.create'; tenant: string; identifier: string; scopes: string[]; name?: string; ttl?: number }
  | { kind: 'api.list'; tenant: string }
  | {
      kind: 'client.create';
      tenant: string;
      name: string;
      grantTypes: string[];
      api?: string;
      scopes: string[];
      redirectUris: string[];
      postLogoutRedirectUris: string[];
      public: boolean;
      firstParty: boolean;
      authMethod?: 'client_secret_basic' | 'client_secret_post';
      idTokenAlg?: SigningAlg;
    }
  | { kind: 'client.list'; tenant: string }
  | { kind: 'client.rotate'; tenant: string; clientId: string; grace?: number }
  | { kind: 'key.rotate'; tenant: string; alg?: SigningAlg }
  | { kind: 'key.list'; tenant: string }
  | { kind: 'token'; tenant: string; clientId: string; secret: SecretSource; resource?: string; scope?: string }
  | AuthzCommand
  | UserCommand;

/** The user commands; `user` is an id (`usr_…`) or an email address. */
export type UserCommand =
  | { kind: 'user.create'; tenant: string; email: string; name?: string; emailVerified: boolean; passwordStdin: boolean }
  | { kind: 'user.list'; tenant: string; emailPrefix?: string }
  | { kind: 'user.disable' | 'user.enable' | 'user.delete' | 'user.reset-password'; tenant: string; user: string };

/** The permission service commands; `file` is a path, or `-` for stdin. */
export type AuthzCommand =
  | { kind: 'authz.schema.write'; tenant: string; file: string }
  | { kind: 'authz.schema.read'; tenant: string }
  | { kind: 'authz.relationships.write'; tenant: string; relationships: string[] }
  | { kind: 'authz.relationships.delete'; tenant: string; relationships: string[] }
  | { kind: 'authz.relationships.import'; tenant: string; file: string }
  | { kind: 'authz.relationships.read'; tenant: string; resourceType: string; resourceId?: string; relation?: string; subject?: string }
  | { kind: 'authz.check'; tenant: string; resource: string; permission: string; subject: string; context?: string; explain?: boolean }
  | { kind: 'authz.policies.write'; tenant: string; file: string }
  | { kind: 'authz.policies.read'; tenant: string };

/** The image type by file name; the content is checked against it when stored. */
function logoTypeOf(file: string): string {
  const ext = file.toLowerCase().split('.').pop();
  return ext === 'jpg' || ext === 'jpeg' ? 'image/jpeg' : `image/${ext}`;
}

/** What a command shows, shown once its unit of work has committed (a change is never reported before it holds). */
type Shown = () => void;

function print(output: Output, value: Record<string, unknown>, human: string): Shown {
  return () => console.log(output.json ? JSON.stringify(value, null, 2) : human);
}

/** Which database the configuration points at, without credentials. */
export function storageOf(config: Config): { kind: 'sqlite'; path: string } | { kind: 'postgres'; target: string } {
  return config.databaseUrl ? { kind: 'postgres', target: postgresTarget(config.databaseUrl) } : { kind: 'sqlite', path: join(config.dataDir, SQLITE_FILE) };
}

export const describeStorage = (storage: ReturnType<typeof storageOf>) => (storage.kind === 'postgres' ? `PostgreSQL ${storage.target}` : `SQLite ${storage.path}`);

/** The storage the running command uses, for its error report (main.ts); undefined before it is known. */
export let commandStorage: ReturnType<typeof storageOf> | undefined;

/** Warns, on stderr, of GATEHOUSE_* variables that are no setting. */
export function warnUnknownVariables(): void {
  for (const { name, meant } of unknownVariables()) console.error(`gatehouse: warning: ${name} is not a Gatehouse setting and is ignored${meant ? ` (did you mean ${meant}?)` : ''}`);
}

/**
 * The CLI works on the same database as the server; a running server sees its writes through
 * the change feed. Every command that opens the database says which one on stderr (a line, or
 * with --json a `storage` member of the one JSON object stderr holds), so a CLI that lacks the
 * server's DATABASE_URL is seen writing to ./data at once.
 */
export async function runCommand(output: Output, command: Command): Promise<void> {
  const config = loadConfig();
  warnUnknownVariables();
  if (command.kind === 'token') return requestToken(output, config, command);
  commandStorage = storageOf(config);
  if (!output.json) console.error(`gatehouse: storage: ${describeStorage(commandStorage)}`);
  // Warnings go to stderr: stdout is the command's output, which `--json` promises is JSON.
  const { default: pino } = await import('pino');
  const core = await createCore(config, { logger: pino({ level: 'warn' }, pino.destination(2)) });
  try {
    await core.ensureDefaults();
    // A change and its audit event commit together; an import commits chunk by chunk, each with its event.
    const show = command.kind === 'authz.relationships.import' ? await execute(core, output, command) : await core.atomically(() => execute(core, output, command));
    show();
    if (output.json) console.error(JSON.stringify({ storage: commandStorage }));
  } finally {
    await core.close();
  }
}

function audit(
  core: Core,
  tenantId: string,
  action: Parameters<Core['audit']['record']>[0]['action'],
  target: string,
  details?: Record<string, unknown>,
  result: 'success' | 'failure' = 'success',
) {
  return core.audit.recordDurable({ tenantId, time: core.clock(), actor: 'cli', action, target, result, details: details ?? null });
}

async function execute(core: Core, output: Output, command: Exclude<Command, { kind: 'token' }>): Promise<Shown> {
  switch (command.kind) {
    case 'tenant.create': {
      const tenant = await core.tenants.create(command.id, command.displayName);
      await audit(core, tenant.id, 'tenant.created', tenant.id);
      const issuer = core.tenants.issuerFor(tenant.id);
      return print(output, { id: tenant.id, display_name: tenant.displayName, issuer }, `created tenant ${tenant.id}\nissuer: ${issuer}`);
    }
    case 'tenant.update': {
      if (command.logo && command.removeLogo) throw new GatehouseError('CLI_USAGE', 2, '--logo and --remove-logo exclude each other');
      if (!command.displayName && !command.logo && !command.removeLogo) throw new GatehouseError('CLI_USAGE', 2, 'nothing to change: give --display-name, --logo or --remove-logo');
      let tenant = await core.tenants.get(command.id);
      if (command.displayName !== undefined) tenant = await core.tenants.update(command.id, { displayName: command.displayName });
      if (command.logo || command.removeLogo) {
        const logo = command.logo ? { type: logoTypeOf(command.logo), data: await readFile(command.logo) } : null;
        await core.tenants.setLogo(command.id, logo);
        tenant = await core.tenants.get(command.id);
      }
      await audit(core, tenant.id, 'tenant.updated', tenant.id, { changed: [...(command.displayName ? ['display_name'] : []), ...(command.logo || command.removeLogo ? ['logo'] : [])] });
      return print(output, { id: tenant.id, display_name: tenant.displayName, logo: tenant.logoType ? `${core.tenants.issuerFor(tenant.id)}/logo` : null }, `updated tenant ${tenant.id}`);
    }
    case 'tenant.list': {
      const tenants = await core.tenants.list();
      return print(output, { tenants: tenants.map((t) => ({ id: t.id, issuer: core.tenants.issuerFor(t.id) })) }, tenants.map((t) => `${t.id}\t${core.tenants.issuerFor(t.id)}`).join('\n'));
    }
    case 'api.create': {
      await core.tenants.get(command.tenant);
      const api = await core.catalog.createApi(command.tenant, { identifier: command.identifier, scopes: command.scopes, name: command.name, accessTokenTtl: command.ttl });
      await audit(core, command.tenant, 'api.created', api.identifier, { scopes: api.scopes });
      return print(
        output,
        { id: api.id, identifier: api.identifier, scopes: api.scopes, access_token_ttl: api.accessTokenTtl },
        `created API ${api.identifier} (scopes: ${api.scopes.join(' ') || '-'}, token lifetime ${api.accessTokenTtl}s)`,
      );
    }
    case 'api.list': {
      await core.tenants.get(command.tenant);
      const apis = await core.catalog.listApis(command.tenant);
      return print(output, { apis: apis.map((a) => ({ identifier: a.identifier, scopes: a.scopes, access_token_ttl: a.accessTokenTtl })) }, apis.map((a) => `${a.identifier}\t${a.scopes.join(' ')}`).join('\n'));
    }
    case 'client.create': {
      await core.tenants.get(command.tenant);
      if (command.scopes.length > 0 && !command.api) throw new GatehouseError('CLI_USAGE', 2, '--scopes needs --api');
      if (command.public && command.authMethod) throw new GatehouseError('CLI_USAGE', 2, '--auth-method is for confidential clients; a --public client has none');
      const { client, clientSecret } = await core.catalog.createClient(command.tenant, {
        name: command.name,
        type: command.public ? 'public' : 'confidential',
        grantTypes: command.grantTypes,
        redirectUris: command.redirectUris,
        postLogoutRedirectUris: command.postLogoutRedirectUris,
        firstParty: command.firstParty,
        apis: command.api ? { [command.api]: command.scopes } : {},
        authMethod: command.authMethod,
        idTokenAlg: command.idTokenAlg,
      });
      await audit(core, command.tenant, 'client.created', client.clientId, { grant_types: client.grantTypes });
      const facts = {
        client_id: client.clientId,
        ...(clientSecret ? { client_secret: clientSecret } : {}),
        type: client.type,
        token_endpoint_auth_method: client.authMethod,
        grant_types: client.grantTypes,
        redirect_uris: client.redirectUris,
        post_logout_redirect_uris: client.postLogoutRedirectUris,
        first_party: client.firstParty,
        id_token_signed_response_alg: client.idTokenAlg ?? ID_TOKEN_DEFAULT_ALG,
      };
      const human = clientSecret
        ? `client_id:     ${client.clientId}\nclient_secret: ${clientSecret}\n(the secret is shown once; store it now)`
        : `client_id:     ${client.clientId}\n(public client: no secret; it must use PKCE)`;
      return print(output, facts, human);
    }
    case 'client.list': {
      await core.tenants.get(command.tenant);
      const clients = await core.catalog.listClients(command.tenant);
      return print(output, { clients: clients.map((c) => ({ client_id: c.clientId, name: c.name, grant_types: c.grantTypes, apis: c.apiScopes })) }, clients.map((c) => `${c.clientId}\t${c.name}`).join('\n'));
    }
    case 'client.rotate': {
      await core.tenants.get(command.tenant);
      const rotated = await core.catalog.rotateSecret(command.tenant, command.clientId, command.grace);
      const until = new Date(rotated.previousSecretsExpireAt).toISOString();
      await audit(core, command.tenant, 'client.secret_rotated', command.clientId, { previous_secrets_expire_at: until });
      return print(output, { client_id: command.clientId, client_secret: rotated.clientSecret, previous_secrets_expire_at: until }, `client_secret: ${rotated.clientSecret}\nprevious secrets work until ${until}`);
    }
    case 'key.rotate': {
      await core.tenants.get(command.tenant);
      const rotated = await core.keys.rotate(command.tenant, command.alg);
      await audit(core, command.tenant, 'key.rotated', rotated.kid, { alg: rotated.alg, id_token_kid: rotated.idTokenKid, previous_kid: rotated.previousKid });
      const retire = rotated.previousRetireAt === null ? null : new Date(rotated.previousRetireAt).toISOString();
      return print(
        output,
        { kid: rotated.kid, alg: rotated.alg, id_token_kid: rotated.idTokenKid, previous_kid: rotated.previousKid, previous_retire_at: retire },
        `active key ${rotated.kid} (${rotated.alg})${rotated.idTokenKid ? `\nRS256 key ${rotated.idTokenKid} (ID tokens of clients that chose no algorithm)` : ''}${rotated.previousKid ? `\nprevious keys retire at ${retire}` : ''}`,
      );
    }
    case 'key.list': {
      await core.tenants.get(command.tenant);
      const keys = await core.keys.list(command.tenant);
      return print(output, { keys: keys.map((k) => ({ kid: k.kid, alg: k.alg, status: k.status })) }, keys.map((k) => `${k.kid}\t${k.alg}\t${k.status}`).join('\n'));
    }
    case 'user.create':
    case 'user.list':
    case 'user.disable':
    case 'user.enable':
    case 'user.delete':
    case 'user.reset-password':
      return executeUsers(core, output, command);
    default:
      return executeAuthz(core, output, command);
  }
}

/** The users of a tenant, through the same service and audit actions as the API (identity/routes.ts). */
async function executeUsers(core: Core, output: Output, command: UserCommand): Promise<Shown> {
  await core.tenants.get(command.tenant);
  switch (command.kind) {
    case 'user.create': {
      const password = command.passwordStdin ? await readPassword() : undefined;
      const user = await core.users.create(command.tenant, { email: command.email, name: command.name, emailVerified: command.emailVerified, password });
      await audit(core, command.tenant, 'user.created', user.id, { email_verified: user.emailVerified, has_password: user.hasPassword });
      return print(output, userView(user), `created user ${user.id} (${user.email}${user.hasPassword ? ', with a password' : ', no password yet'})`);
    }
    case 'user.list': {
      const found: User[] = [];
      for (let after: string | undefined; ; ) {
        const page = await core.users.list(command.tenant, { emailPrefix: command.emailPrefix, limit: 1000, after });
        found.push(...page.users);
        if (!page.next) break;
        after = page.next;
      }
      const flags = (u: User) => [u.disabled ? 'disabled' : 'active', u.emailVerified ? 'verified' : 'unverified', u.hasPassword ? 'password' : 'no-password'].join(',');
      return print(output, { users: found.map(userView) }, found.map((u) => `${u.id}\t${u.email}\t${flags(u)}`).join('\n'));
    }
    case 'user.disable': {
      const user = await core.users.disable(command.tenant, (await core.users.resolve(command.tenant, command.user)).id);
      await audit(core, command.tenant, 'user.disabled', user.id);
      return print(output, userView(user), `disabled user ${user.id}; their sessions and refresh tokens are revoked`);
    }
    case 'user.enable': {
      const user = await core.users.enable(command.tenant, (await core.users.resolve(command.tenant, command.user)).id);
      await audit(core, command.tenant, 'user.enabled', user.id);
      return print(output, userView(user), `enabled user ${user.id}`);
    }
    case 'user.delete': {
      const { id } = await core.users.resolve(command.tenant, command.user);
      await core.users.delete(command.tenant, id);
      await audit(core, command.tenant, 'user.deleted', id);
      return print(output, { id, deleted: true }, `deleted user ${id}; their sessions and refresh tokens are revoked`);
    }
    case 'user.reset-password': {
      const password = await readPassword();
      const user = await core.users.setPassword(command.tenant, (await core.users.resolve(command.tenant, command.user)).id, password);
      await audit(core, command.tenant, 'user.password_reset', user.id);
      return print(output, userView(user), `new password set for user ${user.id}; their sessions and refresh tokens are revoked`);
    }
  }
}

/** A secret given to the CLI: piped to stdin, or already in hand (an environment variable). */
export type SecretSource = { from: 'stdin' } | { from: 'argument'; value: string };

/**
 * A secret piped to stdin, without the one newline `echo` or a here-string adds. A terminal
 * is refused rather than echoing what is typed.
 */
async function readPipedSecret(flag: string, example: string): Promise<string> {
  if (process.stdin.isTTY) throw new GatehouseError('CLI_USAGE', 2, `${flag} reads a piped secret, e.g. ${example}`);
  return (await readInput('-')).replace(/\r?\n$/, '');
}

function readPassword(): Promise<string> {
  return readPipedSecret('--password-stdin', "printf '%s' \"$PASSWORD\" | gatehouse users …");
}

/**
 * The permission service on the database directly, through the same service methods and
 * audit actions as the API (routes.ts), with `cli` as the actor.
 */
async function executeAuthz(core: Core, output: Output, command: AuthzCommand): Promise<Shown> {
  await core.tenants.get(command.tenant);
  switch (command.kind) {
    case 'authz.schema.write': {
      // A schema that does not compile, or would orphan stored relationships, is refused
      // before anything is stored; its error names the line and column.
      const result = await core.authz.writeSchema(command.tenant, await readInput(command.file));
      await audit(core, command.tenant, 'authz.schema_written', 'schema', { token: result.token });
      return print(output, result, `schema written (token ${result.token})`);
    }
    case 'authz.schema.read': {
      const text = (await core.authz.readSchema(command.tenant))?.text ?? '';
      return printText(output, { schema: text }, text);
    }
    case 'authz.relationships.write': {
      const updates = command.relationships.map((text): RelationshipUpdate => ({ operation: 'touch', relationship: parseRelationship(text) }));
      const result = await core.authz.writeRelationships(command.tenant, updates);
      await audit(core, command.tenant, 'authz.relationships_written', `${updates.length} updates`, { token: result.token, updates: described(updates) });
      return print(output, result, `touched ${plural(updates.length, 'relationship')} (token ${result.token})`);
    }
    case 'authz.relationships.delete': {
      // One transaction, as the write route does with `delete` updates: all or nothing.
      const updates = command.relationships.map((text): RelationshipUpdate => ({ operation: 'delete', relationship: parseRelationship(text) }));
      const result = await core.authz.writeRelationships(command.tenant, updates);
      await audit(core, command.tenant, 'authz.relationships_deleted', `${updates.length} relationships`, { token: result.token, updates: described(updates) });
      return print(output, result, `deleted ${plural(updates.length, 'relationship')} where present (token ${result.token})`);
    }
    case 'authz.relationships.import': {
      const result = await core.authz.importRelationships(command.tenant, await readInput(command.file), ({ index, written, token }) =>
        audit(core, command.tenant, 'authz.relationships_written', `import of ${written}`, { import_chunk: index, imported: written, token }),
      );
      return print(output, result, `imported ${plural(result.imported, 'relationship')} (token ${result.token})`);
    }
    case 'authz.relationships.read': {
      const found = (await readAll(core, command.tenant, readFilter(command))).map(formatRelationship);
      return printText(output, { relationships: found }, found.map((r) => `${r}\n`).join(''));
    }
    case 'authz.check': {
      const target = `${command.resource}#${command.permission}@${command.subject}`;
      const result = await core.authz.check(
        command.tenant,
        { resource: parseObjectRef(command.resource), permission: command.permission, subject: parseSubjectRef(command.subject), context: contextOf(command.context), explain: command.explain },
        // The CLI has no snapshot to reuse: answer from everything committed.
        { mode: 'fully_consistent' },
      );
      await audit(core, command.tenant, 'authz.check', target, { permissionship: result.permissionship, token: result.token, ...(result.policy ? { policy: result.policy } : {}) }, result.permissionship === 'allowed' ? 'success' : 'failure');
      // The API's check answer, field for field.
      const answer = {
        permissionship: result.permissionship,
        ...(result.missing ? { missing: result.missing } : {}),
        ...(result.policy ? { policy: result.policy } : {}),
        token: result.token,
        ...(result.explanation === undefined ? {} : { explanation: result.explanation }),
      };
      return print(output, answer, describeDecision(result));
    }
    case 'authz.policies.write': {
      const result = await core.authz.writePolicies(command.tenant, await readInput(command.file));
      await audit(core, command.tenant, 'authz.policies_written', 'policies', { token: result.token });
      return print(output, result, `policies written (token ${result.token})`);
    }
    case 'authz.policies.read': {
      const text = (await core.authz.readPolicies(command.tenant))?.text ?? '';
      return printText(output, { policies: text }, text);
    }
  }
}

/** Prints text as it is (no newline added, so `read` output can be written back unchanged). */
function printText(output: Output, value: Record<string, unknown>, text: string): Shown {
  return () => {
    if (output.json) console.log(JSON.stringify(value, null, 2));
    else process.stdout.write(text);
  };
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** The first updates, as the write route audits them. */
const described = (updates: RelationshipUpdate[]) => updates.slice(0, 20).map((u) => `${u.operation} ${formatRelationship(u.relationship)}`);

/** A file's text, or stdin's for `-`. */
async function readInput(file: string): Promise<string> {
  try {
    if (file !== '-') return await readFile(file, 'utf8');
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  } catch (error) {
    throw new GatehouseError('CLI_FILE_UNREADABLE', 1, `cannot read ${file === '-' ? 'stdin' : file}: ${(error as Error).message}`);
  }
}

/** `--subject` is a type (`user`), a direct subject (`user:ann`) or a subject set (`group:eng#member`). */
function readFilter(command: Extract<AuthzCommand, { kind: 'authz.relationships.read' }>): RelationshipFilter {
  const filter: RelationshipFilter = { resourceType: command.resourceType, resourceId: command.resourceId, relation: command.relation };
  if (command.subject === undefined) return filter;
  if (!command.subject.includes(':')) return { ...filter, subjectType: command.subject };
  const subject = parseSubjectRef(command.subject);
  return { ...filter, subjectType: subject.type, subjectId: subject.id, subjectRelation: subject.relation };
}

/** Every matching relationship, page by page (the store's cursor is the last row's key). */
async function readAll(core: Core, tenant: string, filter: RelationshipFilter): Promise<Relationship[]> {
  const found: Relationship[] = [];
  const limit = 1000;
  for (let after: string | undefined; ; ) {
    const page = await core.authz.readRelationships(tenant, filter, { limit, after });
    found.push(...page);
    const last = page[page.length - 1];
    if (page.length < limit || !last) return found;
    after = JSON.stringify([last.resourceId, last.relation, last.subjectType, last.subjectId, last.subjectRelation ?? '...']);
  }
}

function contextOf(json: string | undefined): Record<string, unknown> | undefined {
  if (json === undefined) return undefined;
  let context: unknown;
  try {
    context = JSON.parse(json);
  } catch (error) {
    throw new GatehouseError('CLI_USAGE', 2, `--context is not JSON: ${(error as Error).message}`);
  }
  if (typeof context !== 'object' || context === null || Array.isArray(context)) throw new GatehouseError('CLI_USAGE', 2, '--context must be a JSON object, e.g. \'{"ip":"10.0.0.1"}\'');
  return context as Record<string, unknown>;
}

function describeDecision(result: Awaited<ReturnType<Core['authz']['check']>>): string {
  const lines = [result.permissionship === 'conditional' && result.missing ? `conditional (missing: ${result.missing.join(', ')})` : result.permissionship];
  if (result.policy) lines.push(`policy: ${result.policy}`);
  const summary = (result.explanation as { summary?: unknown } | undefined)?.summary;
  if (typeof summary === 'string') lines.push(`why: ${summary}`);
  return lines.join('\n');
}

async function requestToken(output: Output, config: Config, command: Extract<Command, { kind: 'token' }>): Promise<void> {
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (command.resource) body.set('resource', command.resource);
  if (command.scope) body.set('scope', command.scope);
  const secret = command.secret.from === 'stdin' ? await readPipedSecret('--client-secret-stdin', "printf '%s' \"$SECRET\" | gatehouse token …") : command.secret.value;
  if (!secret) throw new GatehouseError('CLI_USAGE', 2, 'the client secret is empty');
  const basic = Buffer.from(`${encodeURIComponent(command.clientId)}:${encodeURIComponent(secret)}`).toString('base64');
  const url = `${config.publicUrl}/t/${encodeURIComponent(command.tenant)}/token`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body });
  } catch {
    throw new GatehouseError('CLI_SERVER_UNREACHABLE', 1, `cannot reach ${url}: is \`gatehouse serve\` running?`);
  }
  const json = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new GatehouseError('CLI_TOKEN_REFUSED', response.status, `${json.error}: ${json.error_description ?? ''}`);
  print(output, json, String(json.access_token))();
}

/**
 * The bootstrap admin secret exists nowhere else, so it is handed over once: written to
 * GATEHOUSE_BOOTSTRAP_SECRET_FILE (mode 0600) when set, else printed on stdout, never
 * through the logger. The token command shown reads it from stdin, not from an argument.
 */
function announceBootstrap(config: Config, bootstrap: { clientId: string; clientSecret: string }): void {
  const file = config.bootstrapSecretFile;
  if (file) {
    // Narrowed before the secret is written, in case the file already existed readable.
    const fd = openSync(file, 'w', 0o600);
    try {
      fchmodSync(fd, 0o600);
      writeSync(fd, bootstrap.clientSecret + '\n');
    } finally {
      closeSync(fd);
    }
  }
  const token = `npx gatehouse token --tenant default --client-id ${bootstrap.clientId} --resource urn:gatehouse:admin --client-secret-stdin < ${file ?? 'SECRET_FILE'}`;
  process.stdout.write(
    [
      '',
      file ? `  Gatehouse bootstrap admin client (its secret is in ${file}, mode 0600):` : '  Gatehouse bootstrap admin client (shown once; store the secret now):',
      `    client_id:     ${bootstrap.clientId}`,
      ...(file ? [] : [`    client_secret: ${bootstrap.clientSecret}`, "    store it:      (umask 077; cat > SECRET_FILE)   # paste the secret, then Ctrl-D"]),
      `    token:         ${token}`,
      '',
    ].join('\n') + '\n',
  );
}

/** The listen error of GATEHOUSE_PORT as the one line a person can act on; undefined for any other error. */
function portProblem(error: unknown, config: Config): ConfigError | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new ConfigError('GATEHOUSE_PORT', `port ${config.port} on ${config.host} is in use by another process`, 'stop that process, or set GATEHOUSE_PORT to a free port');
  if (code === 'EACCES') return new ConfigError('GATEHOUSE_PORT', `this user may not listen on port ${config.port}`, 'use a port above 1023 (and a proxy in front), or grant the capability to bind it');
  if (code === 'EADDRNOTAVAIL') return new ConfigError('GATEHOUSE_HOST', `${config.host} is no address of this machine`, 'set GATEHOUSE_HOST to one of its addresses, or :: for all');
  return undefined;
}

/** Binds the port for a moment and lets it go: refuses early what listen would refuse late. */
function portIsFree(config: Config): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => {
      // A host without IPv6 is handled at listen (serve falls back to IPv4).
      if ((error as NodeJS.ErrnoException).code === 'EAFNOSUPPORT') return resolve();
      reject(portProblem(error, config) ?? error);
    });
    probe.listen({ port: config.port, host: config.host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** `gatehouse serve`: first-start bootstrap, then listen until SIGINT/SIGTERM. */
export async function serve(config: Config): Promise<void> {
  const started = performance.now();
  warnUnknownVariables();
  // Before anything is created on disk: a port another process holds is one line, not a stack trace.
  await portIsFree(config);
  // Loaded here: the HTTP stack (Fastify, oidc-provider) is a third of every other command's start-up.
  const { createApp } = await import('../http/app.js');
  const core = await createCore(config);
  await core.ensureDefaults();
  const bootstrap = await core.bootstrapAdminClient();
  const app = await createApp(core);
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    // A host without IPv6 cannot bind the dual-stack default; IPv4 alone is the next best.
    if (config.host !== '::' || (error as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT') {
      await core.close();
      throw portProblem(error, config) ?? error;
    }
    await app.listen({ port: config.port, host: '0.0.0.0' }).catch(async (fallback: unknown) => {
      await core.close();
      throw portProblem(fallback, config) ?? fallback;
    });
  }
  await core.announcePublicUrl();
  if (bootstrap) announceBootstrap(config, bootstrap);
  core.logger.info({ url: config.publicUrl, storage: describeStorage(storageOf(config)), readyMs: Math.round(performance.now() - started) }, 'gatehouse ready');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    core.logger.info({ signal }, 'shutting down');
    await app.close();
    await core.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
