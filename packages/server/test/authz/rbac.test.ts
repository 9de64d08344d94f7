import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminToken, startServer, type TestServer } from '../helpers.js';

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
