import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminToken, basic, dialects, startServer, type TestServer } from '../helpers.js';
import { Agent, signInDriver, verifierPair } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const REDIRECT = 'https://shop.test/callback';
const API = 'https://orders.acme.test';

// JWT access tokens never reach the engine's storage, so revoking their grant must reach them
// another way: every way a grant ends makes its access tokens inactive at introspection
// (RFC 7662 §2.2), at once, not when they expire.
for (const dialect of dialects) {
  describe(`revoking a grant revokes its JWT access tokens (${dialect})`, () => {
    let server: TestServer;
    let admin: string;
    let userId: string;
    let clientId: string;
    let clientSecret: string;
    let driver: ReturnType<typeof signInDriver>;

    const introspect = async (token: string) => {
      const response = await fetch(`${server.url}/t/acme/token/introspection`, {
        method: 'POST',
        headers: { authorization: basic(clientId, clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }),
      });
      return ((await response.json()) as { active: boolean }).active;
    };
    const users = (method: 'GET' | 'DELETE', path: string) =>
      server.inject({ method, url: `/api/v1/tenants/acme/users/${userId}${path}`, headers: { authorization: `Bearer ${admin}` } });
    /** Signs in for the API with offline_access; the code, and the tokens once exchanged. */
    const signIn = async () => {
      const { verifier, challenge } = verifierPair();
      const callback = await driver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid offline_access', prompt: 'consent', resource: API });
      const exchange = () => driver.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
      return { exchange };
    };
    const tokens = async () => {
      const issued = await (await signIn()).exchange();
      assert.equal(issued.status, 200, JSON.stringify(issued.json));
      assert.equal(issued.json.access_token!.split('.').length, 3);
      assert.equal(await introspect(issued.json.access_token!), true);
      return issued.json;
    };

    before(async () => {
      server = await startServer({ listen: true, dialect });
      admin = await adminToken(server);
      await server.core.tenants.create('acme', 'Acme');
      await server.core.catalog.createApi('acme', { identifier: API, scopes: ['orders:read'] });
      userId = (await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD })).id;
      const created = await server.core.catalog.createClient('acme', {
        name: 'Shop',
        grantTypes: ['authorization_code', 'refresh_token'],
        redirectUris: [REDIRECT],
        firstParty: true,
        apis: { [API]: ['orders:read'] },
      });
      clientId = created.client.clientId;
      clientSecret = created.clientSecret!;
      driver = signInDriver({ origin: server.url, tenant: 'acme', clientId, clientSecret, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
    });
    after(() => server.close());

    it('after a code replay', async () => {
      const { exchange } = await signIn();
      const issued = await exchange();
      assert.equal(await introspect(issued.json.access_token!), true);
      assert.equal((await exchange()).json.error, 'invalid_grant');
      assert.equal(await introspect(issued.json.access_token!), false);
    });

    it('after parallel exchanges of one code: the one token set issued is dead too', async () => {
      for (let round = 0; round < 3; round++) {
        const { exchange } = await signIn();
        const answers = await Promise.all(Array.from({ length: 8 }, exchange));
        const issued = answers.filter((a) => a.status === 200);
        assert.equal(issued.length, 1);
        assert.equal(await introspect(issued[0]!.json.access_token!), false, `round ${round}`);
      }
    });

    it('after a refresh-token reuse: the access tokens of the whole chain', async () => {
      const first = await tokens();
      const second = await driver.token({ grant_type: 'refresh_token', refresh_token: first.refresh_token! });
      assert.equal(second.status, 200, JSON.stringify(second.json));
      assert.equal(await introspect(second.json.access_token!), true);
      assert.equal((await driver.token({ grant_type: 'refresh_token', refresh_token: first.refresh_token! })).json.error, 'invalid_grant');
      assert.deepEqual([await introspect(first.access_token!), await introspect(second.json.access_token!)], [false, false]);
    });

    it('after DELETE …/grants/{grant}', async () => {
      const issued = await tokens();
      const grants = (await users('GET', '/grants')).json().grants as { id: string; client_id: string }[];
      for (const grant of grants.filter((g) => g.client_id === clientId)) assert.equal((await users('DELETE', `/grants/${grant.id}`)).statusCode, 204);
      assert.equal(await introspect(issued.access_token!), false);
    });

    it('after DELETE …/sessions (every grant of the account)', async () => {
      const a = await tokens();
      const b = await tokens();
      assert.equal((await users('DELETE', '/sessions')).statusCode, 204);
      assert.deepEqual([await introspect(a.access_token!), await introspect(b.access_token!)], [false, false]);
    });
  });
}
