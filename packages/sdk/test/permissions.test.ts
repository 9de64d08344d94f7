/**
 * The permissions client's wire format, against a tiny local HTTP server that records requests
 * and answers canned JSON (the real server is exercised in packages/server/test/sdk).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createPermissionsClient, GatehousePermissionsError, type PermissionsClientOptions } from '../src/index.js';

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

interface Canned {
  status: number;
  body: unknown;
  raw?: string;
}

describe('permissions client (wire format)', () => {
  let server: Server;
  let baseUrl: string;
  let requests: Recorded[] = [];
  let answers: Canned[] = [];
  const answer = (body: unknown, status = 200) => answers.push({ status, body });

  before(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        requests.push({ method: request.method!, path: request.url!, headers: request.headers, body: text === '' ? undefined : JSON.parse(text) });
        const canned = answers.shift() ?? { status: 500, body: { code: 'NO_CANNED_ANSWER', message: 'test has no answer queued', details: {} } };
        response.statusCode = canned.status;
        response.setHeader('content-type', canned.raw === undefined ? 'application/json' : 'text/html');
        response.end(canned.raw ?? JSON.stringify(canned.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    requests = [];
    answers = [];
  });

  const client = (options: Partial<PermissionsClientOptions> = {}) => createPermissionsClient({ baseUrl, tenant: 'acme', token: 'tok-1', ...options });
  const prefix = '/api/v1/tenants/acme/authz';

  it('checks with string refs: path, method, bearer, JSON body and typed result', async () => {
    answer({ permissionship: 'allowed', token: 'gh1_a', explanation: { summary: 'viewer' } });
    const result = await client().check({ resource: 'document:plan', permission: 'view', subject: 'group:eng#member', explain: true, context: { ip: '10.0.0.1' } });
    assert.deepEqual(result, { permissionship: 'allowed', allowed: true, token: 'gh1_a', explanation: { summary: 'viewer' } });
    const [sent] = requests;
    assert.equal(sent?.method, 'POST');
    assert.equal(sent?.path, `${prefix}/check`);
    assert.equal(sent?.headers.authorization, 'Bearer tok-1');
    assert.match(String(sent?.headers['content-type']), /^application\/json/);
    assert.equal(sent?.headers.accept, 'application/json');
    assert.deepEqual(sent?.body, { resource: 'document:plan', permission: 'view', subject: 'group:eng#member', context: { ip: '10.0.0.1' }, explain: true });
  });

  it('turns object refs into type:id[#relation] and maps conditional answers', async () => {
    answer({ permissionship: 'conditional', missing: ['ip'], token: 'gh1_b' });
    const result = await client().check({ resource: { type: 'document', id: 'plan' }, permission: 'view', subject: { type: 'group', id: 'eng', relation: 'member' } });
    assert.equal(result.allowed, false);
    assert.equal(result.permissionship, 'conditional');
    assert.deepEqual(result.missing, ['ip']);
    assert.deepEqual(requests[0]?.body, { resource: 'document:plan', permission: 'view', subject: 'group:eng#member' });
  });

  it('sends check/bulk, lookups and expand with the documented snake_case bodies', async () => {
    const c = client();
    answer({ results: [{ permissionship: 'allowed' }, { permissionship: 'denied' }], token: 'gh1_1' });
    const bulk = await c.checkBulk({
      items: [
        { resource: 'document:a', permission: 'view', subject: 'user:ann' },
        { resource: { type: 'document', id: 'b' }, permission: 'view', subject: { type: 'user', id: 'ann' } },
      ],
      consistency: 'fully_consistent',
    });
    assert.deepEqual(bulk.results.map((r) => r.allowed), [true, false]);
    answer({ allowed: ['a'], conditional: ['c'], token: 'gh1_2' });
    assert.deepEqual(await c.lookupResources({ resourceType: 'document', permission: 'view', subject: { type: 'user', id: 'ann' } }), { allowed: ['a'], conditional: ['c'], token: 'gh1_2' });
    answer({ allowed: ['ann'], conditional: [], token: 'gh1_3' });
    await c.lookupSubjects({ resource: { type: 'document', id: 'a' }, permission: 'view', subjectType: 'group', subjectRelation: 'member', consistency: { mode: 'minimize_latency' } });
    const tree = { kind: 'leaf', expanded: { type: 'document', id: 'a', relation: 'viewer' }, subjects: [{ type: 'user', id: 'ann' }] };
    answer({ tree, token: 'gh1_4' });
    assert.deepEqual(await c.expand({ resource: 'document:a', permission: 'viewer', depth: 2 }), { tree, token: 'gh1_4' });

    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.path}`),
      ['POST /check/bulk', 'POST /lookup-resources', 'POST /lookup-subjects', 'POST /expand'].map((s) => s.replace(' /', ` ${prefix}/`)),
    );
    assert.deepEqual(requests[0]?.body, {
      items: [
        { resource: 'document:a', permission: 'view', subject: 'user:ann' },
        { resource: 'document:b', permission: 'view', subject: 'user:ann' },
      ],
      consistency: { mode: 'fully_consistent' },
    });
    assert.deepEqual(requests[1]?.body, { resource_type: 'document', permission: 'view', subject: 'user:ann' });
    assert.deepEqual(requests[2]?.body, { resource: 'document:a', permission: 'view', subject_type: 'group', subject_relation: 'member', consistency: { mode: 'minimize_latency' } });
    assert.deepEqual(requests[3]?.body, { resource: 'document:a', permission: 'viewer', depth: 2 });
  });

  it('writes and reads the schema and relationships with the documented bodies', async () => {
    const c = client();
    answer({ token: 'gh1_1' });
    assert.deepEqual(await c.writeSchema('definition user {}'), { token: 'gh1_1' });
    answer({ schema: 'definition user {}' });
    assert.equal(await c.readSchema(), 'definition user {}');
    answer({ token: 'gh1_2' });
    await c.writeRelationships({
      updates: [
        { operation: 'touch', relationship: 'group:eng#member@user:ann' },
        { operation: 'create', relationship: { resource: { type: 'document', id: 'plan' }, relation: 'viewer', subject: { type: 'group', id: 'eng', relation: 'member' } } },
        {
          operation: 'touch',
          relationship: { resource: 'document:plan', relation: 'viewer', subject: 'user:bob', caveat: { name: 'on_network', context: { cidr: '10.0.0.0/8' } }, expiresAt: new Date('2300-01-01T00:00:00Z') },
        },
        { operation: 'delete', relationship: 'document:plan#banned@user:bob' },
      ],
      preconditions: [{ operation: 'must_not_match', filter: { resourceType: 'document', resourceId: 'plan', relation: 'owner' } }],
    });
    answer({ relationships: ['document:plan#viewer@user:bob'], next: '["plan"]' });
    assert.deepEqual(await c.readRelationships({ filter: { resourceType: 'document', subjectType: 'user', subjectId: 'bob' }, limit: 1 }), {
      relationships: ['document:plan#viewer@user:bob'],
      next: '["plan"]',
    });
    answer({ token: 'gh1_3', deleted: 2 });
    assert.deepEqual(await c.deleteRelationships({ filter: { resourceType: 'document', resourceId: 'plan', subjectRelation: 'member' } }), { token: 'gh1_3', deleted: 2 });

    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.path.slice(prefix.length)}`),
      ['PUT /schema', 'GET /schema', 'POST /relationships/write', 'POST /relationships/read', 'POST /relationships/delete'],
    );
    assert.deepEqual(requests[0]?.body, { schema: 'definition user {}' });
    assert.equal(requests[1]?.body, undefined);
    assert.equal(requests[1]?.headers['content-type'], undefined);
    assert.deepEqual(requests[2]?.body, {
      updates: [
        { operation: 'touch', relationship: 'group:eng#member@user:ann' },
        { operation: 'create', relationship: 'document:plan#viewer@group:eng#member' },
        { operation: 'touch', relationship: 'document:plan#viewer@user:bob[on_network:{"cidr":"10.0.0.0/8"}][expiration:2300-01-01T00:00:00.000Z]' },
        { operation: 'delete', relationship: 'document:plan#banned@user:bob' },
      ],
      preconditions: [{ operation: 'must_not_match', filter: { resource_type: 'document', resource_id: 'plan', relation: 'owner' } }],
    });
    assert.deepEqual(requests[3]?.body, { filter: { resource_type: 'document', subject_type: 'user', subject_id: 'bob' }, limit: 1 });
    assert.deepEqual(requests[4]?.body, { filter: { resource_type: 'document', resource_id: 'plan', subject_relation: 'member' } });
  });

  it('imports relationships as text or as a list, and writes and reads Cedar policies', async () => {
    const c = client();
    answer({ imported: 2, token: 'gh1_5' });
    const text = '// the team\ngroup:eng#member@user:ann\n\ndocument:plan#viewer@group:eng#member\n';
    assert.deepEqual(await c.importRelationships(text), { imported: 2, token: 'gh1_5' });
    assert.equal(c.lastWriteToken, 'gh1_5');
    answer({ imported: 2, token: 'gh1_6' });
    await c.importRelationships(['group:eng#member@user:bob', { resource: { type: 'document', id: 'memo' }, relation: 'owner', subject: 'user:bob', expiresAt: new Date('2300-01-01T00:00:00Z') }]);
    answer({ token: 'gh1_7' });
    const policies = '@id("mfa") forbid(principal, action, resource) when { context.mfa == false };';
    assert.deepEqual(await c.writePolicies(policies), { token: 'gh1_7' });
    assert.equal(c.lastWriteToken, 'gh1_7');
    answer({ policies });
    assert.equal(await c.readPolicies(), policies);
    answer({ token: 'gh1_8' });
    await c.writePolicies('');

    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.path.slice(prefix.length)}`),
      ['POST /relationships/import', 'POST /relationships/import', 'PUT /policies', 'GET /policies', 'PUT /policies'],
    );
    assert.deepEqual(requests[0]?.body, { relationships: text });
    assert.deepEqual(requests[1]?.body, { relationships: 'group:eng#member@user:bob\ndocument:memo#owner@user:bob[expiration:2300-01-01T00:00:00.000Z]' });
    assert.deepEqual(requests[2]?.body, { policies });
    assert.equal(requests[3]?.body, undefined);
    assert.deepEqual(requests[4]?.body, { policies: '' }, 'empty text removes every policy');
  });

  it('sends the RBAC calls to their paths, with role and group names encoded as one segment', async () => {
    const c = client();
    answer({ token: 'gh1_a' });
    assert.deepEqual(await c.setRole({ role: 'orders/admin+', permissions: ['orders.read', 'orders.write'] }), { token: 'gh1_a' });
    answer({ roles: [{ role: 'orders/admin+', permissions: ['orders.read', 'orders.write'] }] });
    assert.deepEqual(await c.listRoles(), [{ role: 'orders/admin+', permissions: ['orders.read', 'orders.write'] }]);
    answer({ token: 'gh1_b' });
    await c.assignRole({ role: 'orders/admin+', subject: 'user:ann' });
    answer({ token: 'gh1_c' });
    await c.unassignRole({ role: 'orders/admin+', subject: { type: 'gatehouse/group', id: 'staff', relation: 'member' } });
    answer({ token: 'gh1_d' });
    await c.addGroupMember({ group: 'staff', subject: 'gatehouse/group:support#member' });
    answer({ token: 'gh1_e' });
    await c.removeGroupMember({ group: 'support', subject: { type: 'user', id: 'sam' } });
    answer({ token: 'gh1_f' });
    await c.deleteRole('orders/admin+');
    assert.equal(c.lastWriteToken, 'gh1_f');
    answer({ permissionship: 'denied', token: 'gh1_f' });
    assert.deepEqual(await c.checkRbac({ subject: 'user:ann', permission: 'orders.read', consistency: 'after-my-writes' }), { permissionship: 'denied', allowed: false, token: 'gh1_f' });

    const role = 'orders%2Fadmin%2B';
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.path.slice(prefix.length)}`),
      [
        `PUT /rbac/roles/${role}`,
        'GET /rbac/roles',
        'POST /rbac/assignments',
        'POST /rbac/assignments',
        'POST /rbac/groups/staff/members',
        'POST /rbac/groups/support/members',
        `DELETE /rbac/roles/${role}`,
        'POST /rbac/check',
      ],
    );
    assert.deepEqual(
      requests.map((r) => r.body),
      [
        { permissions: ['orders.read', 'orders.write'] },
        undefined,
        { role: 'orders/admin+', subject: 'user:ann' },
        { role: 'orders/admin+', subject: 'gatehouse/group:staff#member', remove: true },
        { subject: 'gatehouse/group:support#member' },
        { subject: 'user:sam', remove: true },
        undefined,
        { subject: 'user:ann', permission: 'orders.read', consistency: { mode: 'at_least_as_fresh', token: 'gh1_f' } },
      ],
    );
    assert.equal(requests[6]?.headers['content-type'], undefined, 'DELETE has no body');
  });

  it('refuses unusable answers of the new calls with PERMISSIONS_RESPONSE_INVALID', async () => {
    const c = client();
    answer({ token: 'gh1_1' }); // no `imported`
    await assert.rejects(c.importRelationships('group:eng#member@user:ann'), { code: 'PERMISSIONS_RESPONSE_INVALID' });
    answer({ roles: [{ role: 'editor', permissions: 'orders.read' }] });
    await assert.rejects(c.listRoles(), { code: 'PERMISSIONS_RESPONSE_INVALID' });
    answer({ permissionship: 'allowed' }); // no token
    await assert.rejects(c.checkRbac({ subject: 'user:ann', permission: 'orders.read' }), { code: 'PERMISSIONS_RESPONSE_INVALID' });
    answer({ schema: 'x' });
    await assert.rejects(c.readPolicies(), { code: 'PERMISSIONS_RESPONSE_INVALID' });
    assert.equal(c.lastWriteToken, undefined);
  });

  it("tracks the newest write token and sends it for 'after-my-writes'", async () => {
    const c = client();
    assert.equal(c.lastWriteToken, undefined);
    // Before any write, after-my-writes constrains nothing: no consistency is sent.
    answer({ permissionship: 'denied', token: 'gh1_0' });
    await c.check({ resource: 'document:a', permission: 'view', subject: 'user:ann', consistency: 'after-my-writes' });
    assert.equal((requests[0]?.body as Record<string, unknown>).consistency, undefined);

    answer({ token: 'gh1_z' }); // revision 35
    await c.writeRelationships({ updates: [{ operation: 'touch', relationship: 'document:a#viewer@user:ann' }] });
    assert.equal(c.lastWriteToken, 'gh1_z');
    // A slower, older write answering later does not move the token back.
    answer({ token: 'gh1_9', deleted: 0 });
    await c.deleteRelationships({ filter: { resourceType: 'document', resourceId: 'gone' } });
    assert.equal(c.lastWriteToken, 'gh1_z');
    answer({ token: 'gh1_10' }); // revision 36
    await c.writeSchema('definition user {}');
    assert.equal(c.lastWriteToken, 'gh1_10');

    answer({ permissionship: 'allowed', token: 'gh1_10' });
    await c.check({ resource: 'document:a', permission: 'view', subject: 'user:ann', consistency: 'after-my-writes' });
    answer({ results: [{ permissionship: 'allowed' }], token: 'gh1_10' });
    await c.checkBulk({ items: [{ resource: 'document:a', permission: 'view', subject: 'user:ann' }], consistency: 'after-my-writes' });
    answer({ allowed: [], conditional: [], token: 'gh1_10' });
    await c.lookupResources({ resourceType: 'document', permission: 'view', subject: 'user:ann', consistency: 'after-my-writes' });
    const fresh = { mode: 'at_least_as_fresh', token: 'gh1_10' };
    assert.deepEqual((requests[4]?.body as Record<string, unknown>).consistency, fresh);
    assert.deepEqual((requests[5]?.body as Record<string, unknown>).consistency, fresh);
    assert.deepEqual((requests[6]?.body as Record<string, unknown>).consistency, fresh);
    // Reads never change the write token, and a failed write does not either.
    answer({ code: 'AUTHZ_RELATIONSHIP_EXISTS', message: 'exists', details: {} }, 409);
    await assert.rejects(c.writeRelationships({ updates: [{ operation: 'create', relationship: 'document:a#viewer@user:ann' }] }));
    assert.equal(c.lastWriteToken, 'gh1_10');
    // Each client tracks its own writes.
    assert.equal(client().lastWriteToken, undefined);
  });

  it('maps server errors to GatehousePermissionsError with code, status, message and details', async () => {
    answer({ code: 'AUTHZ_SCHEMA_UNKNOWN_TYPE', message: 'Unknown type nobody', details: { line: 2, column: 19 } }, 400);
    await assert.rejects(client().writeSchema('definition document {\n  relation owner: nobody\n}'), (error: unknown) => {
      assert.ok(error instanceof GatehousePermissionsError);
      assert.equal(error.name, 'GatehousePermissionsError');
      assert.equal(error.code, 'AUTHZ_SCHEMA_UNKNOWN_TYPE');
      assert.equal(error.status, 400);
      assert.equal(error.message, 'Unknown type nobody');
      assert.deepEqual(error.details, { line: 2, column: 19 });
      return true;
    });
    answer({ code: 'ADMIN_FORBIDDEN', message: 'This call needs the authz:write or authz:admin scope', details: {} }, 403);
    await assert.rejects(client().writeRelationships({ updates: [{ operation: 'touch', relationship: 'document:a#viewer@user:ann' }] }), {
      name: 'GatehousePermissionsError',
      code: 'ADMIN_FORBIDDEN',
      status: 403,
    });
  });

  it('reports non-Gatehouse error bodies, unusable success bodies and network failures with client codes', async () => {
    answers.push({ status: 502, body: undefined, raw: '<html>Bad gateway</html>' });
    await assert.rejects(client().readSchema(), (error: unknown) => {
      assert.ok(error instanceof GatehousePermissionsError);
      assert.equal(error.code, 'PERMISSIONS_HTTP_ERROR');
      assert.equal(error.status, 502);
      assert.match(String(error.details.body), /Bad gateway/);
      return true;
    });
    answer({ permissionship: 'maybe', token: 'gh1_1' });
    await assert.rejects(client().check({ resource: 'document:a', permission: 'view', subject: 'user:ann' }), { code: 'PERMISSIONS_RESPONSE_INVALID', status: 200 });
    answer({ results: [{ permissionship: 'allowed' }], token: 'gh1_1' }); // one answer for two items
    await assert.rejects(
      client().checkBulk({ items: [{ resource: 'document:a', permission: 'view', subject: 'user:ann' }, { resource: 'document:b', permission: 'view', subject: 'user:ann' }] }),
      { code: 'PERMISSIONS_RESPONSE_INVALID' },
    );
    const refused = createPermissionsClient({ baseUrl: 'http://127.0.0.1:1', tenant: 'acme', token: 't' });
    await assert.rejects(refused.readSchema(), (error: unknown) => {
      assert.ok(error instanceof GatehousePermissionsError);
      assert.equal(error.code, 'PERMISSIONS_REQUEST_FAILED');
      assert.equal(error.status, 0);
      assert.ok(error.cause);
      return true;
    });
  });

  it('calls a token function before every request and reports its failure', async () => {
    let calls = 0;
    const c = client({ token: async () => `tok-${++calls}` });
    answer({ schema: '' });
    answer({ schema: '' });
    answer({ permissionship: 'denied', token: 'gh1_1' });
    await c.readSchema();
    await c.readSchema();
    await c.check({ resource: 'document:a', permission: 'view', subject: 'user:ann' });
    assert.equal(calls, 3);
    assert.deepEqual(requests.map((r) => r.headers.authorization), ['Bearer tok-1', 'Bearer tok-2', 'Bearer tok-3']);

    const broken = client({ token: async () => Promise.reject(new Error('token endpoint down')) });
    await assert.rejects(broken.readSchema(), (error: unknown) => {
      assert.ok(error instanceof GatehousePermissionsError);
      assert.equal(error.code, 'PERMISSIONS_TOKEN_UNAVAILABLE');
      assert.match(error.message, /token endpoint down/);
      return true;
    });
    await assert.rejects(client({ token: () => '' }).readSchema(), { code: 'PERMISSIONS_TOKEN_UNAVAILABLE' });
    assert.equal(requests.length, 3, 'no request without a token');
  });

  it('uses an injected fetch and encodes the tenant and base URL path', async () => {
    const seen: string[] = [];
    const c = createPermissionsClient({
      baseUrl: 'https://id.example.com/gatehouse/',
      tenant: 'a b',
      token: 't',
      fetch: async (url, init) => {
        seen.push(`${init.method} ${url}`);
        return { ok: true, status: 200, text: async () => JSON.stringify({ schema: 'x' }) };
      },
    });
    assert.equal(await c.readSchema(), 'x');
    assert.deepEqual(seen, ['GET https://id.example.com/gatehouse/api/v1/tenants/a%20b/authz/schema']);
  });

  it('refuses bad configuration and bad arguments with TypeError, before any request', async () => {
    assert.throws(() => createPermissionsClient({ baseUrl: 'http://id.example.com', tenant: 'acme', token: 't' }), TypeError);
    assert.throws(() => createPermissionsClient({ baseUrl: 'not a url', tenant: 'acme', token: 't' }), TypeError);
    assert.throws(() => createPermissionsClient({ baseUrl, tenant: '', token: 't' }), TypeError);
    assert.throws(() => createPermissionsClient({ baseUrl, tenant: 'acme', token: '' }), TypeError);
    assert.throws(() => createPermissionsClient({ baseUrl, tenant: 'acme', token: 't', timeoutSeconds: 0 }), TypeError);
    const c = client();
    await assert.rejects(c.check({ resource: 'document', permission: 'view', subject: 'user:ann' }), TypeError);
    await assert.rejects(c.check({ resource: { type: 'document', id: 'a', relation: 'x' } as never, permission: 'view', subject: 'user:ann' }), TypeError);
    await assert.rejects(c.check({ resource: 'document:a', permission: 'view', subject: { type: 'user', id: 'a:b' } }), TypeError);
    await assert.rejects(c.check({ resource: 'document:a', permission: 'view', subject: 'user:ann', consistency: { mode: 'at_least_as_fresh', token: '' } }), TypeError);
    await assert.rejects(c.check({ resource: 'document:a', permission: 'view', subject: 'user:ann', consistency: 'eventually' as never }), TypeError);
    await assert.rejects(c.writeRelationships({ updates: [{ operation: 'upsert' as never, relationship: 'document:a#viewer@user:ann' }] }), TypeError);
    await assert.rejects(c.importRelationships(42 as never), TypeError);
    await assert.rejects(c.importRelationships([{ resource: 'document', relation: 'viewer', subject: 'user:ann' }]), TypeError);
    await assert.rejects(c.writePolicies(undefined as never), TypeError);
    await assert.rejects(c.setRole({ role: '', permissions: [] }), TypeError);
    await assert.rejects(c.setRole({ role: 'editor', permissions: 'orders.read' as never }), TypeError);
    await assert.rejects(c.deleteRole(''), TypeError);
    await assert.rejects(c.assignRole({ role: 'editor', subject: 'ann' }), TypeError);
    await assert.rejects(c.addGroupMember({ group: '', subject: 'user:ann' }), TypeError);
    await assert.rejects(c.checkRbac({ subject: 'user:ann', permission: 'orders.read', consistency: 'eventually' as never }), TypeError);
    assert.equal(requests.length, 0);
  });
});
