import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { adminToken, basic, seedClient, startServer, testClock, tokenRequest, type TestServer } from '../helpers.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

// What a developer reads when something is refused: the reason, in words they can act on.
describe('refusals that say why', () => {
  const clock = testClock(Date.now());
  let server: TestServer;

  before(async () => {
    server = await startServer({ clock });
  });
  after(() => server.close());

  it('an expired admin token says it expired, in the body and the challenge', async () => {
    const token = await adminToken(server);
    assert.equal((await server.inject({ url: '/api/v1/tenants', headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
    clock.advance(server.config.adminTokenTtl * 1000 + 120_000);
    const expired = await server.inject({ url: '/api/v1/tenants', headers: { authorization: `Bearer ${token}` } });
    assert.equal(expired.statusCode, 401);
    assert.match(expired.json().message, /expired/);
    assert.match(String(expired.headers['www-authenticate']), /error="invalid_token", error_description="the access token expired"/);
    // Any other invalid token still says only that it is invalid.
    const garbage = await server.inject({ url: '/api/v1/tenants', headers: { authorization: 'Bearer abc.def.ghi' } });
    assert.equal(garbage.json().message, 'The access token is invalid');
  });

  it('invalid_scope names the scope a client may not have', async () => {
    const client = await seedClient(server, { identifier: 'https://api.messages.test', scopes: ['read', 'write'], allowed: ['read'] });
    const refused = await tokenRequest(server, { grant_type: 'client_credentials', resource: client.identifier, scope: 'read write' }, { authorization: basic(client.clientId, client.clientSecret) });
    assert.equal(refused.json.error, 'invalid_scope');
    assert.match(String(refused.json.error_description), /scope "write" is not allowed to this client for https:\/\/api\.messages\.test/);
  });

  it('gatehouse --version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const printed = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', main, '--version'], (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    assert.equal(printed.trim(), version);
  });
});
