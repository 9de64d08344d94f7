import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { startServer, type TestServer } from '../helpers.js';
import { action, Agent, signInDriver, verifierPair } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const REDIRECT = 'https://portal.test/callback';
const AFTER_LOGOUT = 'https://portal.test/signed-out';

/** Submits the logout confirmation the way its "Sign out" button does. */
async function confirmLogout(agent: Agent, page: string) {
  const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(page)!;
  const fields = Object.fromEntries([...form[2]!.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  return agent.follow(form[1]!, { method: 'POST', body: new URLSearchParams({ ...fields, logout: 'yes' }) });
}

// OpenID Connect details around the sign-in: prompt=login and max_age ask again, session
// cookies are Secure behind https, logout returns only to registered URIs and tells
// applications over the back channel.
describe('OpenID Connect sign-in protocol', () => {
  let server: TestServer;
  let driver: ReturnType<typeof signInDriver>;
  let backchannel: Server;
  const logoutTokens: string[] = [];

  const code = async (agent: Agent, params: Record<string, string>) => {
    const { challenge } = verifierPair();
    return agent.follow(driver.authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256', ...params }));
  };

  before(async () => {
    backchannel = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        logoutTokens.push(new URLSearchParams(body).get('logout_token') ?? '');
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => backchannel.listen(0, '127.0.0.1', resolve));
    // The test's application listens on loopback, which Gatehouse refuses to call unless told.
    server = await startServer({ listen: true, env: { GATEHOUSE_ALLOW_PRIVATE_OUTBOUND: 'true' } });
    await server.core.tenants.create('acme');
    await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD });
    const { client, clientSecret } = await server.core.catalog.createClient('acme', {
      name: 'Portal',
      grantTypes: ['authorization_code'],
      redirectUris: [REDIRECT],
      postLogoutRedirectUris: [AFTER_LOGOUT],
      backchannelLogoutUri: `http://127.0.0.1:${(backchannel.address() as AddressInfo).port}/backchannel`,
      firstParty: true,
    });
    driver = signInDriver({ origin: server.url, tenant: 'acme', clientId: client.clientId, clientSecret: clientSecret!, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
  });
  after(async () => {
    await server.close();
    await new Promise((resolve) => backchannel.close(resolve));
  });

  it('names an opaque access token in the audit trail by its digest, never by the token', async () => {
    const { verifier, challenge } = verifierPair();
    const callback = await driver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256' });
    const issued = await driver.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(issued.status, 200);
    // No API asked for: the access token is opaque (for userinfo), so its id is the credential.
    const accessToken = issued.json.access_token!;
    assert.equal(accessToken.split('.').length, 1);
    await server.core.audit.flush();
    const events = await server.core.repos.audit.query({ tenantId: 'acme', action: 'token.issued', limit: 100 });
    assert.ok(events.some((e) => e.details?.token_sha256 === createHash('sha256').update(accessToken).digest('base64url')));
    assert.doesNotMatch(JSON.stringify(await server.core.repos.audit.query({ tenantId: 'acme', limit: 1000 })), new RegExp(accessToken));
  });

  it('asks for the password again with prompt=login, and when the sign-in is older than max_age', async () => {
    const agent = new Agent(server.url);
    const { challenge } = verifierPair();
    await driver.signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256' });
    assert.ok((await code(agent, {})).callback?.searchParams.has('code'), 'signed in: no prompt');
    assert.ok(action((await code(agent, { prompt: 'login' })).page ?? '', 'login'), 'prompt=login shows the form');
    assert.ok((await code(agent, { max_age: '3600' })).callback?.searchParams.has('code'), 'a recent sign-in satisfies max_age');
    await new Promise((resolve) => setTimeout(resolve, 2100));
    assert.ok(action((await code(agent, { max_age: '1' })).page ?? '', 'login'), 'an older one does not');
  });

  it('returns after logout only to a registered URI, and tells the application over the back channel', async () => {
    const agent = new Agent(server.url);
    const { verifier, challenge } = verifierPair();
    const callback = await driver.signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256' });
    const tokens = await driver.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    const idToken = tokens.json.id_token!;

    const endSession = (uri: string) => `/t/acme/session/end?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: uri, state: 'bye' })}`;
    const refused = await agent.follow(endSession(`${AFTER_LOGOUT}/x`));
    assert.equal(refused.callback, undefined);
    assert.equal(refused.status, 400);

    const confirm = await agent.follow(endSession(AFTER_LOGOUT));
    assert.match(confirm.page!, /Sign out\?/);
    const done = await confirmLogout(agent, confirm.page!);
    assert.equal(done.callback?.origin + done.callback!.pathname, AFTER_LOGOUT);
    assert.equal(done.callback?.searchParams.get('state'), 'bye');

    // The application's back channel got a logout token for this person and session.
    for (let i = 0; i < 50 && logoutTokens.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await server.core.audit.flush();
    assert.equal(logoutTokens.length, 1, JSON.stringify(await server.core.repos.audit.query({ tenantId: 'acme', action: 'logout.backchannel_failed', limit: 5 })));
    const logout = decodeJwt(logoutTokens[0]!);
    assert.equal(logout.sub, decodeJwt(idToken).sub);
    assert.ok((logout.events as Record<string, unknown>)['http://schemas.openid.net/event/backchannel-logout']);
    assert.equal(logout.sid, decodeJwt(idToken).sid);
    // And the browser is signed out.
    assert.equal((await code(agent, { prompt: 'none' })).callback?.searchParams.get('error'), 'login_required');
    await server.core.audit.flush();
    assert.equal((await server.core.repos.audit.query({ tenantId: 'acme', action: 'logout', limit: 5 })).length, 1);
  });
});

describe('session cookies behind https', () => {
  it('are Secure, HttpOnly and SameSite=Lax when the public URL is https', async () => {
    const server = await startServer({ env: { GATEHOUSE_PUBLIC_URL: 'https://id.example.test' } });
    try {
      await server.core.tenants.create('acme');
      const { client } = await server.core.catalog.createClient('acme', { name: 'Portal', type: 'public', grantTypes: ['authorization_code'], redirectUris: [REDIRECT] });
      const { challenge } = verifierPair();
      const query = new URLSearchParams({ client_id: client.clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' });
      const response = await server.inject({ method: 'GET', url: `/t/acme/auth?${query}` });
      const cookies = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
      assert.ok(cookies.length > 0);
      for (const cookie of cookies) {
        assert.match(cookie, /; secure/i, cookie);
        assert.match(cookie, /; httponly/i, cookie);
        assert.match(cookie, /; samesite=lax/i, cookie);
      }
    } finally {
      await server.close();
    }
  });
});
