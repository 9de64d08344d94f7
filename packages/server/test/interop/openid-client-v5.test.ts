import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generators, Issuer } from 'openid-client-v5';
import { Agent, signInDriver } from '../oauth/browserless.js';
import { adminCaller, adminToken, decode, startServer, type TestServer } from '../helpers.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'https://shop.test/callback';

// openid-client v5 (still the most installed version), with its defaults: it expects RS256 ID
// tokens from a client that registers no id_token_signed_response_alg (OIDC Registration §2),
// as express-openid-connect does on top of it.
describe('interop: openid-client v5', () => {
  let server: TestServer;
  let token: string;
  let userId: string;
  const call = adminCaller(() => server, () => token);

  before(async () => {
    server = await startServer({ listen: true });
    token = await adminToken(server);
    assert.equal((await call('POST', '/tenants', { id: 'acme' })).statusCode, 201);
    userId = (await server.core.users.create('acme', { email: 'ann@acme.test', emailVerified: true, password: PASSWORD })).id;
  });
  after(() => server.close());

  it('discovers, signs in with code + PKCE, validates the RS256 ID token and reads userinfo, all on its defaults', async () => {
    const created = await call('POST', '/tenants/acme/clients', { name: 'Shop', grant_types: ['authorization_code'], redirect_uris: [REDIRECT], first_party: true });
    assert.equal(created.statusCode, 201, created.body);
    const { client_id: clientId, client_secret: clientSecret } = created.json() as { client_id: string; client_secret: string };

    const issuer = await Issuer.discover(`${server.url}/t/acme`);
    assert.equal(issuer.metadata.issuer, `${server.url}/t/acme`);
    const client = new issuer.Client({ client_id: clientId, client_secret: clientSecret, redirect_uris: [REDIRECT], response_types: ['code'] });
    const verifier = generators.codeVerifier();
    const nonce = generators.nonce();
    const state = generators.state();
    const authorizationUrl = new URL(client.authorizationUrl({ scope: 'openid email', code_challenge: generators.codeChallenge(verifier), code_challenge_method: 'S256', nonce, state }));

    // A person signs in through the pages, at exactly the URL the library built.
    const driver = signInDriver({ origin: server.url, tenant: 'acme', clientId, clientSecret, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
    const callback = await driver.signIn(new Agent(server.url), Object.fromEntries(authorizationUrl.searchParams));

    const tokens = await client.callback(REDIRECT, client.callbackParams(callback.href), { code_verifier: verifier, nonce, state });
    assert.equal(decode(tokens.id_token!).header.alg, 'RS256');
    assert.equal(tokens.claims().sub, userId);
    // With an access token issued, the email scope's claims come from userinfo (OIDC Core §5.4).
    const userinfo = await client.userinfo(tokens);
    assert.equal(userinfo.sub, userId);
    assert.equal(userinfo.email, 'ann@acme.test');
    assert.equal(userinfo.email_verified, true);
  });
});
