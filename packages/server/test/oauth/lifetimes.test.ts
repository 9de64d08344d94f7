import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminToken, dialects, startServer, testClock, type DialectName } from '../helpers.js';
import { action, Agent, signInDriver, verifierPair } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const EMAIL = 'ann@acme.test';
const REDIRECT = 'https://portal.test/callback';
const HOUR = 3600;
const DAY = 86400;

type Driver = ReturnType<typeof signInDriver>;

/**
 * A Gatehouse whose clock the test moves, with one person and the applications they sign in
 * to. The clock does not start at the real time on purpose: oidc-provider stamps some fields
 * (iat, iiat, exp) with the real clock, and the lifetimes must follow ours alone.
 */
async function world(dialect: DialectName, env: Record<string, string> = {}) {
  const clock = testClock();
  const server = await startServer({ listen: true, dialect, clock, env });
  await server.core.tenants.create('acme');
  await server.core.users.create('acme', { email: EMAIL, password: PASSWORD });
  /** An application that may refresh (first-party unless said); `lifetimes` are its own refresh token lifetimes. */
  const application = async (name: string, lifetimes: { refreshTokenIdleTtl?: number; refreshTokenAbsoluteTtl?: number } = {}, firstParty = true) => {
    const { client, clientSecret } = await server.core.catalog.createClient('acme', { name, grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [REDIRECT], firstParty, ...lifetimes });
    return driverFor(client.clientId, clientSecret!);
  };
  const driverFor = (clientId: string, clientSecret: string) => signInDriver({ origin: server.url, tenant: 'acme', clientId, clientSecret, redirectUri: REDIRECT, email: EMAIL, password: PASSWORD });
  /** Moves the clock to `seconds` after the moment this was called. */
  const timeline = () => {
    const start = clock();
    return (seconds: number) => clock.set(start + seconds * 1000);
  };
  return { server, clock, application, driverFor, timeline };
}

/** Whether the browser is still signed in: prompt=none gets a code, or the error it gets instead. */
async function silentSignIn(agent: Agent, driver: Driver): Promise<string> {
  const { challenge } = verifierPair();
  const step = await agent.follow(driver.authorizeUrl({ prompt: 'none', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }));
  assert.ok(step.callback, `expected a redirect to the application, got ${step.status}`);
  return step.callback.searchParams.has('code') ? 'signed in' : String(step.callback.searchParams.get('error'));
}

/** A new browser signed in through the pages. */
async function signedInBrowser(driver: Driver): Promise<Agent> {
  const agent = new Agent(new URL(driver.authorizeUrl({})).origin);
  const { challenge } = verifierPair();
  await driver.signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256' });
  return agent;
}

/** A refresh token chain: its latest token, replaced at every successful rotation. */
interface Chain {
  driver: Driver;
  token: string;
}

/**
 * Gets a code for `offline_access` and exchanges it for a refresh token: through the pages in
 * a new browser, or in `signedIn`, a browser still signed in, without any page (single
 * sign-on). oidc-provider grants offline_access only with prompt=consent (OIDC Core §11);
 * first-party applications show no consent screen.
 */
async function startChain(driver: Driver, signedIn?: Agent): Promise<Chain> {
  const { verifier, challenge } = verifierPair();
  const params = { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid offline_access', prompt: 'consent' };
  let callback: URL;
  if (signedIn) {
    const step = await signedIn.follow(driver.authorizeUrl(params));
    assert.ok(step.callback, `expected single sign-on, got ${step.status}: ${step.page?.slice(0, 200)}`);
    callback = step.callback;
  } else {
    callback = await driver.signIn(new Agent(new URL(driver.authorizeUrl({})).origin), params);
  }
  const code = callback.searchParams.get('code');
  assert.ok(code, `no code: ${callback.href}`);
  const tokens = await driver.token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
  assert.ok(tokens.json.refresh_token, JSON.stringify(tokens.json));
  return { driver, token: tokens.json.refresh_token };
}

/** Refreshes once: 'rotated' (the chain moves on to the new token), or the token endpoint's error. */
async function refresh(chain: Chain): Promise<string> {
  const { status, json } = await chain.driver.token({ grant_type: 'refresh_token', refresh_token: chain.token });
  if (status !== 200) return json.error ?? String(status);
  assert.ok(json.refresh_token && json.refresh_token !== chain.token, 'a new refresh token at every use');
  chain.token = json.refresh_token;
  return 'rotated';
}

for (const dialect of dialects) {
  // Default lifetimes: a session ends 8 h after its last use and 7 days after the sign-in,
  // whichever comes first. "Use" is any authorization request carrying the session cookie:
  // oidc-provider saves the session again with ttl.Session each time (shared/session.js).
  describe(`sign-in sessions end on time (${dialect})`, () => {
    let w: Awaited<ReturnType<typeof world>>;
    let portal: Driver;

    before(async () => {
      w = await world(dialect);
      portal = await w.application('Portal');
    });
    after(() => w.server.close());

    it('keeps a session used within 8 h, and ends it after 8 h and 1 s without use', async () => {
      const at = w.timeline();
      const agent = await signedInBrowser(portal);
      at(7 * HOUR);
      assert.equal(await silentSignIn(agent, portal), 'signed in', '7 h after the sign-in');
      // 15 h after the sign-in, but 8 h less a second after the last use: idle counts from use.
      at(15 * HOUR - 1);
      assert.equal(await silentSignIn(agent, portal), 'signed in', '8 h less 1 s after the last use');
      at(15 * HOUR - 1 + 8 * HOUR + 1);
      assert.equal(await silentSignIn(agent, portal), 'login_required', '8 h and 1 s after the last use');
      const { challenge } = verifierPair();
      const page = (await agent.follow(portal.authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256' }))).page ?? '';
      assert.ok(action(page, 'login'), 'an ordinary authorization request shows the sign-in page');
    });

    it('ends a session 7 days after the sign-in, however recently it was used', async () => {
      const at = w.timeline();
      const agent = await signedInBrowser(portal);
      // Used every 7 h: never idle for 8 h.
      for (let hours = 7; hours < 7 * 24; hours += 7) {
        at(hours * HOUR);
        assert.equal(await silentSignIn(agent, portal), 'signed in', `${hours} h after the sign-in`);
      }
      at(7 * DAY - 1);
      assert.equal(await silentSignIn(agent, portal), 'signed in', '7 days less 1 s after the sign-in');
      at(7 * DAY + 1);
      assert.equal(await silentSignIn(agent, portal), 'login_required', '7 days and 1 s after the sign-in, used 2 s before');
    });

    it('audits the refused silent sign-in, not the end of the session itself (sessions end by lapsing)', async () => {
      const at = w.timeline();
      const agent = await signedInBrowser(portal);
      at(8 * HOUR + 1);
      assert.equal(await silentSignIn(agent, portal), 'login_required');
      await w.server.core.audit.flush();
      const denied = await w.server.core.repos.audit.query({ tenantId: 'acme', action: 'authorization.denied', limit: 10 });
      assert.ok(
        denied.some((entry) => (entry.details as { error?: string } | null)?.error === 'login_required'),
        JSON.stringify(denied),
      );
    });
  });

  // Default refresh token lifetimes (14 days unused, 30 days from the sign-in), and an
  // application's own lifetimes, set in the catalog or through the admin API.
  describe(`refresh tokens end on time (${dialect})`, () => {
    let w: Awaited<ReturnType<typeof world>>;
    let ordinary: Driver;
    let shortIdle: Driver;
    let shortAbsolute: Driver;
    let longAbsolute: { firstParty: Driver; thirdParty: Driver };

    before(async () => {
      w = await world(dialect);
      const admin = await adminToken(w.server);
      ordinary = await w.application('Ordinary');
      // Through the admin API, as an operator sets it.
      const created = await w.server.inject({ method: 'POST', url: '/api/v1/tenants/acme/clients', headers: { authorization: `Bearer ${admin}` }, payload: { name: 'Short idle', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT], first_party: true, refresh_token_idle_ttl: HOUR } });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(created.json().refresh_token_idle_ttl, HOUR);
      shortIdle = w.driverFor(created.json().client_id, created.json().client_secret);
      shortAbsolute = await w.application('Short absolute', { refreshTokenAbsoluteTtl: 2 * HOUR });
      longAbsolute = {
        firstParty: await w.application('Long absolute', { refreshTokenAbsoluteTtl: 60 * DAY }),
        // Its grant is the consent the person gives on the consent page.
        thirdParty: await w.application('Long absolute, third party', { refreshTokenAbsoluteTtl: 60 * DAY }, false),
      };
    });
    after(() => w.server.close());

    it('keeps rotating within 14 days of the last use, and refuses a token unused for longer', async () => {
      const at = w.timeline();
      const used = await startChain(ordinary);
      const unused = await startChain(ordinary);
      at(14 * DAY - 1);
      assert.equal(await refresh(used), 'rotated', '14 days less 1 s unused');
      at(14 * DAY + 1);
      assert.equal(await refresh(unused), 'invalid_grant', '14 days and 1 s unused');
      // 28 days after the sign-in, but 14 days less a second after the last use.
      at(28 * DAY - 2);
      assert.equal(await refresh(used), 'rotated', '14 days less 1 s after the last use');
    });

    it('stops refreshing 30 days after the sign-in, though every use is within 14 days of the last', async () => {
      const at = w.timeline();
      const chain = await startChain(ordinary);
      for (const day of [10, 20, 29]) {
        at(day * DAY);
        assert.equal(await refresh(chain), 'rotated', `day ${day}`);
      }
      at(30 * DAY - 1);
      assert.equal(await refresh(chain), 'rotated', '30 days less 1 s after the sign-in');
      at(30 * DAY + 1);
      assert.equal(await refresh(chain), 'invalid_grant', '30 days and 1 s after the sign-in, used 2 s before');
      await w.server.core.audit.flush();
      const denied = await w.server.core.repos.audit.query({ tenantId: 'acme', action: 'token.denied', limit: 10 });
      assert.ok(
        denied.some((entry) => (entry.details as { error?: string; grant_type?: string } | null)?.error === 'invalid_grant'),
        'the refused refresh is in the audit trail',
      );
    });

    it("honours an application's own idle lifetime (1 h) while another keeps the default", async () => {
      const at = w.timeline();
      const own = await startChain(shortIdle);
      const other = await startChain(ordinary);
      at(HOUR - 1);
      assert.equal(await refresh(own), 'rotated', '1 h less 1 s unused');
      at(2 * HOUR);
      assert.equal(await refresh(own), 'invalid_grant', '1 h and 1 s unused');
      assert.equal(await refresh(other), 'rotated', 'the default application, 2 h unused');
    });

    for (const kind of ['firstParty', 'thirdParty'] as const) {
      it(`honours an application's own absolute lifetime longer than the default (60 days, ${kind === 'firstParty' ? 'first' : 'third'} party)`, async () => {
        const at = w.timeline();
        const own = await startChain(longAbsolute[kind]);
        const other = await startChain(ordinary);
        for (const day of [10, 20, 29]) {
          at(day * DAY);
          assert.equal(await refresh(own), 'rotated', `day ${day}`);
          assert.equal(await refresh(other), 'rotated', `the default application, day ${day}`);
        }
        at(31 * DAY);
        assert.equal(await refresh(other), 'invalid_grant', 'the default application, past 30 days');
        assert.equal(await refresh(own), 'rotated', 'day 31: the grant outlives the server default too');
        for (const day of [40, 50]) {
          at(day * DAY);
          assert.equal(await refresh(own), 'rotated', `day ${day}`);
        }
        at(60 * DAY - 1);
        assert.equal(await refresh(own), 'rotated', '60 days less 1 s after the sign-in');
        at(60 * DAY + 1);
        assert.equal(await refresh(own), 'invalid_grant', '60 days and 1 s after the sign-in');
      });
    }

    it("honours an application's own absolute lifetime (2 h) while another keeps the default", async () => {
      const at = w.timeline();
      const own = await startChain(shortAbsolute);
      const other = await startChain(ordinary);
      at(HOUR);
      assert.equal(await refresh(own), 'rotated');
      at(2 * HOUR - 1);
      assert.equal(await refresh(own), 'rotated', '2 h less 1 s after the sign-in');
      at(2 * HOUR + 1);
      assert.equal(await refresh(own), 'invalid_grant', '2 h and 1 s after the sign-in, used 2 s before');
      assert.equal(await refresh(other), 'rotated', 'the default application, 2 h and 1 s after the sign-in');
    });
  });

  // An operator shortens an application's refresh lifetime: the tokens issued from then on
  // follow it. (A suite of its own: its admin token must stay valid on the moved clock.)
  describe(`refresh lifetimes changed through the admin API (${dialect})`, () => {
    let w: Awaited<ReturnType<typeof world>>;
    let admin: string;

    before(async () => {
      w = await world(dialect);
      admin = await adminToken(w.server);
    });
    after(() => w.server.close());

    it('applies the new idle lifetime to every token issued after the change', async () => {
      const clients = (method: 'POST' | 'PATCH', path: string, body: Record<string, unknown>) =>
        w.server.inject({ method, url: `/api/v1/tenants/acme/clients${path}`, headers: { authorization: `Bearer ${admin}` }, payload: body });
      const created = await clients('POST', '', { name: 'Adjustable', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT], first_party: true });
      assert.equal(created.statusCode, 201, created.body);
      const { client_id: clientId, client_secret: clientSecret } = created.json() as { client_id: string; client_secret: string };
      const driver = w.driverFor(clientId, clientSecret);
      const at = w.timeline();
      const older = await startChain(driver);
      const changed = await clients('PATCH', `/${clientId}`, { refresh_token_idle_ttl: HOUR });
      assert.equal(changed.statusCode, 200, changed.body);
      assert.equal(changed.json().refresh_token_idle_ttl, HOUR);
      const newer = await startChain(driver);
      at(HOUR - 1);
      assert.equal(await refresh(newer), 'rotated', 'issued after the change, 1 h less 1 s unused');
      at(HOUR + 1);
      assert.equal(await refresh(older), 'rotated', 'issued before the change: 14 days');
      at(2 * HOUR);
      assert.equal(await refresh(newer), 'invalid_grant', 'issued after the change, 1 h and 1 s unused');
      at(2 * HOUR + 2);
      assert.equal(await refresh(older), 'invalid_grant', 'its successor, issued after the change, 1 h and 1 s unused');
    });
  });

  // Operators' own lifetimes: sessions 10 min idle / 1 h, refresh tokens 15 min idle / 30 min.
  describe(`configured lifetimes (${dialect})`, () => {
    let w: Awaited<ReturnType<typeof world>>;
    let portal: Driver;

    before(async () => {
      w = await world(dialect, {
        GATEHOUSE_SESSION_IDLE_SECONDS: '600',
        GATEHOUSE_SESSION_ABSOLUTE_SECONDS: '3600',
        GATEHOUSE_REFRESH_TOKEN_IDLE_SECONDS: '900',
        GATEHOUSE_REFRESH_TOKEN_ABSOLUTE_SECONDS: '1800',
      });
      portal = await w.application('Portal');
    });
    after(() => w.server.close());

    it('ends a session after the configured idle time', async () => {
      const at = w.timeline();
      const agent = await signedInBrowser(portal);
      at(599);
      assert.equal(await silentSignIn(agent, portal), 'signed in', '599 s unused');
      at(599 + 601);
      assert.equal(await silentSignIn(agent, portal), 'login_required', '601 s unused');
    });

    it('ends a session at the configured absolute time, however recently it was used', async () => {
      const at = w.timeline();
      const agent = await signedInBrowser(portal);
      for (let seconds = 500; seconds < 3600; seconds += 500) {
        at(seconds);
        assert.equal(await silentSignIn(agent, portal), 'signed in', `${seconds} s after the sign-in`);
      }
      at(3599);
      assert.equal(await silentSignIn(agent, portal), 'signed in', '3599 s after the sign-in');
      at(3601);
      assert.equal(await silentSignIn(agent, portal), 'login_required', '3601 s after the sign-in, used 2 s before');
    });

    it('ends refresh tokens after the configured idle and absolute times', async () => {
      const at = w.timeline();
      const used = await startChain(portal);
      const unused = await startChain(portal);
      at(899);
      assert.equal(await refresh(used), 'rotated', '899 s unused');
      at(901);
      assert.equal(await refresh(unused), 'invalid_grant', '901 s unused');
      // The grant lives on (as long as the 1 h session): only the refresh token's own end counts.
      at(1798);
      assert.equal(await refresh(used), 'rotated', '1798 s after the sign-in');
      at(1801);
      assert.equal(await refresh(used), 'invalid_grant', '1801 s after the sign-in, used 3 s before');
    });

    it('counts the absolute end from the sign-in, even for a chain begun later by single sign-on', async () => {
      const at = w.timeline();
      const agent = await signedInBrowser(portal);
      at(500);
      const chain = await startChain(portal, agent);
      at(1000);
      assert.equal(await refresh(chain), 'rotated');
      at(1799);
      assert.equal(await refresh(chain), 'rotated', '1799 s after the sign-in');
      at(1801);
      assert.equal(await refresh(chain), 'invalid_grant', '1801 s after the sign-in (1301 s after the chain began)');
    });
  });
}
