import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent, signInDriver, verifierPair } from './browserless.js';
import { decode, startServer, type TestServer } from '../helpers.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'https://shop.test/callback';
const API = 'https://api.shop.test';

// OIDC Core §5.3: the access token of an OpenID login is what userinfo takes. A client that may
// call one API still gets a userinfo token when it signs someone in without `resource`; with
// `resource` it gets a token for that API (and signs in a second time, or refreshes, for the
// other: the two-token pattern of docs/identity.md).
describe('the access token of an OpenID login', () => {
  let server: TestServer;
  let driver: ReturnType<typeof signInDriver>;
  let userId: string;

  const me = (accessToken: string) => fetch(`${server.url}/t/acme/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  async function login(params: Record<string, string> = {}) {
    const { verifier, challenge } = verifierPair();
    const callback = await driver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256', ...params });
    const issued = await driver.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, ...(params.resource ? { resource: params.resource } : {}) });
    assert.equal(issued.status, 200, JSON.stringify(issued.json));
    return issued.json;
  }

  before(async () => {
    server = await startServer({ listen: true });
    await server.core.tenants.create('acme', 'Acme');
    await server.core.catalog.createApi('acme', { identifier: API, scopes: ['orders:read'] });
    userId = (await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD })).id;
    // Exactly one API: the case that used to turn the login's token into a token for that API.
    const { client, clientSecret } = await server.core.catalog.createClient('acme', {
      name: 'Shop',
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT],
      firstParty: true,
      apis: { [API]: ['orders:read'] },
    });
    driver = signInDriver({ origin: server.url, tenant: 'acme', clientId: client.clientId, clientSecret: clientSecret!, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
  });
  after(() => server.close());

  it('is for userinfo when the login names no resource, though the client may call one API', async () => {
    const tokens = await login();
    const answer = await me(tokens.access_token!);
    assert.equal(answer.status, 200, await answer.clone().text());
    assert.equal(((await answer.json()) as { sub: string }).sub, userId);
  });

  it('is for the API when the login names it, and userinfo says why it refuses it', async () => {
    const tokens = await login({ resource: API, scope: 'openid orders:read' });
    assert.equal(decode(tokens.access_token!).payload.aud, API);
    const refused = await me(tokens.access_token!);
    assert.equal(refused.status, 401);
    const body = (await refused.json()) as { error: string; error_description: string };
    assert.equal(body.error, 'invalid_token');
    assert.match(body.error_description, /audience|userinfo|resource/i, body.error_description);
    assert.match(refused.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.match(refused.headers.get('www-authenticate') ?? '', /error_description="this access token is for an API/);

    const unknown = await me('no-such-token-at-all');
    assert.equal(unknown.status, 401);
    assert.match(((await unknown.json()) as { error_description: string }).error_description, /unknown, expired or revoked/);
  });

  it('a machine client with one API still gets that API without naming it (client credentials)', async () => {
    const { client, clientSecret } = await server.core.catalog.createClient('acme', { name: 'svc', grantTypes: ['client_credentials'], apis: { [API]: ['orders:read'] } });
    const machine = signInDriver({ origin: server.url, tenant: 'acme', clientId: client.clientId, clientSecret: clientSecret!, redirectUri: REDIRECT, email: '', password: '' });
    const issued = await machine.token({ grant_type: 'client_credentials' });
    assert.equal(issued.status, 200, JSON.stringify(issued.json));
    assert.equal(decode(issued.json.access_token!).payload.aud, API);
  });
});
