import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dialects, startServer, type TestServer } from '../helpers.js';
import { action, Agent, field } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

// RFC 8628: a command-line tool shows a code, the person types it on the device page in a
// browser, signs in, and the tool's polling gets the tokens.
for (const dialect of dialects) {
  describe(`device authorization grant (${dialect})`, () => {
    let server: TestServer;
    let clientId: string;

    const post = async (path: string, form: Record<string, string>) => {
      const response = await fetch(`${server.url}/t/acme${path}`, { method: 'POST', body: new URLSearchParams({ client_id: clientId, ...form }) });
      return { status: response.status, json: (await response.json()) as Record<string, string> };
    };
    /** Submits one of the engine's forms: every hidden field of the form, plus `extra`. */
    const submit = (agent: Agent, html: string, formIndex: number, extra: Record<string, string> = {}) => {
      const form = [...html.matchAll(/<form method="post" action="([^"]*)">([\s\S]*?)<\/form>/g)][formIndex]!;
      const fields = Object.fromEntries([...form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]));
      return agent.follow(form[1]!, { method: 'POST', body: new URLSearchParams({ ...fields, ...extra }) });
    };
    /** Every row of the tenant's engine storage (payloads, codes, interactions, sessions). */
    const storedRows = () => server.core.handle.db.selectFrom('oidc_payloads').selectAll().where('tenant_id', '=', 'acme').execute();
    const assertNotStored = async (secret: string, when: string) => {
      const rows = await storedRows();
      const holding = rows.filter((row) => Object.values(row).some((value) => typeof value === 'string' && value.includes(secret)));
      assert.deepEqual(
        holding.map((row) => row.model),
        [],
        `the device code is stored in the clear ${when}`,
      );
    };
    /** Enters the user code, confirms it and signs in; `onConfirmed` runs between confirming and signing in. */
    const approve = async (userCode: string, onConfirmed: () => Promise<void> = async () => {}) => {
      const agent = new Agent(server.url);
      const entry = await agent.follow(`${server.url}/t/acme/device`);
      const confirm = await submit(agent, entry.page!, 0, { user_code: userCode });
      const login = await submit(agent, confirm.page!, 0);
      assert.ok(action(login.page!, 'login'), login.page);
      await onConfirmed();
      const done = await agent.follow(action(login.page!, 'login')!, { method: 'POST', body: new URLSearchParams({ csrf: field(login.page!, 'csrf')!, email: 'ann@acme.test', password: PASSWORD }) });
      assert.match(done.page!, /Device connected/);
    };

    before(async () => {
      server = await startServer({ listen: true, dialect });
      await server.core.tenants.create('acme', 'Acme');
      await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD });
      const { client } = await server.core.catalog.createClient('acme', { name: 'acme-cli', type: 'public', grantTypes: [DEVICE_CODE, 'refresh_token'], firstParty: true });
      clientId = client.clientId;
    });
    after(() => server.close());

    it('signs a person in on another screen; the device gets tokens once they have', async () => {
      const started = await post('/device/auth', { scope: 'openid offline_access' });
      assert.equal(started.status, 200, JSON.stringify(started.json));
      const { device_code, user_code, verification_uri } = started.json;
      assert.match(user_code!, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
      assert.equal((await post('/token', { grant_type: DEVICE_CODE, device_code: device_code! })).json.error, 'authorization_pending');

      const agent = new Agent(server.url);
      const entry = await agent.follow(verification_uri!);
      assert.match(entry.page!, /<title>Connect a device – Acme<\/title>/);
      assert.match(entry.page!, /<label for="user_code">Code<\/label>/);
      assert.doesNotMatch(entry.page!, /onfocus|<script/);
      // Typed without the dash and in lower case, as people do.
      const confirm = await submit(agent, entry.page!, 0, { user_code: user_code!.replace('-', '').toLowerCase() });
      assert.match(confirm.page!, /Is this your device\?/);
      assert.match(confirm.page!, new RegExp(`<code>${user_code}</code>`));
      const login = await submit(agent, confirm.page!, 0);
      assert.ok(action(login.page!, 'login'), login.page);
      const done = await agent.follow(action(login.page!, 'login')!, { method: 'POST', body: new URLSearchParams({ csrf: field(login.page!, 'csrf')!, email: 'ann@acme.test', password: PASSWORD }) });
      assert.match(done.page!, /Device connected/);

      const tokens = await post('/token', { grant_type: DEVICE_CODE, device_code: device_code! });
      assert.equal(tokens.status, 200, JSON.stringify(tokens.json));
      assert.ok(tokens.json.id_token && tokens.json.access_token && tokens.json.refresh_token);
      const refreshed = await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.json.refresh_token! });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.json));
      // The device code works once; presented again, it revokes what it issued.
      assert.equal((await post('/token', { grant_type: DEVICE_CODE, device_code: device_code! })).json.error, 'invalid_grant');
      assert.equal((await post('/token', { grant_type: 'refresh_token', refresh_token: refreshed.json.refresh_token! })).json.error, 'invalid_grant');
    });

    it('gives one token set to parallel polls of an approved device code, and the replay kills the grant', async () => {
      for (let round = 0; round < 3; round++) {
        const started = await post('/device/auth', { scope: 'openid offline_access' });
        await approve(started.json.user_code!);
        const answers = await Promise.all(Array.from({ length: 12 }, () => post('/token', { grant_type: DEVICE_CODE, device_code: started.json.device_code! })));
        const issued = answers.filter((a) => a.status === 200);
        assert.equal(issued.length, 1, `round ${round}: ${answers.map((a) => a.status).join(' ')}`);
        assert.ok(answers.every((a) => a.status === 200 || a.json.error === 'invalid_grant'));
        assert.equal((await post('/token', { grant_type: 'refresh_token', refresh_token: issued[0]!.json.refresh_token! })).json.error, 'invalid_grant');
      }
      await server.core.audit.flush();
      assert.ok((await server.core.repos.audit.query({ tenantId: 'acme', action: 'device_code.reused', limit: 10 })).length >= 1);
    });

    it('says how often to poll, and answers slow_down to a device that polls sooner (RFC 8628 §3.2, §3.5)', async () => {
      const started = await post('/device/auth', { scope: 'openid' });
      assert.equal(started.json.interval, 5 as unknown as string);
      const poll = () => post('/token', { grant_type: DEVICE_CODE, device_code: started.json.device_code! });
      assert.equal((await poll()).json.error, 'authorization_pending');
      const fast = await poll();
      assert.equal(fast.status, 400);
      assert.equal(fast.json.error, 'slow_down');
      // Once the person has answered, the device gets its answer whatever its pace.
      await approve(started.json.user_code!);
      assert.equal((await poll()).status, 200);
    });

    it('says so when the code is wrong, and lets the person cancel', async () => {
      const agent = new Agent(server.url);
      const started = await post('/device/auth', { scope: 'openid' });
      const entry = await agent.follow(started.json.verification_uri!);
      const wrong = await submit(agent, entry.page!, 0, { user_code: 'BBBB-BBBB' });
      assert.match(wrong.page!, /role="alert">That code is not right/);
      const confirm = await submit(agent, wrong.page!, 0, { user_code: started.json.user_code! });
      await submit(agent, confirm.page!, 1);
      assert.equal((await post('/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: started.json.device_code! })).json.error, 'access_denied');
    });

    it('keeps no usable device code in the database, from the request to the tokens', async () => {
      const started = await post('/device/auth', { scope: 'openid offline_access' });
      const { device_code, user_code } = started.json;
      assert.ok((await storedRows()).some((row) => row.model === 'DeviceCode'));
      await assertNotStored(device_code!, 'after the device authorization request');
      assert.equal((await post('/token', { grant_type: DEVICE_CODE, device_code: device_code! })).json.error, 'authorization_pending');
      // Confirming finds the code by the user code and saves it again, and the sign-in keeps a
      // reference to it in its Interaction until the browser comes back.
      await approve(user_code!, async () => {
        assert.ok((await storedRows()).some((row) => row.model === 'Interaction' && row.payload.includes('"deviceCode"')));
        await assertNotStored(device_code!, 'after the person confirmed the code');
      });
      await assertNotStored(device_code!, 'after the person signed in');

      const tokens = await post('/token', { grant_type: DEVICE_CODE, device_code: device_code! });
      assert.equal(tokens.status, 200, JSON.stringify(tokens.json));
      assert.ok(tokens.json.access_token && tokens.json.refresh_token);
      await assertNotStored(device_code!, 'after the tokens were issued');
      assert.equal((await post('/token', { grant_type: DEVICE_CODE, device_code: device_code! })).json.error, 'invalid_grant');
    });

    it('refuses a device code rebuilt from what the database stores', async () => {
      const started = await post('/device/auth', { scope: 'openid' });
      const { device_code, user_code } = started.json;
      await approve(user_code!);
      const rows = (await storedRows()).filter((row) => row.model === 'DeviceCode' && row.user_code === user_code!.replace('-', ''));
      assert.equal(rows.length, 1);
      const storedId = rows[0]!.id;
      // The row's id, bare or in the form the engine gets back when it finds a code by user code.
      for (const forged of [storedId, `~${storedId}`]) {
        const refused = await post('/token', { grant_type: DEVICE_CODE, device_code: forged });
        assert.equal(refused.status, 400, forged);
        assert.equal(refused.json.error, 'invalid_grant', forged);
      }
      // Refusing them used up nothing: the device's own code still works, once.
      const tokens = await post('/token', { grant_type: DEVICE_CODE, device_code: device_code! });
      assert.equal(tokens.status, 200, JSON.stringify(tokens.json));
    });

    it('denies the device when the person cancels, and keeps that code hashed too', async () => {
      const started = await post('/device/auth', { scope: 'openid' });
      const { device_code, user_code } = started.json;
      const agent = new Agent(server.url);
      const entry = await agent.follow(started.json.verification_uri!);
      const confirm = await submit(agent, entry.page!, 0, { user_code: user_code! });
      await submit(agent, confirm.page!, 1);
      await assertNotStored(device_code!, 'after the person cancelled');
      assert.equal((await post('/token', { grant_type: DEVICE_CODE, device_code: device_code! })).json.error, 'access_denied');
      // The same code cannot be confirmed after all.
      const again = await submit(agent, (await agent.follow(started.json.verification_uri!)).page!, 0, { user_code: user_code! });
      assert.match(again.page!, /role="alert">That code is not right/);
    });

    it('limits wrong user codes per address: parallel guesses get 429 past the limit, and a right code still needs a slot', async () => {
      /** One browser at the code page, ready to send a code (each form's xsrf secret is used once). */
      const browser = async () => {
        const agent = new Agent(server.url);
        const entry = await agent.follow(`${server.url}/t/guessed/device`);
        const form = [...entry.page!.matchAll(/<form method="post" action="([^"]*)">([\s\S]*?)<\/form>/g)][0]!;
        const fields = Object.fromEntries([...form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]));
        return async (userCode: string) => {
          const response = await agent.request(form[1]!, { method: 'POST', body: new URLSearchParams({ ...fields, user_code: userCode }) });
          return { status: response.status, retryAfter: response.headers.get('retry-after'), page: await response.text() };
        };
      };
      // A tenant of its own: its counters start at zero.
      await server.core.tenants.create('guessed', 'Guessed');
      const { client } = await server.core.catalog.createClient('guessed', { name: 'tv', type: 'public', grantTypes: [DEVICE_CODE], firstParty: true });
      const letters = 'GHJKLMNPQRSTVWXZ';
      const browsers = await Promise.all(Array.from({ length: 60 }, browser));
      const answers = await Promise.all(browsers.map((send, i) => send(`BCDF${letters[i % 16]}${letters[Math.floor(i / 16)]}ZZ`)));
      const refused = answers.filter((a) => a.status === 429);
      // GATEHOUSE_DEVICE_MAX_FAILURES_PER_IP: 20 guesses looked up, the other 40 refused unseen.
      assert.equal(answers.filter((a) => a.status !== 429).length, 20, answers.map((a) => a.status).join(' '));
      assert.ok(answers.filter((a) => a.status !== 429).every((a) => /That code is not right/.test(a.page)));
      assert.equal(refused.length, 40);
      assert.ok(refused.every((a) => Number(a.retryAfter) > 0 && /Too many codes were not right/.test(a.page)));
      // The limit holds for a right code too: guessing cannot be told from typing.
      const started = (await (await fetch(`${server.url}/t/guessed/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: client.clientId, scope: 'openid' }) })).json()) as { user_code: string };
      assert.equal((await (await browser())(started.user_code)).status, 429);
      await server.core.audit.flush();
      assert.equal((await server.core.repos.audit.query({ tenantId: 'guessed', action: 'device.user_code_rate_limited', limit: 100 })).length, 41);
    });
  });
}

// RFC 8628 §5.1: guesses spread over many addresses are bounded per tenant.
describe('device user-code guesses from many addresses', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ listen: true, env: { GATEHOUSE_TRUST_PROXY: 'true', GATEHOUSE_DEVICE_MAX_FAILURES_PER_TENANT: '10' } });
    await server.core.tenants.create('acme', 'Acme');
  });
  after(() => server.close());

  it('refuses with 429 past the tenant limit, whichever address guesses', async () => {
    const guessFrom = async (i: number) => {
      const agent = new Agent(server.url);
      const headers = { 'x-forwarded-for': `198.51.100.${i + 1}` };
      const entry = await agent.follow(`${server.url}/t/acme/device`, { headers });
      const form = [...entry.page!.matchAll(/<form method="post" action="([^"]*)">([\s\S]*?)<\/form>/g)][0]!;
      const fields = Object.fromEntries([...form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]));
      return async () => (await agent.request(form[1]!, { method: 'POST', headers, body: new URLSearchParams({ ...fields, user_code: 'BBBBBBBB' }) })).status;
    };
    const senders = await Promise.all(Array.from({ length: 30 }, (_, i) => guessFrom(i)));
    const statuses = await Promise.all(senders.map((send) => send()));
    assert.equal(statuses.filter((s) => s !== 429).length, 10, statuses.join(' '));
  });
});
