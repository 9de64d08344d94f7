import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminCaller, adminToken, basic, dialects, seedClient, startServer, type TestServer } from '../helpers.js';
import { Agent, signInDriver, verifierPair } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const REDIRECT = 'https://portal.test/callback';

// Issue 9 part 22, RFC 7662 §2.1: a token is introspected by its own client or by a resource
// server of its API; any other client of the tenant reads active: false.
for (const dialect of dialects) {
  describe(`who may introspect (${dialect})`, () => {
    let server: TestServer;
    let owner: Awaited<ReturnType<typeof seedClient>>;
    let resourceServer: Awaited<ReturnType<typeof seedClient>>;
    let bystander: Awaited<ReturnType<typeof seedClient>>;
    let admin: ReturnType<typeof adminCaller>;
    let token: string;
    const introspect = async (by: { clientId: string; clientSecret: string }, value: string) => {
      const response = await server.inject({
        method: 'POST',
        url: '/t/default/token/introspection',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(by.clientId, by.clientSecret) },
        payload: new URLSearchParams({ token: value }).toString(),
      });
      assert.equal(response.statusCode, 200);
      return response.json() as { active: boolean; client_id?: string };
    };

    before(async () => {
      server = await startServer({ dialect, listen: true });
      const bearer = await adminToken(server);
      admin = adminCaller(() => server, () => bearer);
      owner = await seedClient(server, { identifier: 'https://orders.test' });
      resourceServer = await seedClient(server, { identifier: 'https://billing.test' });
      bystander = await seedClient(server, { identifier: 'https://billing.test' });
      const issued = await server.inject({
        method: 'POST',
        url: '/t/default/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(owner.clientId, owner.clientSecret) },
        payload: 'grant_type=client_credentials',
      });
      token = issued.json().access_token;
    });
    after(() => server.close());

    it('marks a client as a resource server of an API through the admin API, and refuses unknown or public clients', async () => {
      const marked = await admin('PATCH', `/tenants/default/apis/${encodeURIComponent('https://orders.test')}`, { resource_servers: [resourceServer.clientId] });
      assert.equal(marked.statusCode, 200, marked.body);
      assert.deepEqual(marked.json().resource_servers, [resourceServer.clientId]);
      const unknown = await admin('PATCH', `/tenants/default/apis/${encodeURIComponent('https://orders.test')}`, { resource_servers: ['cl_nobody'] });
      assert.equal(unknown.statusCode, 400);
      assert.equal(unknown.json().code, 'OAUTH_RESOURCE_SERVER_INVALID');
      const pub = await server.core.catalog.createClient('default', { name: 'spa', type: 'public', grantTypes: ['authorization_code'], redirectUris: [REDIRECT] });
      const refused = await admin('POST', '/tenants/default/apis', { identifier: 'https://other.test', scopes: ['read'], resource_servers: [pub.client.clientId] });
      assert.equal(refused.json().code, 'OAUTH_RESOURCE_SERVER_INVALID');
      await server.core.feed.catchUp();
    });

    it('answers a JWT access token to its own client and to the API\'s resource server, to nobody else', async () => {
      assert.equal((await introspect(owner, token)).active, true);
      const seen = await introspect(resourceServer, token);
      assert.equal(seen.active, true);
      assert.equal(seen.client_id, owner.clientId);
      assert.deepEqual(await introspect(bystander, token), { active: false });
      await server.core.audit.flush();
      const refused = await server.core.repos.audit.query({ tenantId: 'default', action: 'token.introspected', result: 'failure', limit: 5 });
      assert.deepEqual(refused.map((e) => e.actor), [bystander.clientId]);
    });

    it('answers a refresh token to its own client only', async () => {
      await server.core.tenants.get('default');
      await server.core.users.create('default', { email: 'ann@default.test', password: PASSWORD });
      const { client, clientSecret } = await server.core.catalog.createClient('default', { name: 'Portal', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [REDIRECT], firstParty: true, apis: { 'https://orders.test': ['read'] } });
      const driver = signInDriver({ origin: server.url, tenant: 'default', clientId: client.clientId, clientSecret: clientSecret!, redirectUri: REDIRECT, email: 'ann@default.test', password: PASSWORD });
      const { verifier, challenge } = verifierPair();
      const callback = await driver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid offline_access read', resource: 'https://orders.test', prompt: 'consent' });
      const tokens = await driver.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, resource: 'https://orders.test' });
      const refresh = tokens.json.refresh_token!;
      assert.ok(refresh, JSON.stringify(tokens.json));
      assert.equal((await introspect({ clientId: client.clientId, clientSecret: clientSecret! }, refresh)).active, true);
      assert.deepEqual(await introspect(resourceServer, refresh), { active: false });
      assert.deepEqual(await introspect(bystander, refresh), { active: false });
    });

    it('forgets a deleted client as a resource server', async () => {
      await server.core.catalog.deleteClient('default', resourceServer.clientId);
      await server.core.feed.catchUp();
      assert.deepEqual((await server.core.catalog.apiByIdentifier('default', 'https://orders.test'))?.resourceServers, []);
    });
  });
}
