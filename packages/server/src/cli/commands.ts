import { loadConfig, type Config, type SigningAlg } from '../config/defaults.js';
import { createCore, type Core } from '../core.js';
import { GatehouseError } from '../errors.js';
import { createApp } from '../http/app.js';

export interface Output {
  json: boolean;
}

export type Command =
  | { kind: 'tenant.create'; id: string; displayName?: string }
  | { kind: 'tenant.list' }
  | { kind: 'api.create'; tenant: string; identifier: string; scopes: string[]; name?: string; ttl?: number }
  | { kind: 'api.list'; tenant: string }
  | { kind: 'client.create'; tenant: string; name: string; grantTypes: string[]; api?: string; scopes: string[]; authMethod?: 'client_secret_basic' | 'client_secret_post' }
  | { kind: 'client.list'; tenant: string }
  | { kind: 'client.rotate'; tenant: string; clientId: string; grace?: number }
  | { kind: 'key.rotate'; tenant: string; alg?: SigningAlg }
  | { kind: 'key.list'; tenant: string }
  | { kind: 'token'; tenant: string; clientId: string; clientSecret: string; resource?: string; scope?: string };

function print(output: Output, value: Record<string, unknown>, human: string): void {
  console.log(output.json ? JSON.stringify(value, null, 2) : human);
}

/** The CLI works on the same database as the server; a running server sees its writes through the change feed. */
export async function runCommand(output: Output, command: Command): Promise<void> {
  const config = loadConfig();
  if (command.kind === 'token') return requestToken(output, config, command);
  const core = await createCore(config, { logger: (await import('pino')).default({ level: 'warn' }) });
  try {
    await core.ensureDefaults();
    await execute(core, output, command);
  } finally {
    await core.close();
  }
}

function audit(core: Core, tenantId: string, action: Parameters<Core['audit']['record']>[0]['action'], target: string, details?: Record<string, unknown>) {
  core.audit.record({ tenantId, time: core.clock(), actor: 'cli', action, target, result: 'success', details: details ?? null });
}

async function execute(core: Core, output: Output, command: Exclude<Command, { kind: 'token' }>): Promise<void> {
  switch (command.kind) {
    case 'tenant.create': {
      const tenant = await core.tenants.create(command.id, command.displayName);
      audit(core, tenant.id, 'tenant.created', tenant.id);
      const issuer = core.tenants.issuerFor(tenant.id);
      return print(output, { id: tenant.id, display_name: tenant.displayName, issuer }, `created tenant ${tenant.id}\nissuer: ${issuer}`);
    }
    case 'tenant.list': {
      const tenants = await core.tenants.list();
      return print(output, { tenants: tenants.map((t) => ({ id: t.id, issuer: core.tenants.issuerFor(t.id) })) }, tenants.map((t) => `${t.id}\t${core.tenants.issuerFor(t.id)}`).join('\n'));
    }
    case 'api.create': {
      await core.tenants.get(command.tenant);
      const api = await core.catalog.createApi(command.tenant, { identifier: command.identifier, scopes: command.scopes, name: command.name, accessTokenTtl: command.ttl });
      audit(core, command.tenant, 'api.created', api.identifier, { scopes: api.scopes });
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
      const { client, clientSecret } = await core.catalog.createClient(command.tenant, {
        name: command.name,
        grantTypes: command.grantTypes,
        apis: command.api ? { [command.api]: command.scopes } : {},
        authMethod: command.authMethod,
      });
      audit(core, command.tenant, 'client.created', client.clientId, { grant_types: client.grantTypes });
      return print(
        output,
        { client_id: client.clientId, client_secret: clientSecret, token_endpoint_auth_method: client.authMethod },
        `client_id:     ${client.clientId}\nclient_secret: ${clientSecret}\n(the secret is shown once; store it now)`,
      );
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
      audit(core, command.tenant, 'client.secret_rotated', command.clientId, { previous_secrets_expire_at: until });
      return print(output, { client_id: command.clientId, client_secret: rotated.clientSecret, previous_secrets_expire_at: until }, `client_secret: ${rotated.clientSecret}\nprevious secrets work until ${until}`);
    }
    case 'key.rotate': {
      await core.tenants.get(command.tenant);
      const rotated = await core.keys.rotate(command.tenant, command.alg);
      audit(core, command.tenant, 'key.rotated', rotated.kid, { alg: rotated.alg, previous_kid: rotated.previousKid });
      const retire = rotated.previousRetireAt === null ? null : new Date(rotated.previousRetireAt).toISOString();
      return print(
        output,
        { kid: rotated.kid, alg: rotated.alg, previous_kid: rotated.previousKid, previous_retire_at: retire },
        `active key ${rotated.kid} (${rotated.alg})${rotated.previousKid ? `\nprevious key ${rotated.previousKid} retires at ${retire}` : ''}`,
      );
    }
    case 'key.list': {
      await core.tenants.get(command.tenant);
      const keys = await core.keys.list(command.tenant);
      return print(output, { keys: keys.map((k) => ({ kid: k.kid, alg: k.alg, status: k.status })) }, keys.map((k) => `${k.kid}\t${k.alg}\t${k.status}`).join('\n'));
    }
  }
}

async function requestToken(output: Output, config: Config, command: Extract<Command, { kind: 'token' }>): Promise<void> {
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (command.resource) body.set('resource', command.resource);
  if (command.scope) body.set('scope', command.scope);
  const basic = Buffer.from(`${encodeURIComponent(command.clientId)}:${encodeURIComponent(command.clientSecret)}`).toString('base64');
  const url = `${config.publicUrl}/t/${encodeURIComponent(command.tenant)}/token`;
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body });
  } catch {
    throw new GatehouseError('CLI_SERVER_UNREACHABLE', 1, `cannot reach ${url}: is \`gatehouse serve\` running?`);
  }
  const json = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new GatehouseError('CLI_TOKEN_REFUSED', response.status, `${json.error}: ${json.error_description ?? ''}`);
  print(output, json, String(json.access_token));
}

/** `gatehouse serve`: first-start bootstrap, then listen until SIGINT/SIGTERM. */
export async function serve(config: Config): Promise<void> {
  const started = performance.now();
  const core = await createCore(config);
  await core.ensureDefaults();
  const bootstrap = await core.bootstrapAdminClient();
  const app = await createApp(core);
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    // A host without IPv6 cannot bind the dual-stack default; IPv4 alone is the next best.
    if (config.host !== '::' || (error as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT') throw error;
    await app.listen({ port: config.port, host: '0.0.0.0' });
  }
  if (bootstrap) {
    // Printed once, on stdout, never through the logger: the secret exists nowhere else.
    process.stdout.write(
      [
        '',
        '  Gatehouse bootstrap admin client (shown once; store the secret now):',
        `    client_id:     ${bootstrap.clientId}`,
        `    client_secret: ${bootstrap.clientSecret}`,
        `    token:         npx gatehouse token --tenant default --client-id ${bootstrap.clientId} --client-secret <secret> --resource urn:gatehouse:admin`,
        '',
      ].join('\n') + '\n',
    );
  }
  core.logger.info({ url: config.publicUrl, readyMs: Math.round(performance.now() - started) }, 'gatehouse ready');
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
