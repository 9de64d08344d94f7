import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { decode, freePort, startServer, type TestServer } from '../helpers.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function gatehouse(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', main, ...args], { env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'silent', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(stdin ?? '');
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

    const token = await gatehouse(['--json', 'token', '--tenant', 'shop', '--client-id', client_id, '--client-secret-stdin'], env, `${client_secret}\n`);
    assert.equal(token.code, 0, token.stderr);
    assert.equal(token.stderr, '');
    const json = JSON.parse(token.stdout);
    assert.equal(json.expires_in, 300);
    const { payload } = decode(json.access_token);
    assert.equal(payload.iss, `${server.url}/t/shop`);
    assert.equal(payload.scope, 'orders:read');

    const plain = await gatehouse(['token', '--tenant', 'shop', '--client-id', client_id], { ...env, GATEHOUSE_CLIENT_SECRET: client_secret });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout.trim().split('.').length, 3);
  });

  it('prints a fresh admin token with the bootstrap secret from stdin or the environment', async () => {
    const piped = await gatehouse(['admin-token', '--client-secret-stdin'], env, `${server.admin.clientSecret}\n`);
    assert.equal(piped.code, 0, piped.stderr);
    const token = piped.stdout.trim();
    assert.equal((await fetch(`${server.url}/api/v1/tenants`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    assert.equal(decode(token).payload.aud, 'urn:gatehouse:admin');
    const fromEnv = await gatehouse(['admin-token'], { ...env, GATEHOUSE_CLIENT_SECRET: server.admin.clientSecret });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.equal(decode(fromEnv.stdout.trim()).payload.scope, 'admin');
    // The bootstrap client holds `admin` only: a scope it may not have is named in the refusal.
    const narrowed = await gatehouse(['admin-token', '--scope', 'admin:read'], { ...env, GATEHOUSE_CLIENT_SECRET: server.admin.clientSecret });
    assert.equal(narrowed.code, 1);
    assert.match(narrowed.stderr, /invalid_scope: scope "admin:read" is not allowed to this client for urn:gatehouse:admin/);
    const wrong = await gatehouse(['admin-token'], { ...env, GATEHOUSE_CLIENT_SECRET: 'not-the-secret' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /invalid_client/);
  });

  it('takes a client secret from an argument only with a warning, and never without one', async () => {
    const created = await gatehouse(['--json', 'clients', 'create', '--tenant', 'default', '--name', 'argv', '--grant-types', 'client_credentials', '--api', 'urn:gatehouse:admin', '--scopes', 'admin:read'], env);
    assert.equal(created.code, 0, created.stderr);
    const { client_id, client_secret } = JSON.parse(created.stdout);
    const argument = await gatehouse(['token', '--tenant', 'default', '--client-id', client_id, '--client-secret', client_secret, '--resource', 'urn:gatehouse:admin'], env);
    assert.equal(argument.code, 0, argument.stderr);
    assert.match(argument.stderr, /warning: --client-secret puts the secret in shell history/);
    assert.ok(!argument.stderr.includes(client_secret));
    const none = await gatehouse(['token', '--tenant', 'default', '--client-id', client_id], env);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no client secret: pipe it in with --client-secret-stdin/);
    const both = await gatehouse(['token', '--tenant', 'default', '--client-id', client_id, '--client-secret', 'x', '--client-secret-stdin'], env, 'y');
    assert.equal(both.code, 1);
    assert.match(both.stderr, /exclude each other/);
    const empty = await gatehouse(['token', '--tenant', 'default', '--client-id', client_id, '--client-secret-stdin'], env, '\n');
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /the client secret is empty/);
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
        '--id-token-alg',
        'RS256',
      ],
      env,
    );
    assert.equal(spa.code, 0, spa.stderr);
    const created = JSON.parse(spa.stdout);
    assert.equal(created.client_secret, undefined);
    assert.equal(created.id_token_signed_response_alg, 'RS256');
    const stored = await server.core.catalog.getClient('default', created.client_id);
    assert.equal(stored.idTokenAlg, 'RS256');
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
    const badSecret = await gatehouse(['token', '--tenant', 'shop', '--client-id', 'cl_x', '--client-secret-stdin'], env, 'nope');
    assert.equal(badSecret.code, 1);
    assert.match(badSecret.stderr, /invalid_client/);
    const clients = (await server.core.catalog.listClients('shop')).length;
    assert.equal(clients, 1);
  });
});

describe('gatehouse serve, first start', () => {
  it('writes the bootstrap secret to GATEHOUSE_BOOTSTRAP_SECRET_FILE (0600), not stdout, and shows a token command that reads it from stdin', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-serve-'));
    const file = join(dataDir, 'bootstrap-secret');
    const port = await freePort();
    const env = { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_PORT: String(port), GATEHOUSE_PUBLIC_URL: `http://127.0.0.1:${port}`, GATEHOUSE_HOST: '127.0.0.1' };
    const server = spawn(process.execPath, ['--import', 'tsx', main, 'serve'], { env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'silent', GATEHOUSE_BOOTSTRAP_SECRET_FILE: file, ...env } });
    try {
      let stdout = '';
      await new Promise<void>((resolve, reject) => {
        server.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('token:')) resolve();
        });
        server.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
      });
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const secret = readFileSync(file, 'utf8').trim();
      assert.ok(secret.length >= 43);
      assert.ok(!stdout.includes(secret), 'the secret is not printed');
      assert.match(stdout, /--client-secret-stdin < .*bootstrap-secret/);
      const token = await gatehouse(['token', '--tenant', 'default', '--client-id', 'gatehouse-bootstrap', '--resource', 'urn:gatehouse:admin', '--client-secret-stdin'], env, readFileSync(file, 'utf8'));
      assert.equal(token.code, 0, token.stderr);
      assert.equal(decode(token.stdout.trim()).payload.aud, 'urn:gatehouse:admin');
    } finally {
      server.kill('SIGTERM');
      await once(server, 'exit');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
