import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, signInDriver, verifierPair } from './browserless.js';
import { startServer, type TestServer } from '../helpers.js';

const PASSWORD = 'correct horse battery staple';

// RFC 8252 (OAuth 2.0 for Native Apps): a public client sent back to a private-use scheme
// (§7.1) or to a loopback IP address on whatever port it listens on (§7.3), with PKCE.
describe('native apps', () => {
  let server: TestServer;

  before(async () => {
    server = await startServer({ listen: true });
    await server.core.tenants.create('acme', 'Acme');
    await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD });
  });
  after(() => server.close());

  async function publicClient(redirectUris: string[]) {
    const { client } = await server.core.catalog.createClient('acme', { name: 'App', type: 'public', grantTypes: ['authorization_code', 'refresh_token'], redirectUris, firstParty: true });
    return client.clientId;
  }

  /** Signs in at `redirectUri`, then redeems the code as a public client (no secret, PKCE only). */
  async function signIn(clientId: string, redirectUri: string) {
    const driver = signInDriver({ origin: server.url, tenant: 'acme', clientId, clientSecret: '', redirectUri, email: 'ann@acme.test', password: PASSWORD });
    const { verifier, challenge } = verifierPair();
    const callback = await driver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid offline_access', prompt: 'consent' });
    const response = await fetch(`${server.url}/t/acme/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: clientId, code: callback.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: verifier }),
    });
    return { callback, status: response.status, json: (await response.json()) as Record<string, string> };
  }

  it('signs in through a private-use scheme redirect', async () => {
    const clientId = await publicClient(['com.example.app:/oauth2redirect']);
    const { callback, status, json } = await signIn(clientId, 'com.example.app:/oauth2redirect');
    assert.equal(callback.protocol, 'com.example.app:');
    assert.equal(status, 200, JSON.stringify(json));
    assert.ok(json.id_token && json.refresh_token);
  });

  it('accepts a loopback IP redirect on any port, but nothing else about it may differ (§7.3)', async () => {
    const clientId = await publicClient(['http://127.0.0.1/callback', 'http://[::1]/callback']);
    for (const uri of ['http://127.0.0.1:53124/callback', 'http://127.0.0.1/callback', 'http://[::1]:8080/callback']) {
      const { callback, status, json } = await signIn(clientId, uri);
      assert.equal(callback.href.split('?')[0], uri);
      assert.equal(status, 200, `${uri}: ${JSON.stringify(json)}`);
    }
    for (const uri of ['http://127.0.0.1:53124/other', 'http://localhost:53124/callback', 'https://127.0.0.1:53124/callback']) {
      const authorize = new URL(`${server.url}/t/acme/auth`);
      for (const [k, v] of Object.entries({ client_id: clientId, response_type: 'code', redirect_uri: uri, scope: 'openid', code_challenge: verifierPair().challenge, code_challenge_method: 'S256' })) authorize.searchParams.set(k, v);
      const answer = await fetch(authorize, { redirect: 'manual', headers: { accept: 'application/json' } });
      assert.equal(answer.status, 400, uri);
      assert.equal(((await answer.json()) as { error: string }).error, 'invalid_redirect_uri', uri);
    }
  });

  it('a web application keeps exact matching, its localhost port included', async () => {
    const { client } = await server.core.catalog.createClient('acme', { name: 'SPA', type: 'public', grantTypes: ['authorization_code'], redirectUris: ['http://localhost:5173/callback'], firstParty: true });
    const { status } = await signIn(client.clientId, 'http://localhost:5173/callback');
    assert.equal(status, 200);
    const authorize = new URL(`${server.url}/t/acme/auth`);
    for (const [k, v] of Object.entries({ client_id: client.clientId, response_type: 'code', redirect_uri: 'http://localhost:5174/callback', scope: 'openid', code_challenge: verifierPair().challenge, code_challenge_method: 'S256' })) authorize.searchParams.set(k, v);
    const answer = await fetch(authorize, { redirect: 'manual', headers: { accept: 'application/json' } });
    assert.equal(answer.status, 400);
  });
});
