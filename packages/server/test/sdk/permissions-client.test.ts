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
      () => checker.importRelationships('document:x#owner@user:mallory'),
      () => checker.writePolicies(''),
      () => checker.setRole({ role: 'owner', permissions: ['everything'] }),
      () => checker.deleteRole('owner'),
      () => checker.assignRole({ role: 'owner', subject: 'user:mallory' }),
      () => checker.addGroupMember({ group: 'staff', subject: 'user:mallory' }),
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

  it('imports relationships from text or a list, refusing the whole import when one line is wrong', async () => {
    await assert.rejects(admin.importRelationships('document:imp3#viewer@user:ann\ndocument:imp4#viewer@@user:x\n'), (error: unknown) => {
      assert.ok(error instanceof GatehousePermissionsError);
      assert.equal(error.code, 'AUTHZ_RELATIONSHIP_SYNTAX');
      assert.equal(error.status, 400);
      assert.equal(error.details.line, 2);
      return true;
    });
    await assert.rejects(admin.importRelationships(['document:imp3#viewer@user:ann', 'document:imp5#view@user:ann']), {
      name: 'GatehousePermissionsError',
      code: 'AUTHZ_RELATIONSHIP_INVALID',
      status: 400,
    });
    assert.deepEqual((await admin.readRelationships({ filter: { resourceType: 'document', resourceId: 'imp3' } })).relationships, []);

    const previous = admin.lastWriteToken;
    const { imported, token } = await admin.importRelationships('// imported from the old system\ndocument:imp1#viewer@user:ann\n\ndocument:imp2#viewer@group:eng#member\n');
    assert.equal(imported, 2);
    assert.notEqual(token, previous);
    assert.equal(admin.lastWriteToken, token);
    const listed = await admin.importRelationships([{ resource: { type: 'document', id: 'imp3' }, relation: 'owner', subject: 'user:zed' }, 'document:imp1#viewer@user:ann']);
    assert.equal(listed.imported, 2, 'touching what exists already counts too');
    const found = await checker.lookupResources({ resourceType: 'document', permission: 'view', subject: 'user:ann', consistency: { mode: 'at_least_as_fresh', token: listed.token } });
    assert.deepEqual([...found.allowed].sort(), ['imp1', 'imp2', 'memo', 'plan']);
  });

  it('writes and reads Cedar policies: a forbid takes away what the graph allows, and bad text is refused', async () => {
    const policies = '@id("no-mfa") forbid(principal, action == Action::"view", resource) when { context has mfa && context.mfa == false };\n';
    const { token } = await admin.writePolicies(policies);
    assert.equal(admin.lastWriteToken, token);
    assert.equal(await checker.readPolicies(), policies, 'authz:check may read the policies');
    const consistency = { mode: 'at_least_as_fresh', token } as const;
    const withMfa = await checker.check({ resource: 'document:plan', permission: 'view', subject: 'user:ann', context: { mfa: true }, consistency });
    assert.equal(withMfa.allowed, true);
    const withoutMfa = await checker.check({ resource: 'document:plan', permission: 'view', subject: 'user:ann', context: { mfa: false }, consistency });
    assert.deepEqual([withoutMfa.permissionship, withoutMfa.allowed], ['denied', false]);
    assert.match(withoutMfa.policy ?? '', /no-mfa/);

    await assert.rejects(admin.writePolicies('permit(principal, action, resource'), (error: unknown) => {
      assert.ok(error instanceof GatehousePermissionsError);
      assert.equal(error.code, 'AUTHZ_POLICY_INVALID');
      assert.equal(error.status, 400);
      return true;
    });
    assert.equal(admin.lastWriteToken, token);
    assert.equal(await admin.readPolicies(), policies, 'a refused write changes nothing');

    await admin.writePolicies('');
    assert.equal(await admin.readPolicies(), '');
    const cleared = await admin.check({ resource: 'document:plan', permission: 'view', subject: 'user:ann', context: { mfa: false }, consistency: 'after-my-writes' });
    assert.equal(cleared.allowed, true);
  });

  it('grants through RBAC roles assigned to users and nested groups, and takes them away again', async () => {
    // Role names may hold `/` and `+`: they travel as one encoded path segment.
    await admin.setRole({ role: 'orders/editor+', permissions: ['orders.read', 'orders.write'] });
    await admin.setRole({ role: 'viewer', permissions: ['orders.read'] });
    await admin.assignRole({ role: 'orders/editor+', subject: 'user:ann' });
    await admin.addGroupMember({ group: 'support', subject: 'user:sam' });
    await admin.addGroupMember({ group: 'staff', subject: 'gatehouse/group:support#member' });
    await admin.assignRole({ role: 'viewer', subject: { type: 'gatehouse/group', id: 'staff', relation: 'member' } });
    assert.deepEqual(await checker.listRoles(), [
      { role: 'orders/editor+', permissions: ['orders.read', 'orders.write'] },
      { role: 'viewer', permissions: ['orders.read'] },
    ]);

    const ask = async (subject: string, permission: string) => (await admin.checkRbac({ subject, permission, consistency: 'after-my-writes' })).permissionship;
    const table: [string, string, string][] = [
      ['user:ann', 'orders.write', 'allowed'],
      ['user:ann', 'orders.read', 'allowed'],
      ['user:sam', 'orders.read', 'allowed'],
      ['user:sam', 'orders.write', 'denied'],
      ['user:zoe', 'orders.read', 'denied'],
      ['user:ann', 'orders.delete', 'denied'],
    ];
    for (const [subject, permission, expected] of table) assert.equal(await ask(subject, permission), expected, `${subject} ${permission}`);
    const fromChecker = await checker.checkRbac({ subject: 'user:sam', permission: 'orders.read', consistency: { mode: 'at_least_as_fresh', token: admin.lastWriteToken! } });
    assert.deepEqual([fromChecker.allowed, typeof fromChecker.token], [true, 'string']);

    await admin.unassignRole({ role: 'orders/editor+', subject: 'user:ann' });
    assert.equal(await ask('user:ann', 'orders.write'), 'denied');
    await admin.removeGroupMember({ group: 'staff', subject: 'gatehouse/group:support#member' });
    assert.equal(await ask('user:sam', 'orders.read'), 'denied');
    await admin.deleteRole('orders/editor+');
    assert.deepEqual(await admin.listRoles(), [{ role: 'viewer', permissions: ['orders.read'] }]);
    // The RBAC definitions now live beside the tenant's own schema.
    assert.match(await admin.readSchema(), /definition document \{[\s\S]*definition gatehouse\/role \{/);
  });

  it('refuses bad RBAC names and subjects with typed errors and changes nothing', async () => {
    const before = admin.lastWriteToken;
    const refusals: [() => Promise<unknown>, string][] = [
      [() => admin.setRole({ role: 'bad name', permissions: ['orders.read'] }), 'AUTHZ_RBAC_NAME_INVALID'],
      [() => admin.setRole({ role: 'viewer', permissions: ['orders:read'] }), 'AUTHZ_RBAC_NAME_INVALID'],
      [() => admin.deleteRole('no spaces'), 'AUTHZ_RBAC_NAME_INVALID'],
      [() => admin.assignRole({ role: 'viewer', subject: 'document:plan' }), 'AUTHZ_RBAC_SUBJECT_INVALID'],
      [() => admin.assignRole({ role: 'viewer', subject: 'user:*' }), 'AUTHZ_RBAC_SUBJECT_INVALID'],
      [() => admin.addGroupMember({ group: 'staff', subject: 'group:eng#member' }), 'AUTHZ_RBAC_SUBJECT_INVALID'],
      [() => admin.checkRbac({ subject: 'user:ann', permission: 'orders read' }), 'AUTHZ_RBAC_NAME_INVALID'],
    ];
    for (const [attempt, code] of refusals) {
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof GatehousePermissionsError);
        assert.equal(error.code, code);
        assert.equal(error.status, 400);
        return true;
      });
    }
    assert.equal(admin.lastWriteToken, before);
    assert.deepEqual(await admin.listRoles(), [{ role: 'viewer', permissions: ['orders.read'] }]);
  });

  it('asked the token function once per request', () => {
    // Schema, relationships, lookups: writeSchema ×2, readSchema, write, check, readRelationships ×2, delete, check, write, read (11).
    // Import: import ×2, read, import ×2 (5). Policies: write ×2, read, write, read, check (6).
    // RBAC: setRole ×2, assign, add ×2, assign, checkRbac ×6, unassign, checkRbac, remove, checkRbac, deleteRole, listRoles, readSchema (19).
    // Refusals: 7 attempts, listRoles (8).
    assert.equal(adminCalls, 11 + 5 + 6 + 19 + 8);
  });
});
