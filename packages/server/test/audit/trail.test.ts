import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StoredAuditEvent } from '../../src/audit/index.js';
import { Agent, action, field, verifierPair } from '../oauth/browserless.js';
import { basic, dialects, startServer, testClock, type TestServer } from '../helpers.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'https://shop.test/callback';
const DAY = 24 * 60 * 60_000;

for (const dialect of dialects) {
  describe(`audit trail of unauthenticated callers (${dialect})`, () => {
    let server: TestServer;
    const clock = testClock(Date.now());
    let victim: { clientId: string; clientSecret: string };
    let annId: string;

    const events = async (action: string, tenantId = 'acme'): Promise<StoredAuditEvent[]> => {
      await server.core.audit.flush();
      return server.core.repos.audit.query({ tenantId, action, limit: 1000 });
    };
    /** Ends the current window of counted repeats: its counts are written. */
    const endWindow = async () => {
      clock.advance(61_000);
      await server.core.audit.flush();
    };
    const badToken = (clientId: string) =>
      fetch(`${server.url}/t/acme/token`, {
        method: 'POST',
        headers: { authorization: basic(clientId, 'not-the-secret'), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      }).then(async (r) => (await r.arrayBuffer(), r.status));

    before(async () => {
      server = await startServer({ listen: true, dialect, clock, env: { GATEHOUSE_AUDIT_RETENTION_DAYS: '30', GATEHOUSE_LOGIN_MAX_FAILURES_PER_ACCOUNT: '50' } });
      await server.core.tenants.create('acme', 'Acme');
      await server.core.catalog.createApi('acme', { identifier: 'https://api.acme.test', scopes: ['read'] });
      const created = await server.core.catalog.createClient('acme', { name: 'victim', grantTypes: ['client_credentials'], apis: { 'https://api.acme.test': ['read'] } });
      victim = { clientId: created.client.clientId, clientSecret: created.clientSecret! };
      annId = (await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD })).id;
    });
    after(() => server.close());

    it('names an offered client id as a claim, never as the actor, and counts a flood of failures in one row', async () => {
      await endWindow();
      const statuses = await Promise.all(Array.from({ length: 150 }, () => badToken(victim.clientId)));
      assert.deepEqual([...new Set(statuses)], [401]);
      const first = (await events('client.authentication_failed')).filter((e) => e.details?.claimed_client_id === victim.clientId);
      assert.equal(first.length, 1, 'one row for the first failure of the window');
      assert.equal(first[0]!.actor, null, 'an unauthenticated caller is nobody');
      assert.equal(first[0]!.ip, '127.0.0.1');

      await endWindow();
      const rows = (await events('client.authentication_failed')).filter((e) => e.details?.claimed_client_id === victim.clientId);
      assert.equal(rows.length, 2, 'the first failure and one row counting the others');
      const summary = rows.find((e) => e.details?.repeated !== undefined)!;
      assert.equal(summary.details!.repeated, 149);
      assert.equal(summary.actor, null);

      // A client id nobody registered is recorded as claimed too.
      assert.equal(await badToken('made-up-by-the-caller'), 401);
      const madeUp = (await events('client.authentication_failed')).filter((e) => e.details?.claimed_client_id === 'made-up-by-the-caller');
      assert.equal(madeUp.length, 1);
      assert.equal(madeUp[0]!.actor, null);

      // The same rule at the endpoints Gatehouse answers itself (introspection of JWTs).
      const introspections = await Promise.all(
        Array.from({ length: 30 }, () =>
          fetch(`${server.url}/t/acme/token/introspection`, {
            method: 'POST',
            headers: { authorization: basic(victim.clientId, 'wrong'), 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ token: 'a.b.c' }),
          }).then((r) => r.status),
        ),
      );
      assert.deepEqual([...new Set(introspections)], [401]);
      const atIntrospection = (await events('client.authentication_failed')).filter((e) => e.target === 'introspection');
      assert.equal(atIntrospection.length, 1);
      assert.equal(atIntrospection[0]!.actor, null);
      assert.equal(atIntrospection[0]!.details!.claimed_client_id, victim.clientId);
    });

    it('folds failures spread over many claimed client ids from one address', async () => {
      await endWindow();
      await Promise.all(Array.from({ length: 60 }, (_, i) => badToken(`spray-${i}`)));
      await endWindow();
      const rows = await events('client.authentication_failed');
      const named = rows.filter((e) => String(e.details?.claimed_client_id).startsWith('spray-'));
      const folded = rows.filter((e) => e.details?.claimed_client_id === '*');
      assert.equal(named.length, 10, 'ten claimed ids named one by one');
      assert.equal(folded.length, 2, 'the rest folded: a first row and its count');
      assert.equal(1 + Number(folded.find((e) => e.details?.repeated !== undefined)!.details!.repeated), 50);
    });

    it('counts unauthenticated admin calls in one row without an actor', async () => {
      await endWindow();
      const statuses = await Promise.all(Array.from({ length: 40 }, () => fetch(`${server.url}/api/v1/tenants`, { headers: { authorization: 'Bearer not-a-token' } }).then((r) => r.status)));
      assert.deepEqual([...new Set(statuses)], [401]);
      await endWindow();
      const rows = (await events('admin.authentication_failed', 'default')).filter((e) => e.target === 'GET /api/v1/tenants');
      assert.equal(rows.length, 2);
      assert.ok(rows.every((e) => e.actor === null));
      assert.equal(rows.find((e) => e.details?.repeated !== undefined)!.details!.repeated, 39);
    });

    it('names the account a failed sign-in tried: the user id, or an HMAC of an unknown email', async () => {
      await endWindow();
      const app = await server.core.catalog.createClient('acme', { name: 'Shop', grantTypes: ['authorization_code'], redirectUris: [REDIRECT], firstParty: true });
      const tryPassword = async (email: string) => {
        const agent = new Agent(server.url);
        const { challenge } = verifierPair();
        const url = new URL(`${server.url}/t/acme/auth`);
        for (const [k, v] of Object.entries({ client_id: app.client.clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' })) url.searchParams.set(k, v);
        const page = (await agent.follow(url.href)).page!;
        const posted = await agent.follow(action(page, 'login')!, { method: 'POST', body: new URLSearchParams({ csrf: field(page, 'csrf')!, email, password: 'wrong password' }) });
        assert.equal(posted.status, 401);
      };
      for (let i = 0; i < 3; i++) await tryPassword('ann@acme.test');
      await tryPassword('ghost@acme.test');
      await tryPassword('GHOST@acme.test');
      await endWindow();
      const rows = await events('login.failed');
      const onAnn = rows.filter((e) => e.target === annId);
      assert.equal(onAnn.length, 2, 'the first attempt on the account and the count of the others');
      assert.equal(onAnn.find((e) => e.details?.repeated !== undefined)!.details!.repeated, 2);
      assert.ok(onAnn.every((e) => e.actor === null && e.details?.client_id === app.client.clientId));
      const onGhost = rows.filter((e) => e.details?.reason === 'unknown_email');
      assert.equal(new Set(onGhost.map((e) => e.target)).size, 1, 'one name for one address, however typed');
      assert.match(onGhost[0]!.target!, /^email-hmac:/);
      assert.ok(!JSON.stringify(rows).includes('ghost'), 'the typed address is not in the trail');
    });

    it('deletes audit events older than GATEHOUSE_AUDIT_RETENTION_DAYS and keeps the rest', async () => {
      const now = clock();
      await server.core.repos.audit.append([
        { tenantId: 'acme', time: now - 400 * DAY, action: 'tenant.updated', actor: 'old', result: 'success' },
        { tenantId: 'acme', time: now - 31 * DAY, action: 'tenant.updated', actor: 'old', result: 'success' },
        { tenantId: 'acme', time: now - 29 * DAY, action: 'tenant.updated', actor: 'recent', result: 'success' },
      ]);
      assert.equal(await server.core.pruneAudit(), 2);
      const left = await events('tenant.updated');
      assert.deepEqual(left.map((e) => e.actor), ['recent']);
      assert.ok((await events('client.authentication_failed')).length > 0, 'this window\'s events stay');
    });
  });
}
