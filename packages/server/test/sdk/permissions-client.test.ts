import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPermissionsClient, GatehousePermissionsError, type PermissionsClient } from '@gatehouse/sdk';
import { adminToken, basic, startServer, tokenRequest, type TestServer } from '../helpers.js';

const schema = `definition user {}

definition group {
  relation member: user | group#member
}

definition document {
  relation owner: user
  relation viewer: user | group#member
  relation banned: user
  permission view = (viewer + owner) - banned
}
`;

// The SDK's permissions client against a real, listening Gatehouse.
describe('SDK permissions client against Gatehouse', () => {
  let server: TestServer;
  let admin: PermissionsClient;
  let checker: PermissionsClient;
  let adminCalls = 0;

  before(async () => {
    server = await startServer({ listen: true });
    await server.core.tenants.create('acme');
    const token = await adminToken(server);
    // A function-valued token, as a client-credentials cache would be.
    admin = createPermissionsClient({ baseUrl: server.url, tenant: 'acme', token: async () => (adminCalls++, token) });
    const { client, clientSecret } = await server.core.catalog.createClient('default', {
      name: 'orders service',
      grantTypes: ['client_credentials'],
      apis: { 'urn:gatehouse:admin': ['authz:check'] },
    });
    const checkToken = (await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, clientSecret!) })).json.access_token!;
    checker = createPermissionsClient({ baseUrl: server.url, tenant: 'acme', token: checkToken });
  });
  after(() => server.close());

  it('writes a schema, refusing an invalid one with a typed error', async () => {
    await assert.rejects(admin.writeSchema('definition document {\n  relation owner: nobody\n}\n'), (error: unknown) => {
      assert.ok(error instanceof GatehousePermissionsError);
      assert.equal(error.code, 'AUTHZ_SCHEMA_UNKNOWN_TYPE');
      assert.equal(error.status, 400);
      assert.equal(error.details.line, 2);
      return true;
    });
    const { token } = await admin.writeSchema(schema);
    assert.match(token, /^gh1_/);
    assert.equal(admin.lastWriteToken, token);
    assert.equal(await admin.readSchema(), schema);
  });

  it('writes relationships and checks them after its own writes, with string and object refs', async () => {
    const before = admin.lastWriteToken;
    const { token } = await admin.writeRelationships({
      updates: [
        { operation: 'touch', relationship: 'group:eng#member@user:ann' },
        { operation: 'touch', relationship: { resource: { type: 'document', id: 'plan' }, relation: 'viewer', subject: { type: 'group', id: 'eng', relation: 'member' } } },
        { operation: 'touch', relationship: 'document:plan#banned@user:bob' },
        { operation: 'touch', relationship: { resource: 'document:plan', relation: 'owner', subject: 'user:bob' } },
        { operation: 'touch', relationship: 'document:memo#owner@user:ann' },
      ],
    });
    assert.equal(admin.lastWriteToken, token);
    assert.notEqual(token, before);

    const ann = await admin.check({ resource: 'document:plan', permission: 'view', subject: { type: 'user', id: 'ann' }, consistency: 'after-my-writes', explain: true });
    assert.equal(ann.permissionship, 'allowed');
    assert.equal(ann.allowed, true);
    assert.match(JSON.stringify(ann.explanation), /group:eng#member@user:ann/);
    // The checker did not write; it asks at the admin's token explicitly.
    const consistency = { mode: 'at_least_as_fresh', token } as const;
    const bob = await checker.check({ resource: { type: 'document', id: 'plan' }, permission: 'view', subject: 'user:bob', consistency });
    assert.deepEqual([bob.permissionship, bob.allowed], ['denied', false]);
    assert.match(bob.token, /^gh1_/);
    const group = await checker.check({ resource: 'document:plan', permission: 'viewer', subject: 'group:eng#member', consistency });
    assert.equal(group.allowed, true);

    const bulk = await checker.checkBulk({
      items: [
        { resource: 'document:plan', permission: 'view', subject: 'user:ann' },
        { resource: 'document:plan', permission: 'view', subject: 'user:zed' },
        { resource: 'document:memo', permission: 'view', subject: { type: 'user', id: 'ann' } },
      ],
      consistency,
    });
    assert.deepEqual(bulk.results.map((r) => r.allowed), [true, false, true]);
  });

  it('looks up resources and subjects, and expands', async () => {
    const resources = await checker.lookupResources({ resourceType: 'document', permission: 'view', subject: 'user:ann', consistency: 'fully_consistent' });
    assert.deepEqual([...resources.allowed].sort(), ['memo', 'plan']);
    assert.deepEqual(resources.conditional, []);
    const subjects = await checker.lookupSubjects({ resource: { type: 'document', id: 'plan' }, permission: 'view', subjectType: 'user', consistency: 'fully_consistent' });
    assert.deepEqual(subjects.allowed, ['ann']);
    const { tree } = await checker.expand({ resource: 'document:plan', permission: 'viewer', consistency: 'fully_consistent' });
    assert.equal(tree.kind, 'leaf');
    assert.equal(tree.expanded.relation, 'viewer');
    assert.match(JSON.stringify(tree), /"eng"/);
  });

  it('reads pages of relationships and deletes them, moving lastWriteToken', async () => {
    const first = await admin.readRelationships({ filter: { resourceType: 'document', resourceId: 'plan' }, limit: 2 });
    assert.equal(first.relationships.length, 2);
    assert.ok(first.next);
    const second = await admin.readRelationships({ filter: { resourceType: 'document', resourceId: 'plan' }, limit: 2, after: first.next });
    assert.equal(second.relationships.length, 1);
    const previous = admin.lastWriteToken;
    const { deleted, token } = await admin.deleteRelationships({ filter: { resourceType: 'document', resourceId: 'plan', relation: 'banned' } });
    assert.equal(deleted, 1);
    assert.notEqual(token, previous);
    assert.equal(admin.lastWriteToken, token);
    const bob = await admin.check({ resource: 'document:plan', permission: 'view', subject: 'user:bob', consistency: 'after-my-writes' });
    assert.equal(bob.allowed, true);
  });

  it('fails a precondition with a typed 409-class error and writes nothing', async () => {
    const before = admin.lastWriteToken;
    await assert.rejects(
      admin.writeRelationships({
        updates: [{ operation: 'touch', relationship: 'document:y#owner@user:ann' }],
        preconditions: [{ operation: 'must_match', filter: { resourceType: 'document', resourceId: 'nope' } }],
      }),
      (error: unknown) => error instanceof GatehousePermissionsError && error.code === 'AUTHZ_PRECONDITION_FAILED' && error.status >= 400 && error.status < 500,
    );
    assert.equal(admin.lastWriteToken, before);
    assert.deepEqual((await admin.readRelationships({ filter: { resourceType: 'document', resourceId: 'y' } })).relationships, []);
  });

  it('gives an authz:check-only client a typed 403 on writes', async () => {
    for (const attempt of [
      () => checker.writeRelationships({ updates: [{ operation: 'touch', relationship: 'document:x#owner@user:mallory' }] }),
      () => checker.deleteRelationships({ filter: { resourceType: 'document' } }),
      () => checker.readRelationships({ filter: { resourceType: 'document' } }),
      () => checker.writeSchema(schema),
    ]) {
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof GatehousePermissionsError);
        assert.equal(error.status, 403);
        assert.equal(error.code, 'ADMIN_FORBIDDEN');
        assert.match(error.message, /authz:/);
        return true;
      });
    }
    assert.equal(checker.lastWriteToken, undefined);
  });

  it('maps a missing token, an unknown tenant and unknown types to typed errors', async () => {
    const anonymous = createPermissionsClient({ baseUrl: server.url, tenant: 'acme', token: 'not-a-jwt' });
    await assert.rejects(anonymous.check({ resource: 'document:plan', permission: 'view', subject: 'user:ann' }), { name: 'GatehousePermissionsError', code: 'ADMIN_UNAUTHENTICATED', status: 401 });
    const token = await adminToken(server);
    const nowhere = createPermissionsClient({ baseUrl: server.url, tenant: 'nowhere', token });
    await assert.rejects(nowhere.readSchema(), (error: unknown) => error instanceof GatehousePermissionsError && error.status === 404);
    await assert.rejects(checker.check({ resource: 'folder:x', permission: 'view', subject: 'user:a' }), { code: 'AUTHZ_UNKNOWN_TYPE' });
  });

  it('asked the token function once per request', () => {
    // writeSchema ×2, readSchema, write, check, readRelationships ×2, delete, check, write, read.
    assert.equal(adminCalls, 11);
  });
});
