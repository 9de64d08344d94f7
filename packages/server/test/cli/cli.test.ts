import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { decode, startServer, type TestServer } from '../helpers.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function gatehouse(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', main, ...args], { env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'silent', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function eventually(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 250; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

// The CLI works on the server's own database; the running server sees its writes through
// the change feed (SQLite polling here).
describe('gatehouse CLI', () => {
  let server: TestServer;
  let env: Record<string, string>;

  before(async () => {
    server = await startServer({ listen: true });
    env = { GATEHOUSE_DATA_DIR: server.config.dataDir, GATEHOUSE_PORT: String(server.config.port), GATEHOUSE_PUBLIC_URL: server.url };
  });
  after(() => server.close());

  it('creates a tenant, an API and a client, then gets a token from the running server', async () => {
    const tenant = await gatehouse(['--json', 'tenants', 'create', 'shop'], env);
    assert.equal(tenant.code, 0, tenant.stderr);
    assert.equal(JSON.parse(tenant.stdout).issuer, `${server.url}/t/shop`);

    const api = await gatehouse(['--json', 'apis', 'create', '--tenant', 'shop', '--identifier', 'https://orders.shop.test', '--scopes', 'orders:read,orders:write', '--ttl', '300'], env);
    assert.equal(api.code, 0, api.stderr);
    assert.deepEqual(JSON.parse(api.stdout).scopes, ['orders:read', 'orders:write']);

    const created = await gatehouse(
      ['--json', 'clients', 'create', '--tenant', 'shop', '--name', 'fulfilment', '--grant-types', 'client_credentials', '--api', 'https://orders.shop.test', '--scopes', 'orders:read'],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const { client_id, client_secret } = JSON.parse(created.stdout);
    assert.match(client_id, /^cl_/);
    assert.ok(client_secret.length >= 43);

    const token = await gatehouse(['--json', 'token', '--tenant', 'shop', '--client-id', client_id, '--client-secret', client_secret], env);
    assert.equal(token.code, 0, token.stderr);
    const json = JSON.parse(token.stdout);
    assert.equal(json.expires_in, 300);
    const { payload } = decode(json.access_token);
    assert.equal(payload.iss, `${server.url}/t/shop`);
    assert.equal(payload.scope, 'orders:read');

    const plain = await gatehouse(['token', '--tenant', 'shop', '--client-id', client_id, '--client-secret', client_secret], env);
    assert.equal(plain.stdout.trim().split('.').length, 3);
  });

  it('registers applications people sign in to: --public, --first-party, exact redirect and logout URIs', async () => {
    const spa = await gatehouse(
      [
        '--json',
        'clients',
        'create',
        '--tenant',
        'default',
        '--name',
        'dashboard',
        '--grant-types',
        'authorization_code,refresh_token',
        '--redirect-uris',
        'https://dash.test/callback,http://localhost:5173/callback',
        '--post-logout-redirect-uris',
        'https://dash.test/',
        '--public',
        '--first-party',
      ],
      env,
    );
    assert.equal(spa.code, 0, spa.stderr);
    const created = JSON.parse(spa.stdout);
    assert.equal(created.client_secret, undefined);
    const stored = await server.core.catalog.getClient('default', created.client_id);
    assert.deepEqual(
      [stored.type, stored.authMethod, stored.firstParty, stored.grantTypes, stored.redirectUris, stored.postLogoutRedirectUris],
      ['public', 'none', true, ['authorization_code', 'refresh_token'], ['https://dash.test/callback', 'http://localhost:5173/callback'], ['https://dash.test/']],
    );
    const human = await gatehouse(['clients', 'create', '--tenant', 'default', '--name', 'app', '--grant-types', 'authorization_code', '--redirect-uris', 'com.example.app:/cb', '--public'], env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /public client: no secret/);
    const refused = await gatehouse(['--json', 'clients', 'create', '--tenant', 'default', '--name', 'web', '--grant-types', 'authorization_code', '--redirect-uris', 'http://web.test/cb'], env);
    assert.equal(refused.code, 1);
    assert.equal(JSON.parse(refused.stderr).code, 'OAUTH_REDIRECT_URI_INVALID');
  });

  it('rotates a key; the running server signs with it once the change reaches it', async () => {
    const rotated = await gatehouse(['--json', 'keys', 'rotate', '--tenant', 'default', '--alg', 'EdDSA'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    const { kid, alg } = JSON.parse(rotated.stdout);
    assert.equal(alg, 'EdDSA');
    await eventually(async () => {
      const jwks = await (await fetch(`${server.url}/t/default/jwks`)).json() as { keys: { kid: string }[] };
      return jwks.keys[0]?.kid === kid;
    }, 'the new key in JWKS');
  });

  it('rotates a client secret and prints the new one once', async () => {
    const created = JSON.parse((await gatehouse(['--json', 'clients', 'create', '--tenant', 'default', '--name', 'r', '--grant-types', 'client_credentials'], env)).stdout);
    const rotated = await gatehouse(['--json', 'clients', 'rotate-secret', '--tenant', 'default', '--client-id', created.client_id, '--grace', '0'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.notEqual(JSON.parse(rotated.stdout).client_secret, created.client_secret);
  });

  it('keeps --json output parseable on a first run, printing the generated-master-key warning on stderr', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'gatehouse-cli-fresh-'));
    try {
      const first = await gatehouse(['--json', 'tenants', 'list'], { GATEHOUSE_DATA_DIR: fresh });
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(JSON.parse(first.stdout).tenants.map((t: { id: string }) => t.id), ['default']);
      assert.match(first.stderr, /generated a development master key/);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('exits non-zero with a clear message on bad input and changes nothing', async () => {
    const dup = await gatehouse(['tenants', 'create', 'shop'], env);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /Tenant "shop" already exists/);
    const badAlg = await gatehouse(['keys', 'rotate', '--tenant', 'default', '--alg', 'HS256'], env);
    assert.notEqual(badAlg.code, 0);
    const badScope = await gatehouse(['--json', 'clients', 'create', '--tenant', 'shop', '--name', 'x', '--grant-types', 'client_credentials', '--api', 'https://orders.shop.test', '--scopes', 'orders:delete'], env);
    assert.equal(badScope.code, 1);
    assert.equal(JSON.parse(badScope.stderr).code, 'OAUTH_SCOPE_NOT_IN_API');
    const badConfig = await gatehouse(['tenants', 'list'], { ...env, GATEHOUSE_PORT: 'abc' });
    assert.equal(badConfig.code, 1);
    assert.match(badConfig.stderr, /GATEHOUSE_PORT/);
    const badSecret = await gatehouse(['token', '--tenant', 'shop', '--client-id', 'cl_x', '--client-secret', 'nope'], env);
    assert.equal(badSecret.code, 1);
    assert.match(badSecret.stderr, /invalid_client/);
    const clients = (await server.core.catalog.listClients('shop')).length;
    assert.equal(clients, 1);
  });
});
