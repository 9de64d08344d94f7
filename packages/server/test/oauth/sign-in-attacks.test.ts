import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { createFastifyAuth, createVerifier } from '@gatehouse/sdk';
import { startServer, type TestServer } from '../helpers.js';
import { action, Agent, field, signInDriver, verifierPair } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const REDIRECT = 'https://shop.test/callback';

describe('sign-in refuses and audits attacks', () => {
  let server: TestServer;
  let clientId: string;
  let clientSecret: string;
  const api = 'https://orders.acme.test';

  const driver = () => signInDriver({ origin: server.url, tenant: 'acme', clientId, clientSecret, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
  const authorizeUrl = (params: Record<string, string | undefined>) => driver().authorizeUrl(params);
  const signIn = (agent: Agent, params: Record<string, string | undefined>) => driver().signIn(agent, params);
  const token = (form: Record<string, string>) => driver().token(form);

  const audited = async (action: string) => {
    await server.core.audit.flush();
    return server.core.repos.audit.query({ tenantId: 'acme', action, limit: 100 });
  };

  before(async () => {
    server = await startServer({ listen: true });
    await server.core.tenants.create('acme', 'Acme');
    await server.core.catalog.createApi('acme', { identifier: api, scopes: ['orders:read'] });
    await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD });
    const created = await server.core.catalog.createClient('acme', {
      name: 'Shop',
      grantTypes: ['authorization_code', 'refresh_token'],
      redirectUris: [REDIRECT],
      apis: { [api]: ['orders:read'] },
    });
    clientId = created.client.clientId;
    clientSecret = created.clientSecret!;
  });
  after(() => server.close());

  it('answers prompt=none without a session with login_required', async () => {
    const { challenge } = verifierPair();
    const step = await new Agent(server.url).follow(authorizeUrl({ prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    assert.equal(step.callback?.searchParams.get('error'), 'login_required');
  });

  it('requires PKCE with S256: missing or plain is refused at the authorization endpoint', async () => {
    const agent = new Agent(server.url);
    assert.equal((await agent.follow(authorizeUrl({}))).callback?.searchParams.get('error'), 'invalid_request');
    const plain = await agent.follow(authorizeUrl({ code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }));
    assert.equal(plain.callback?.searchParams.get('error'), 'invalid_request');
    assert.ok((await audited('authorization.denied')).length >= 2);
  });

  it('refuses redirect URIs that differ by one character, add a path or add a query, without redirecting', async () => {
    const { challenge } = verifierPair();
    for (const uri of ['https://shop.test/callbacK', 'https://shop.test/callback/x', 'https://shop.test/callback?x=1', 'https://shop.test.evil/callback']) {
      const step = await new Agent(server.url).follow(authorizeUrl({ redirect_uri: uri, code_challenge: challenge, code_challenge_method: 'S256' }));
      assert.equal(step.callback, undefined, uri);
      assert.equal(step.status, 400, uri);
      assert.match(step.page ?? '', /redirect_uri/, uri);
    }
  });

  it('refuses a login form posted without its CSRF token, and signs nobody in', async () => {
    const agent = new Agent(server.url);
    const { challenge } = verifierPair();
    const page = (await agent.follow(authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256' }))).page!;
    const posted = await agent.follow(action(page, 'login')!, { method: 'POST', body: new URLSearchParams({ email: 'ann@acme.test', password: PASSWORD }) });
    assert.equal(posted.status, 403);
    assert.equal(posted.callback, undefined);
    const forged = await agent.follow(action(page, 'login')!, { method: 'POST', body: new URLSearchParams({ csrf: 'x'.repeat(43), email: 'ann@acme.test', password: PASSWORD }) });
    assert.equal(forged.status, 403);
    assert.ok((await audited('login.failed')).some((e) => (e.details as { reason?: string } | null)?.reason === 'csrf'));
    const none = await agent.follow(authorizeUrl({ prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }));
    assert.equal(none.callback?.searchParams.get('error'), 'login_required');
  });

  it('gives a new session id at sign-in: a session cookie planted before it is worthless', async () => {
    const agent = new Agent(server.url);
    const { challenge } = verifierPair();
    await agent.follow(authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256' }));
    // Whatever session cookie the browser held before signing in (here: one the attacker planted)…
    agent.cookies.set('_session_acme', 'attacker-chosen-session-id');
    await signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256' });
    const after = agent.cookies.get('_session_acme');
    assert.ok(after && after !== 'attacker-chosen-session-id');
    // … gives the attacker nothing.
    const attacker = new Agent(server.url);
    attacker.cookies.set('_session_acme', 'attacker-chosen-session-id');
    assert.equal((await attacker.follow(authorizeUrl({ prompt: 'none', code_challenge: challenge, code_challenge_method: 'S256' }))).callback?.searchParams.get('error'), 'login_required');
  });

  it('refuses a PKCE verifier that does not match, and a replayed code revokes what the code issued', async () => {
    const agent = new Agent(server.url);
    const { verifier, challenge } = verifierPair();
    const mismatch = await signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256' });
    const wrong = await token({ grant_type: 'authorization_code', code: mismatch.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifierPair().verifier });
    assert.equal(wrong.json.error, 'invalid_grant');
    const missing = await token({ grant_type: 'authorization_code', code: mismatch.searchParams.get('code')!, redirect_uri: REDIRECT });
    assert.equal(missing.json.error, 'invalid_grant');

    const callback = await signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid email offline_access', prompt: 'consent', resource: api });
    const code = callback.searchParams.get('code')!;
    const first = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.ok(first.json.refresh_token);
    const replay = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(replay.json.error, 'invalid_grant');
    // The grant is gone: the refresh token the code issued no longer works.
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: first.json.refresh_token! })).json.error, 'invalid_grant');
    assert.equal((await audited('authorization_code.reused')).length, 1);
  });

  it('revokes the whole grant when a used refresh token comes back', async () => {
    const agent = new Agent(server.url);
    const { verifier, challenge } = verifierPair();
    const callback = await signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid offline_access', prompt: 'consent' });
    const issued = await token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    // Stored hashed: no row of the database holds the refresh token (or the code) itself.
    const rows = await server.core.handle.db.selectFrom('oidc_payloads').selectAll().where('tenant_id', '=', 'acme').execute();
    assert.ok(rows.some((r) => r.model === 'RefreshToken'));
    for (const secret of [issued.json.refresh_token!, callback.searchParams.get('code')!]) {
      assert.ok(!rows.some((r) => r.id === secret || r.payload.includes(secret)), 'a credential is stored in the clear');
    }
    const rotated = await token({ grant_type: 'refresh_token', refresh_token: issued.json.refresh_token! });
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.json.refresh_token, issued.json.refresh_token);
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: issued.json.refresh_token! })).json.error, 'invalid_grant');
    // The thief may hold the newest token; it is dead too.
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: rotated.json.refresh_token! })).json.error, 'invalid_grant');
    assert.equal((await audited('refresh_token.reused')).length, 1);
    assert.ok((await audited('token.refreshed')).length >= 1);
  });

  it('does not let an ID token pass as an access token at an API protected by the SDK', async () => {
    const agent = new Agent(server.url);
    const { verifier, challenge } = verifierPair();
    const callback = await signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256', resource: api, scope: 'openid orders:read' });
    const tokens = await token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, resource: api });
    const orders = Fastify();
    const verify = createVerifier({ issuer: `${server.url}/t/acme`, audience: api });
    orders.get('/orders', { preHandler: createFastifyAuth(verify, { scopes: ['orders:read'] }) }, async (request) => ({ sub: (request as unknown as { gatehouse?: { claims: { sub: string } } }).gatehouse?.claims.sub }));
    try {
      const withAccess = await orders.inject({ url: '/orders', headers: { authorization: `Bearer ${tokens.json.access_token}` } });
      assert.equal(withAccess.statusCode, 200, withAccess.body);
      const withId = await orders.inject({ url: '/orders', headers: { authorization: `Bearer ${tokens.json.id_token}` } });
      assert.equal(withId.statusCode, 401);
    } finally {
      await orders.close();
    }
  });

  it('answers the 11th wrong password within the window with 429 and Retry-After, and audits it', async () => {
    const agent = new Agent(server.url);
    const { challenge } = verifierPair();
    const page = (await agent.follow(authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256' }))).page!;
    const login = action(page, 'login')!;
    const attempt = () => agent.request(login, { method: 'POST', body: new URLSearchParams({ csrf: field(page, 'csrf')!, email: 'ANN@acme.test', password: 'wrong password, again' }) });
    for (let i = 1; i <= 10; i++) assert.equal((await attempt()).status, 401, `attempt ${i}`);
    const eleventh = await attempt();
    assert.equal(eleventh.status, 429);
    assert.ok(Number(eleventh.headers.get('retry-after')) > 800);
    assert.match(await eleventh.text(), /Too many attempts/);
    // Even the right password waits for the window now.
    const right = await agent.request(login, { method: 'POST', body: new URLSearchParams({ csrf: field(page, 'csrf')!, email: 'ann@acme.test', password: PASSWORD }) });
    assert.equal(right.status, 429);
    assert.ok((await audited('login.rate_limited')).length >= 2);
  });
});
