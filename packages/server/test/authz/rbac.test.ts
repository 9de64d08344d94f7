import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminToken, basic, dialects, startServer, tokenRequest, type TestServer } from '../helpers.js';

// RBAC for applications that never write a schema: roles, their permissions, and
// assignments to users and (nested) groups, answered by the same engine.
describe('RBAC without a schema', () => {
  let server: TestServer;
  let token: string;
  const call = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, body?: unknown) =>
    server.inject({ method, url: `/api/v1/tenants/shop/authz/rbac${url}`, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { payload: body as Record<string, unknown> }) });
  const allowed = async (subject: string, permission: string) =>
    (await call('POST', '/check', { subject, permission, consistency: { mode: 'fully_consistent' } })).json().permissionship;

  before(async () => {
    server = await startServer();
    token = await adminToken(server);
    await server.core.tenants.create('shop');
  });
  after(() => server.close());

  it('answers a check before any RBAC write without writing anything itself', async () => {
    assert.equal(await allowed('user:ann', 'orders.read'), 'denied');
    const schema = await server.inject({ method: 'GET', url: '/api/v1/tenants/shop/authz/schema', headers: { authorization: `Bearer ${token}` } });
    assert.equal(schema.json().schema, '', 'no schema was written');
    const deleted = await call('DELETE', '/roles/editor');
    assert.deepEqual([deleted.statusCode, deleted.json().code], [404, 'AUTHZ_RBAC_ROLE_NOT_FOUND']);
  });

  it('grants a permission through a role assigned to a user, and through a nested group', async () => {
    assert.equal((await call('PUT', '/roles/editor', { permissions: ['orders.read', 'orders.write'] })).statusCode, 200);
    await server.core.audit.flush();
    const schemaWrites = await server.core.repos.audit.query({ tenantId: 'shop', action: 'authz.schema_written', limit: 10 });
    assert.equal(schemaWrites.length, 1, 'the first RBAC write adds the RBAC definitions, audited as a schema write');
    assert.equal((await call('PUT', '/roles/viewer', { permissions: ['orders.read'] })).statusCode, 200);
    assert.equal((await call('POST', '/assignments', { role: 'editor', subject: 'user:ann' })).statusCode, 200);
    await call('POST', '/groups/support/members', { subject: 'user:sam' });
    await call('POST', '/groups/staff/members', { subject: 'gatehouse/group:support#member' });
    await call('POST', '/assignments', { role: 'viewer', subject: 'gatehouse/group:staff#member' });

    assert.equal(await allowed('user:ann', 'orders.write'), 'allowed');
    assert.equal(await allowed('user:sam', 'orders.read'), 'allowed');
    assert.equal(await allowed('user:sam', 'orders.write'), 'denied');
    assert.equal(await allowed('user:zoe', 'orders.read'), 'denied');
    assert.deepEqual((await call('GET', '/roles')).json().roles, [
      { role: 'editor', permissions: ['orders.read', 'orders.write'] },
      { role: 'viewer', permissions: ['orders.read'] },
    ]);
  });

  it('takes permissions away when a role changes, an assignment is removed or a role is deleted', async () => {
    await call('PUT', '/roles/editor', { permissions: ['orders.read'] });
    assert.equal(await allowed('user:ann', 'orders.write'), 'denied');
    await call('POST', '/assignments', { role: 'editor', subject: 'user:ann', remove: true });
    assert.equal(await allowed('user:ann', 'orders.read'), 'denied');
    await call('DELETE', '/roles/viewer');
    assert.equal(await allowed('user:sam', 'orders.read'), 'denied');
  });

  it('lives beside a schema the tenant wrote itself', async () => {
    const schema = await server.inject({ method: 'GET', url: '/api/v1/tenants/shop/authz/schema', headers: { authorization: `Bearer ${token}` } });
    assert.match(schema.json().schema, /definition gatehouse\/role/);
  });

  it('refuses unknown roles, roles without permissions, bad names and subjects, and changes nothing', async () => {
    const before = (await call('GET', '/roles')).json();
    const unknown = await call('POST', '/assignments', { role: 'ghost', subject: 'user:ann' });
    assert.deepEqual([unknown.statusCode, unknown.json().code], [404, 'AUTHZ_RBAC_ROLE_NOT_FOUND']);
    assert.equal((await call('DELETE', '/roles/ghost')).json().code, 'AUTHZ_RBAC_ROLE_NOT_FOUND');
    assert.equal((await call('PUT', '/roles/ghost', { permissions: [] })).json().code, 'AUTHZ_RBAC_ROLE_EMPTY');
    assert.deepEqual((await call('GET', '/roles')).json(), before);
    assert.equal((await call('PUT', '/roles/bad name', { permissions: [] })).json().code, 'AUTHZ_RBAC_NAME_INVALID');
    assert.equal((await call('PUT', '/roles/ok', { permissions: ['orders:read'] })).json().code, 'AUTHZ_RBAC_NAME_INVALID');
    assert.equal((await call('POST', '/assignments', { role: 'ok', subject: 'user:*' })).json().code, 'AUTHZ_RBAC_SUBJECT_INVALID');
    assert.equal((await call('POST', '/assignments', { role: 'ok', subject: 'document:x' })).json().code, 'AUTHZ_RBAC_SUBJECT_INVALID');
  });
});

// Issue 9 part 4: the gatehouse/* types belong to the RBAC endpoints, and only authz:admin
// (role creation) changes the schema; an authz:write token can neither widen a role nor
// install RBAC through any other path.
for (const dialect of dialects) {
  describe(`RBAC through the back door is closed (${dialect})`, () => {
    let server: TestServer;
    let admin: string;
    let writer: string;
    const call = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, body: unknown, bearer: string) =>
      server.inject({ method, url: `/api/v1/tenants/shop/authz${url}`, headers: { authorization: `Bearer ${bearer}` }, ...(body === undefined ? {} : { payload: body as Record<string, unknown> }) });
    const schemaText = async () => (await call('GET', '/schema', undefined, admin)).json().schema as string;
    const allowed = async (subject: string, permission: string) =>
      (await call('POST', '/rbac/check', { subject, permission, consistency: { mode: 'fully_consistent' } }, writer)).json().permissionship;
    const refusedAsReserved = (response: { statusCode: number; json(): { code: string } }) => assert.deepEqual([response.statusCode, response.json().code], [403, 'AUTHZ_RESERVED_TYPE']);

    before(async () => {
      server = await startServer({ dialect });
      admin = await adminToken(server);
      await server.core.tenants.create('shop');
      const { client, clientSecret } = await server.core.catalog.createClient('default', {
        name: 'relationship writer',
        grantTypes: ['client_credentials'],
        apis: { 'urn:gatehouse:admin': ['authz:write'] },
      });
      writer = (await tokenRequest(server, { grant_type: 'client_credentials', resource: 'urn:gatehouse:admin' }, { authorization: basic(client.clientId, clientSecret!) })).json.access_token!;
    });
    after(() => server.close());

    it('refuses group membership under authz:write until a role exists, and writes no schema', async () => {
      const added = await call('POST', '/rbac/groups/staff/members', { subject: 'user:sam' }, writer);
      assert.deepEqual([added.statusCode, added.json().code], [409, 'AUTHZ_RBAC_NOT_INSTALLED']);
      assert.equal(await schemaText(), '', 'no schema was written');
      const removed = await call('POST', '/rbac/groups/staff/members', { subject: 'user:sam', remove: true }, writer);
      assert.equal(removed.json().code, 'AUTHZ_RBAC_NOT_INSTALLED');
      await server.core.audit.flush();
      assert.equal((await server.core.repos.audit.query({ tenantId: 'shop', action: 'authz.schema_written', limit: 10 })).length, 0);
    });

    it('installs RBAC beside a schema whose comments mention its definitions, reading the parsed schema', async () => {
      // Text matching would read the comment as "RBAC and user are defined" and never add them.
      const own = '/*\ndefinition user {}\ndefinition gatehouse/role {}\n*/\n\ndefinition document {}\n';
      assert.equal((await call('PUT', '/schema', { schema: own }, admin)).statusCode, 200);
      const role = await call('PUT', '/rbac/roles/viewer', { permissions: ['orders_read'] }, admin);
      assert.equal(role.statusCode, 200);
      const text = await schemaText();
      assert.equal(text.slice(0, own.length), own, 'the tenant schema is kept as written');
      for (const type of ['user', 'gatehouse/group', 'gatehouse/role', 'gatehouse/capability']) assert.match(text, new RegExp(`\\ndefinition ${type} \\{`));
    });

    it('lets authz:write manage memberships once RBAC is installed, without touching the schema', async () => {
      const schema = await schemaText();
      assert.equal((await call('POST', '/rbac/groups/staff/members', { subject: 'user:sam' }, writer)).statusCode, 200);
      assert.equal((await call('POST', '/rbac/assignments', { role: 'viewer', subject: 'gatehouse/group:staff#member' }, writer)).statusCode, 200);
      assert.equal(await allowed('user:sam', 'orders_read'), 'allowed');
      assert.equal(await schemaText(), schema);
    });

    it('refuses generic writes that would widen a role or create one', async () => {
      refusedAsReserved(await call('POST', '/relationships/write', { updates: [{ operation: 'touch', relationship: 'gatehouse/capability:orders_write#granted@gatehouse/role:viewer#member' }] }, writer));
      refusedAsReserved(await call('POST', '/relationships/write', { updates: [{ operation: 'create', relationship: 'gatehouse/capability:orders_write#granted@gatehouse/role:boss#member' }] }, writer));
      refusedAsReserved(await call('POST', '/relationships/write', { updates: [{ operation: 'touch', relationship: 'gatehouse/role:viewer#member@user:eve' }] }, writer));
      refusedAsReserved(await call('POST', '/relationships/write', { updates: [{ operation: 'touch', relationship: 'gatehouse/group:staff#member@user:eve' }] }, writer));
      // Even an admin goes through the RBAC endpoints, whose invariants hold these types together.
      refusedAsReserved(await call('POST', '/relationships/write', { updates: [{ operation: 'touch', relationship: 'gatehouse/role:viewer#member@user:eve' }] }, admin));
      assert.equal(await allowed('user:sam', 'orders_write'), 'denied');
      assert.equal(await allowed('user:eve', 'orders_read'), 'denied');
      assert.deepEqual((await call('GET', '/rbac/roles', undefined, writer)).json().roles, [{ role: 'viewer', permissions: ['orders_read'] }]);
    });

    it('refuses a reserved type as the subject of a generic write', async () => {
      assert.equal((await call('PUT', '/schema', { schema: `${await schemaText()}\ndefinition folder {\n  relation viewer: user | gatehouse/group#member\n}\n` }, admin)).statusCode, 200);
      refusedAsReserved(await call('POST', '/relationships/write', { updates: [{ operation: 'touch', relationship: 'folder:x#viewer@gatehouse/group:staff#member' }] }, writer));
      assert.equal((await call('POST', '/relationships/write', { updates: [{ operation: 'touch', relationship: 'folder:x#viewer@user:sam' }] }, writer)).statusCode, 200);
    });

    it('refuses generic deletes of the reserved types', async () => {
      refusedAsReserved(await call('POST', '/relationships/delete', { filter: { resource_type: 'gatehouse/role', resource_id: 'viewer' } }, writer));
      refusedAsReserved(await call('POST', '/relationships/delete', { filter: { resource_type: 'folder', subject_type: 'gatehouse/group' } }, writer));
      refusedAsReserved(await call('POST', '/relationships/write', { updates: [{ operation: 'delete', relationship: 'gatehouse/group:staff#member@user:sam' }] }, writer));
      assert.equal(await allowed('user:sam', 'orders_read'), 'allowed', 'the membership and the assignment are still there');
    });

    it('refuses an import holding a reserved type, writing none of it', async () => {
      const lines = ['folder:imported#viewer@user:ann', 'gatehouse/capability:orders_write#granted@gatehouse/role:viewer#member'];
      refusedAsReserved(await call('POST', '/relationships/import', { relationships: lines.join('\n') }, writer));
      assert.deepEqual((await call('POST', '/relationships/read', { filter: { resource_type: 'folder', resource_id: 'imported' } }, writer)).json().relationships, []);
      assert.equal(await allowed('user:sam', 'orders_write'), 'denied');
    });
  });
}
