import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminToken, startServer, testClock, type TestServer } from '../helpers.js';
import { action, Agent, field, signInDriver, verifierPair } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const REDIRECT = 'https://portal.test/callback';

// An admin sees a person's sessions and ends one, or all of them ("sign out everywhere");
// disabling the person does the same. Ending a session really signs the browser out, and
// ending all of them kills the refresh tokens too.
describe('users’ sessions through the admin API', () => {
  let server: TestServer;
  let admin: string;
  let userId: string;
  let driver: ReturnType<typeof signInDriver>;

  const api = (method: 'GET' | 'DELETE' | 'POST', path: string) =>
    server.inject({ method, url: `/api/v1/tenants/acme/users/${userId}${path}`, headers: { authorization: `Bearer ${admin}` } });
  const signedIn = async (agent: Agent) => {
    const { challenge } = verifierPair();
    return (await agent.follow(driver.authorizeUrl({ prompt: 'none', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }))).callback?.searchParams.has('code') ?? false;
  };
  /** Signs a new browser in with offline_access; returns it and its refresh token. */
  const newSession = async () => {
    const agent = new Agent(server.url);
    const { verifier, challenge } = verifierPair();
    const callback = await driver.signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid offline_access', prompt: 'consent' });
    const tokens = await driver.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.ok(tokens.json.refresh_token, JSON.stringify(tokens.json));
    return { agent, refresh: tokens.json.refresh_token! };
  };
  const refreshes = async (refresh: string) => (await driver.token({ grant_type: 'refresh_token', refresh_token: refresh })).status === 200;

  before(async () => {
    server = await startServer({ listen: true });
    admin = await adminToken(server);
    await server.core.tenants.create('acme');
    userId = (await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD })).id;
    const { client, clientSecret } = await server.core.catalog.createClient('acme', { name: 'Portal', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [REDIRECT], firstParty: true });
    driver = signInDriver({ origin: server.url, tenant: 'acme', clientId: client.clientId, clientSecret: clientSecret!, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
  });
  after(() => server.close());

  it('lists the sessions and ends one: that browser is signed out, the other is not', async () => {
    const laptop = await newSession();
    const phone = await newSession();
    assert.deepEqual([await signedIn(laptop.agent), await signedIn(phone.agent)], [true, true]);
    const listed = (await api('GET', '/sessions')).json().sessions as { id: string; clients: string[] }[];
    assert.equal(listed.length, 2);
    assert.ok(listed.every((s) => s.clients.length === 1));
    // No cookie value is ever shown: the ids are oidc-provider's public session uids.
    assert.ok(listed.every((s) => ![...laptop.agent.cookies.values(), ...phone.agent.cookies.values()].includes(s.id)));

    const ended = await api('DELETE', `/sessions/${listed[0]!.id}`);
    assert.equal(ended.statusCode, 204);
    assert.deepEqual([await signedIn(laptop.agent), await signedIn(phone.agent)].sort(), [false, true]);
    assert.equal((await api('GET', '/sessions')).json().sessions.length, 1);
    assert.equal((await api('DELETE', `/sessions/${listed[0]!.id}`)).json().code, 'OAUTH_SESSION_NOT_FOUND');
  });

  it('lists what the user allowed each application, and takes a grant back: its refresh tokens die', async () => {
    const session = await newSession();
    const grants = (await api('GET', '/grants')).json().grants as { id: string; client_id: string; scopes: string[] }[];
    const mine = grants.filter((g) => g.scopes.includes('offline_access'));
    assert.ok(mine.length >= 1);
    assert.ok(mine.every((g) => g.client_id.startsWith('cl_')));
    for (const grant of mine) assert.equal((await api('DELETE', `/grants/${grant.id}`)).statusCode, 204);
    assert.equal(await refreshes(session.refresh), false);
    assert.equal((await api('DELETE', `/grants/${mine[0]!.id}`)).json().code, 'OAUTH_GRANT_NOT_FOUND');
    // The session lives on; the first-party application gets a new implied grant at the next sign-in.
    assert.equal(await signedIn(session.agent), true);
    await server.core.audit.flush();
    assert.ok((await server.core.repos.audit.query({ tenantId: 'acme', action: 'user.grant_revoked', limit: 10 })).length >= 1);
  });

  it('signs out everywhere: every session ends and every refresh token dies', async () => {
    const a = await newSession();
    const b = await newSession();
    assert.equal((await api('DELETE', '/sessions')).statusCode, 204);
    assert.deepEqual((await api('GET', '/sessions')).json().sessions, []);
    assert.equal(await signedIn(a.agent), false);
    assert.equal(await signedIn(b.agent), false);
    assert.equal(await refreshes(a.refresh), false);
    assert.equal(await refreshes(b.refresh), false);
  });

  it('ends the sessions and refresh tokens of a disabled user, who then cannot sign in', async () => {
    const session = await newSession();
    assert.equal((await api('POST', '/disable')).statusCode, 200);
    assert.equal(await signedIn(session.agent), false);
    assert.equal(await refreshes(session.refresh), false);
    const { challenge } = verifierPair();
    await assert.rejects(driver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256' }), /expected a redirect to the application, got 401/);
    await server.core.audit.flush();
    const failures = await server.core.repos.audit.query({ tenantId: 'acme', action: 'login.failed', limit: 10 });
    assert.equal((failures[0]?.details as { reason?: string } | null)?.reason, 'disabled');
  });
});

// A password reset racing a sign-in: the password check began before the reset, the session
// would only be written after the reset had ended every existing session. The sign-in's time
// is when its check began, and a sign-in older than the last password change counts for nothing.
describe('a password reset during a sign-in', () => {
  let server: TestServer;
  const clock = testClock(Date.now());

  before(async () => {
    server = await startServer({ listen: true, clock });
    await server.core.tenants.create('acme');
    await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD });
  });
  after(() => server.close());

  /** Signs in up to the 303 after the password form, without following it. */
  async function passwordChecked(driver: ReturnType<typeof signInDriver>, agent: Agent) {
    const { challenge } = verifierPair();
    const start = await agent.follow(driver.authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256' }));
    const response = await agent.request(action(start.page!, 'login')!, {
      method: 'POST',
      body: new URLSearchParams({ csrf: field(start.page!, 'csrf')!, email: 'ann@acme.test', password: PASSWORD }),
    });
    assert.equal(response.status, 303);
    return response.headers.get('location')!;
  }

  for (const [name, resetAfterMs, signedIn] of [
    ['a reset after the check began ends that sign-in: the application gets no code', 2000, false],
    ['a sign-in that began after the last reset goes through', -2000, true],
  ] as const) {
    it(name, async () => {
      const { client, clientSecret } = await server.core.catalog.createClient('acme', { name: `Portal ${resetAfterMs}`, grantTypes: ['authorization_code'], redirectUris: [REDIRECT], firstParty: true });
      const driver = signInDriver({ origin: server.url, tenant: 'acme', clientId: client.clientId, clientSecret: clientSecret!, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
      const user = (await server.core.users.findByEmail('acme', 'ann@acme.test'))!;
      const agent = new Agent(server.url);
      if (resetAfterMs < 0) {
        await server.core.users.setPassword('acme', user.id, PASSWORD);
        clock.advance(-resetAfterMs);
      }
      const resume = await passwordChecked(driver, agent);
      if (resetAfterMs > 0) {
        clock.advance(resetAfterMs);
        await server.core.users.setPassword('acme', user.id, PASSWORD);
      }
      const outcome = await agent.follow(resume);
      assert.equal(outcome.callback?.searchParams.has('code') ?? false, signedIn, `${outcome.status} ${outcome.page?.slice(0, 120) ?? outcome.callback?.href}`);
      if (signedIn) return;
      assert.ok(outcome.page && action(outcome.page, 'login'), `the password is asked again: ${outcome.status} ${outcome.page}`);
      // Asked again, the person signs in as usual.
      const again = await agent.follow(action(outcome.page, 'login')!, {
        method: 'POST',
        body: new URLSearchParams({ csrf: field(outcome.page, 'csrf')!, email: 'ann@acme.test', password: PASSWORD }),
      });
      assert.ok(again.callback?.searchParams.has('code'), `${again.status} ${again.page?.slice(0, 200)}`);
    });
  }
});
