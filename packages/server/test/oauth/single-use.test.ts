import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dialects, startServer, type TestServer } from '../helpers.js';
import { Agent, signInDriver, verifierPair } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const REDIRECT = 'https://shop.test/callback';
const PARALLEL = 12;
const API = 'https://orders.acme.test';
const OTHER_API = 'https://billing.acme.test';

// RFC 6749 §4.1.2 and RFC 9700 §4.14.2: a code and a refresh token work once. oidc-provider
// reads, checks, then consumes; requests sent at the same moment all pass the check, so only the
// database's consume can tell them apart. Requests go out truly in parallel to a listening server.
for (const dialect of dialects) {
  describe(`single-use codes and refresh tokens under concurrency (${dialect})`, () => {
    let server: TestServer;
    let driver: ReturnType<typeof signInDriver>;
    let apiDriver: ReturnType<typeof signInDriver>;
    let apiClientId: string;

    const audited = async (action: string) => {
      await server.core.audit.flush();
      return server.core.repos.audit.query({ tenantId: 'acme', action, limit: 100 });
    };
    /** Signs in with offline_access and returns the code and its verifier. */
    const freshCode = async () => {
      const { verifier, challenge } = verifierPair();
      const callback = await driver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid offline_access', prompt: 'consent' });
      return { code: callback.searchParams.get('code')!, verifier };
    };
    const parallel = <T>(n: number, request: () => Promise<T>) => Promise.all(Array.from({ length: n }, request));

    before(async () => {
      server = await startServer({ listen: true, dialect });
      await server.core.tenants.create('acme', 'Acme');
      await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD });
      const { client, clientSecret } = await server.core.catalog.createClient('acme', {
        name: 'Shop',
        grantTypes: ['authorization_code', 'refresh_token'],
        redirectUris: [REDIRECT],
        firstParty: true,
      });
      driver = signInDriver({ origin: server.url, tenant: 'acme', clientId: client.clientId, clientSecret: clientSecret!, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
      await server.core.catalog.createApi('acme', { identifier: API, scopes: ['orders:read'] });
      await server.core.catalog.createApi('acme', { identifier: OTHER_API, scopes: ['billing:read'] });
      const withApi = await server.core.catalog.createClient('acme', {
        name: 'Orders',
        grantTypes: ['authorization_code', 'refresh_token'],
        redirectUris: [REDIRECT],
        firstParty: true,
        apis: { [API]: ['orders:read'] },
      });
      apiClientId = withApi.client.clientId;
      apiDriver = signInDriver({ origin: server.url, tenant: 'acme', clientId: withApi.client.clientId, clientSecret: withApi.clientSecret!, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
    });
    after(() => server.close());

    it(`gives one token set for ${PARALLEL} parallel exchanges of one code, and the replay kills the grant`, async () => {
      for (let round = 0; round < 3; round++) {
        const { code, verifier } = await freshCode();
        const answers = await parallel(PARALLEL, () => driver.token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }));
        const issued = answers.filter((a) => a.status === 200);
        assert.equal(issued.length, 1, `round ${round}: ${answers.map((a) => a.status).join(' ')}`);
        assert.ok(answers.every((a) => a.status === 200 || a.json.error === 'invalid_grant'));
        // The others were replays: the grant died, the one refresh token issued with it too.
        const refreshed = await driver.token({ grant_type: 'refresh_token', refresh_token: issued[0]!.json.refresh_token! });
        assert.equal(refreshed.json.error, 'invalid_grant', `round ${round}`);
      }
      // Later ones find the code or the grant gone; at least one per round was caught as a reuse.
      assert.ok((await audited('authorization_code.reused')).length >= 3);
    });

    it('lets at most one of parallel refreshes of one refresh token through, and reuse detection ends the grant', async () => {
      for (let round = 0; round < 3; round++) {
        const { code, verifier } = await freshCode();
        const tokens = await driver.token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
        assert.equal(tokens.status, 200, JSON.stringify(tokens.json));
        const answers = await parallel(4, () => driver.token({ grant_type: 'refresh_token', refresh_token: tokens.json.refresh_token! }));
        const rotated = answers.filter((a) => a.status === 200);
        assert.ok(rotated.length <= 1, `round ${round}: ${answers.map((a) => a.status).join(' ')}`);
        assert.ok(answers.every((a) => a.status === 200 || a.json.error === 'invalid_grant'));
        // Whichever chain came out of it is dead: the grant was revoked.
        for (const next of rotated) assert.equal((await driver.token({ grant_type: 'refresh_token', refresh_token: next.json.refresh_token! })).json.error, 'invalid_grant');
      }
      assert.ok((await audited('refresh_token.reused')).length >= 3);
    });

    // RFC 8707 §2.2: a resource the client may not have is invalid_target. Refusing it must use
    // nothing up, or the client's corrected retry reads as reuse and kills the grant.
    it('refuses an unknown or not allowed resource before consuming the code or the refresh token', async () => {
      const { verifier, challenge } = verifierPair();
      const callback = await apiDriver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid offline_access', prompt: 'consent', resource: API });
      const exchange = (resource: string) =>
        apiDriver.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, resource });
      for (const resource of ['https://unknown.acme.test', OTHER_API]) assert.equal((await exchange(resource)).json.error, 'invalid_target', resource);
      const tokens = await exchange(API);
      assert.equal(tokens.status, 200, JSON.stringify(tokens.json));

      let refresh = tokens.json.refresh_token!;
      const refreshWith = (resource?: string) => apiDriver.token({ grant_type: 'refresh_token', refresh_token: refresh, ...(resource ? { resource } : {}) });
      for (const resource of ['https://unknown.acme.test', OTHER_API]) {
        const refused = await refreshWith(resource);
        assert.equal(refused.status, 400, resource);
        assert.equal(refused.json.error, 'invalid_target', resource);
      }
      // The retry is no reuse: the same refresh token rotates, and the grant lives on.
      for (const resource of [API, undefined]) {
        const rotated = await refreshWith(resource);
        assert.equal(rotated.status, 200, JSON.stringify(rotated.json));
        refresh = rotated.json.refresh_token!;
      }
      assert.equal((await audited('refresh_token.reused')).filter((e) => e.actor === apiClientId).length, 0);
    });
  });
}
