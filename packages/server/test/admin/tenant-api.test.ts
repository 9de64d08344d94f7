import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TENANT_API } from '../../src/core.js';
import { adminCaller, adminToken, basic, dialects, startServer, tokenRequest, type TestServer } from '../helpers.js';

const schema = `definition user {}

definition document {
  relation viewer: user
  permission view = viewer
}
`;

for (const dialect of dialects) {
  describe(`tenant tokens for urn:gatehouse:tenant (${dialect})`, () => {
    let server: TestServer;
    let operator: string;
    const call = adminCaller(() => server, () => operator);

    /** A client of `tenant` allowed `scopes` of its tenant API, and a token of it. */
    async function tenantToken(tenant: string, scopes: string[]) {
      const { client, clientSecret } = await server.core.catalog.createClient(tenant, { name: 'tenant service', grantTypes: ['client_credentials'], apis: { [TENANT_API.identifier]: scopes } });
      const { json } = await tokenRequest(server, { grant_type: 'client_credentials', resource: TENANT_API.identifier }, { tenant, authorization: basic(client.clientId, clientSecret!) });
      assert.ok(json.access_token, JSON.stringify(json));
      return json.access_token;
    }

    before(async () => {
      server = await startServer({ dialect });
      operator = await adminToken(server);
      for (const id of ['acme', 'beta']) assert.equal((await call('POST', '/tenants', { id })).statusCode, 201);
    });
    after(() => server.close());

    it('gives every new tenant the built-in API with its eight scopes, and none to the default tenant', async () => {
      const apis = (await call('GET', '/tenants/acme/apis')).json().apis as { identifier: string; scopes: string[]; builtin: boolean; access_token_ttl: number }[];
      const api = apis.find((a) => a.identifier === TENANT_API.identifier);
      assert.ok(api);
      assert.deepEqual(api.scopes, [...TENANT_API.scopes]);
      assert.equal(api.builtin, true);
      assert.equal(api.access_token_ttl, 300);
      assert.equal((await call('DELETE', `/tenants/acme/apis/${encodeURIComponent(TENANT_API.identifier)}`)).json().code, 'OAUTH_API_BUILTIN');
      const defaults = (await call('GET', '/tenants/default/apis')).json().apis as { identifier: string }[];
      assert.ok(!defaults.some((a) => a.identifier === TENANT_API.identifier));
    });

    it('gives tenants of an older database the API at start-up', async () => {
      await server.core.repos.tenants.create({ id: 'legacy', displayName: 'legacy', createdAt: Date.now() });
      assert.equal(await server.core.catalog.apiByIdentifier('legacy', TENANT_API.identifier), undefined);
      await server.core.ensureDefaults();
      assert.equal((await server.core.catalog.apiByIdentifier('legacy', TENANT_API.identifier))?.builtin, true);
    });

    it('acts on its own tenant\'s permissions, users, clients and audit trail', async () => {
      const token = await tenantToken('acme', [...TENANT_API.scopes]);
      const own = (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) => call(method, `/tenants/acme${url}`, body, token);
      assert.equal((await own('PUT', '/authz/schema', { schema })).statusCode, 200);
      assert.equal((await own('POST', '/authz/relationships/write', { updates: [{ operation: 'touch', relationship: 'document:1#viewer@user:ann' }] })).statusCode, 200);
      assert.equal((await own('POST', '/authz/check', { resource: 'document:1', permission: 'view', subject: 'user:ann' })).json().permissionship, 'allowed');
      assert.equal((await own('POST', '/users', { email: 'ann@acme.example' })).statusCode, 201);
      assert.equal((await own('GET', '/users')).statusCode, 200);
      const created = await own('POST', '/clients', { name: 'acme app', grant_types: ['client_credentials'] });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal((await own('GET', '/clients')).statusCode, 200);
      assert.equal((await own('POST', `/clients/${created.json().client_id}/revoke-tokens`)).statusCode, 200);
      const audit = await own('GET', '/audit?action=client.created');
      assert.equal(audit.statusCode, 200);
      assert.ok((audit.json().events as { target: string }[]).some((e) => e.target === created.json().client_id));
    });

    it('answers 403 on another tenant\'s routes', async () => {
      const token = await tenantToken('acme', [...TENANT_API.scopes]);
      for (const [method, url, body] of [
        ['GET', '/tenants/beta/authz/schema', undefined],
        ['POST', '/tenants/beta/authz/check', { resource: 'document:1', permission: 'view', subject: 'user:ann' }],
        ['GET', '/tenants/beta/users', undefined],
        ['GET', '/tenants/beta/clients', undefined],
        ['POST', '/tenants/beta/clients', { name: 'x', grant_types: ['client_credentials'] }],
        ['GET', '/tenants/beta/audit', undefined],
        ['GET', '/tenants/default/clients', undefined],
        ['POST', '/tenants/default/clients/gatehouse-bootstrap/secret', { grace_seconds: 0 }],
      ] as const) {
        const response = await call(method, url, body, token);
        assert.equal(response.statusCode, 403, `${method} ${url}`);
        assert.equal(response.json().code, 'ADMIN_FORBIDDEN');
      }
    });

    it('answers 403 on the operator\'s routes, its own tenant\'s included', async () => {
      const token = await tenantToken('acme', [...TENANT_API.scopes]);
      for (const [method, url, body] of [
        ['GET', '/tenants', undefined],
        ['POST', '/tenants', { id: 'gamma' }],
        ['GET', '/tenants/acme', undefined],
        ['PATCH', '/tenants/acme', { display_name: 'Acme' }],
        ['GET', '/tenants/acme/apis', undefined],
        ['POST', '/tenants/acme/apis', { identifier: 'https://x.example', scopes: [] }],
        ['GET', '/tenants/acme/keys', undefined],
        ['POST', '/tenants/acme/keys/rotate', {}],
      ] as const) {
        const response = await call(method, url, body, token);
        assert.equal(response.statusCode, 403, `${method} ${url}`);
      }
    });

    it('needs the matching scope of the tenant API', async () => {
      const checker = await tenantToken('acme', ['authz:check']);
      assert.equal((await call('POST', '/tenants/acme/authz/check', { resource: 'document:1', permission: 'view', subject: 'user:ann' }, checker)).statusCode, 200);
      assert.equal((await call('PUT', '/tenants/acme/authz/schema', { schema }, checker)).statusCode, 403);
      assert.equal((await call('GET', '/tenants/acme/users', undefined, checker)).statusCode, 403);
      assert.equal((await call('GET', '/tenants/acme/clients', undefined, checker)).statusCode, 403);
      assert.equal((await call('GET', '/tenants/acme/audit', undefined, checker)).statusCode, 403);
      const reader = await tenantToken('acme', ['users:read', 'clients:read']);
      assert.equal((await call('GET', '/tenants/acme/users', undefined, reader)).statusCode, 200);
      assert.equal((await call('POST', '/tenants/acme/users', { email: 'bob@acme.example' }, reader)).statusCode, 403);
      assert.equal((await call('GET', '/tenants/acme/clients', undefined, reader)).statusCode, 200);
      assert.equal((await call('POST', '/tenants/acme/clients', { name: 'x', grant_types: ['client_credentials'] }, reader)).statusCode, 403);
    });

    it('gives no power to an API of that name that is not the built-in one', async () => {
      // Created before the tenant API existed: start-up leaves it alone and the guard ignores it.
      await server.core.repos.tenants.create({ id: 'squat', displayName: 'squat', createdAt: Date.now() });
      await server.core.keys.ensureKey('squat');
      await server.core.catalog.createApi('squat', { identifier: TENANT_API.identifier, scopes: [...TENANT_API.scopes] });
      await server.core.ensureDefaults();
      assert.equal((await server.core.catalog.apiByIdentifier('squat', TENANT_API.identifier))?.builtin, false);
      const token = await tenantToken('squat', ['users:read']);
      assert.equal((await call('GET', '/tenants/squat/users', undefined, token)).statusCode, 403);
    });

    it('keeps the operator\'s default-tenant token on every tenant', async () => {
      for (const url of ['/tenants/acme/users', '/tenants/beta/clients', '/tenants/acme/keys', '/tenants']) {
        assert.equal((await call('GET', url)).statusCode, 200, url);
      }
    });
  });
}
