import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminCaller, adminToken, basic, dialects, startServer, tokenRequest, type TestServer } from '../helpers.js';

// Issue 9 part 12: what a client may ask of an API follows the API. A scope removed and added
// again, or an API deleted and created again under the same identifier, grants old clients
// nothing.
for (const dialect of dialects) {
  describe(`client access follows its APIs (${dialect})`, () => {
    let server: TestServer;
    let admin: ReturnType<typeof adminCaller>;
    const IDENTIFIER = 'https://orders.test';
    const path = `/tenants/default/apis/${encodeURIComponent(IDENTIFIER)}`;
    const issue = (client: { clientId: string; clientSecret: string }, form: Record<string, string>) =>
      tokenRequest(server, { grant_type: 'client_credentials', resource: IDENTIFIER, ...form }, { authorization: basic(client.clientId, client.clientSecret) });
    const newClient = async (scopes: string[]) => {
      const { client, clientSecret } = await server.core.catalog.createClient('default', { name: 'svc', grantTypes: ['client_credentials'], apis: { [IDENTIFIER]: scopes } });
      return { clientId: client.clientId, clientSecret: clientSecret! };
    };
    const entries = async (clientId: string) => (await admin('GET', `/tenants/default/clients/${clientId}`)).json().apis as Record<string, string[]>;

    before(async () => {
      server = await startServer({ dialect });
      const bearer = await adminToken(server);
      admin = adminCaller(() => server, () => bearer);
    });
    after(() => server.close());

    it('a scope removed from an API and added again is not granted again', async () => {
      assert.equal((await admin('POST', '/tenants/default/apis', { identifier: IDENTIFIER, scopes: ['read', 'write'] })).statusCode, 201);
      const client = await newClient(['read', 'write']);
      assert.equal((await issue(client, { scope: 'write' })).status, 200);
      assert.equal((await admin('PATCH', path, { scopes: ['read'] })).statusCode, 200);
      assert.deepEqual(await entries(client.clientId), { [IDENTIFIER]: ['read'] });
      assert.equal((await admin('PATCH', path, { scopes: ['read', 'write'] })).statusCode, 200);
      assert.deepEqual(await entries(client.clientId), { [IDENTIFIER]: ['read'] });
      assert.equal((await issue(client, { scope: 'write' })).json.error, 'invalid_scope');
      assert.equal((await issue(client, { scope: 'read' })).status, 200);
    });

    it('an API deleted and created again under its identifier is not granted to old clients', async () => {
      const client = await newClient(['read']);
      assert.equal((await admin('DELETE', path)).statusCode, 204);
      assert.deepEqual(await entries(client.clientId), {});
      assert.equal((await admin('POST', '/tenants/default/apis', { identifier: IDENTIFIER, scopes: ['read', 'write'] })).statusCode, 201);
      assert.deepEqual(await entries(client.clientId), {});
      const refused = await issue(client, {});
      assert.equal(refused.json.error, 'invalid_target');
    });

    it('a client write racing an API change ends with the API\'s rule applied', async () => {
      const store = server.core.repos.oauth;
      for (let round = 0; round < 10; round++) {
        const api = (await store.listApis('default')).find((a) => a.identifier === IDENTIFIER)!;
        await store.updateApi({ ...api, scopes: ['read', 'write'] });
        const client = await newClient(['read']);
        const record = (await store.getClient('default', client.clientId))!.client;
        // The client write was checked against the API as it stood before the change.
        await Promise.all([store.updateApi({ ...api, scopes: ['read'] }), store.updateClient({ ...record, apiScopes: { [IDENTIFIER]: ['read', 'write'] } })]);
        assert.deepEqual((await store.getClient('default', client.clientId))!.client.apiScopes, { [IDENTIFIER]: ['read'] }, `round ${round}`);
        await Promise.all([store.deleteApi('default', api.id), store.updateClient({ ...record, apiScopes: { [IDENTIFIER]: ['read'] } })]);
        assert.deepEqual((await store.getClient('default', client.clientId))!.client.apiScopes, {}, `round ${round}`);
        await server.core.catalog.createApi('default', { identifier: IDENTIFIER, scopes: ['read', 'write'] });
      }
    });
  });
}
