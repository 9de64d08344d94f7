import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminToken, startServer, type TestServer } from '../helpers.js';
import { Agent, verifierPair } from '../oauth/browserless.js';

// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const REDIRECT = 'https://portal.test/callback';

// A tenant names itself and shows its logo on the sign-in pages; the logo is uploaded and
// served from Gatehouse's origin, so the pages still load nothing from anywhere else.
describe('tenant branding', () => {
  let server: TestServer;
  let admin: string;
  let clientId: string;

  const call = (method: 'PATCH' | 'PUT' | 'DELETE' | 'GET', url: string, payload?: string | Buffer | Record<string, unknown>, type = 'application/json') =>
    server.inject({ method, url: `/api/v1${url}`, headers: { authorization: `Bearer ${admin}`, ...(payload === undefined ? {} : { 'content-type': type }) }, ...(payload === undefined ? {} : { payload }) });
  const loginPage = async () => {
    const { challenge } = verifierPair();
    const query = new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' });
    return (await new Agent(server.url).follow(`/t/acme/auth?${query}`)).page!;
  };

  before(async () => {
    server = await startServer({ listen: true });
    admin = await adminToken(server);
    await server.core.tenants.create('acme', 'Acme');
    clientId = (await server.core.catalog.createClient('acme', { name: 'Portal', type: 'public', grantTypes: ['authorization_code'], redirectUris: [REDIRECT] })).client.clientId;
  });
  after(() => server.close());

  it('renames the tenant: the sign-in page says the new name', async () => {
    const renamed = await call('PATCH', '/tenants/acme', { display_name: 'Acme Corporation' });
    assert.equal(renamed.statusCode, 200);
    assert.deepEqual([renamed.json().display_name, renamed.json().logo], ['Acme Corporation', null]);
    assert.match(await loginPage(), /<title>Sign in – Acme Corporation<\/title>/);
    assert.equal((await call('PATCH', '/tenants/acme', { display_name: 'bad\u0007name' })).json().code, 'TENANTS_DISPLAY_NAME_INVALID');
    assert.equal((await call('PATCH', '/tenants/nope', { display_name: 'x' })).statusCode, 404);
  });

  it('shows an uploaded logo from its own origin, and refuses what is not a plain image', async () => {
    assert.equal((await server.inject({ method: 'GET', url: '/t/acme/logo' })).statusCode, 404);
    assert.equal((await call('PUT', '/tenants/acme/logo', PNG, 'image/png')).statusCode, 204);
    const served = await server.inject({ method: 'GET', url: '/t/acme/logo' });
    assert.equal(served.statusCode, 200);
    assert.equal(served.headers['content-type'], 'image/png');
    assert.deepEqual(served.rawPayload, PNG);
    assert.equal((await call('GET', '/tenants/acme')).json().logo, `${server.url}/t/acme/logo`);
    const page = await loginPage();
    assert.match(page, /<img class="logo" src="\/t\/acme\/logo" alt=""/);
    assert.doesNotMatch(page, /https?:\/\/(?!www\.w3\.org)/, 'the page refers to no other origin');

    const svg = await call('PUT', '/tenants/acme/logo', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 'image/svg+xml');
    assert.equal(svg.statusCode, 415);
    assert.equal((await call('PUT', '/tenants/acme/logo', Buffer.from('not really a png'), 'image/png')).json().code, 'TENANTS_LOGO_INVALID');
    assert.equal((await call('PUT', '/tenants/acme/logo', Buffer.alloc(300 * 1024, 1), 'image/png')).statusCode, 413);
    // Refused uploads changed nothing.
    assert.deepEqual((await server.inject({ method: 'GET', url: '/t/acme/logo' })).rawPayload, PNG);

    assert.equal((await call('DELETE', '/tenants/acme/logo')).statusCode, 204);
    assert.equal((await server.inject({ method: 'GET', url: '/t/acme/logo' })).statusCode, 404);
    assert.doesNotMatch(await loginPage(), /<img/);
  });
});
