import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminToken, dialects, startServer, type TestServer } from '../helpers.js';

// Issue 9 part 1: the schema of the finding; a ban whose caveat fails must not lift the ban.
const schema = `definition user {}

caveat blocked_country(country string) {
  country == "KP"
}

caveat over_quota(used int, quota int) {
  used / quota > 1
}

definition document {
  relation viewer: user
  relation banned: user with blocked_country | user with over_quota
  permission view = viewer - banned
}
`;

for (const dialect of dialects) {
  describe(`permission API fails closed (${dialect})`, () => {
    let server: TestServer;
    let admin: string;
    let consistency: { mode: string; token: string };
    const call = (url: string, body: Record<string, unknown>, tenant = 'acme') =>
      server.inject({ method: url === '/schema' ? 'PUT' : 'POST', url: `/api/v1/tenants/${tenant}/authz${url}`, headers: { authorization: `Bearer ${admin}` }, payload: body });

    before(async () => {
      server = await startServer({ dialect });
      admin = await adminToken(server);
      await server.core.tenants.create('acme');
      assert.equal((await call('/schema', { schema })).statusCode, 200);
      const write = await call('/relationships/write', {
        updates: [
          'document:1#viewer@user:jon',
          'document:1#banned@user:jon[blocked_country]',
          'document:2#viewer@user:jon',
          'document:2#banned@user:jon[over_quota:{"used":5,"quota":0}]',
        ].map((relationship) => ({ operation: 'touch', relationship })),
      });
      assert.equal(write.statusCode, 200);
      consistency = { mode: 'at_least_as_fresh', token: write.json().token };
    });
    after(() => server.close());

    const expectError = async (url: string, body: Record<string, unknown>, code: string) => {
      const response = await call(url, { ...body, consistency });
      assert.equal(response.statusCode, 400, `${url} ${JSON.stringify(body)}: ${response.body}`);
      assert.equal(response.json().code, code, `${url} ${JSON.stringify(body)}`);
    };

    it('answers a context of the wrong JSON type with 400 AUTHZ_CAVEAT_CONTEXT_INVALID, never allowed', async () => {
      for (const country of [1, ['KP']]) {
        const context = { country };
        await expectError('/check', { resource: 'document:1', permission: 'view', subject: 'user:jon', context }, 'AUTHZ_CAVEAT_CONTEXT_INVALID');
        await expectError('/check', { resource: 'document:1', permission: 'view', subject: 'user:jon', context, explain: true }, 'AUTHZ_CAVEAT_CONTEXT_INVALID');
        await expectError('/check/bulk', { items: [{ resource: 'document:1', permission: 'view', subject: 'user:jon', context }] }, 'AUTHZ_CAVEAT_CONTEXT_INVALID');
        await expectError('/lookup-subjects', { resource: 'document:1', permission: 'view', subject_type: 'user', context }, 'AUTHZ_CAVEAT_CONTEXT_INVALID');
        await expectError('/lookup-resources', { resource_type: 'document', permission: 'view', subject: 'user:jon', context }, 'AUTHZ_CAVEAT_CONTEXT_INVALID');
        await expectError('/expand', { resource: 'document:1', permission: 'view', context }, 'AUTHZ_CAVEAT_CONTEXT_INVALID');
      }
      const typed = await call('/check', { resource: 'document:1', permission: 'view', subject: 'user:jon', context: { country: 'KP' }, consistency });
      assert.equal(typed.json().permissionship, 'denied');
    });

    it('answers a stored caveat that divides by zero with 400 AUTHZ_CAVEAT_EVALUATION_FAILED, never allowed', async () => {
      await expectError('/check', { resource: 'document:2', permission: 'view', subject: 'user:jon' }, 'AUTHZ_CAVEAT_EVALUATION_FAILED');
      await expectError('/check', { resource: 'document:2', permission: 'view', subject: 'user:jon', explain: true }, 'AUTHZ_CAVEAT_EVALUATION_FAILED');
      await expectError('/check/bulk', { items: [{ resource: 'document:2', permission: 'view', subject: 'user:jon' }] }, 'AUTHZ_CAVEAT_EVALUATION_FAILED');
      await expectError('/lookup-subjects', { resource: 'document:2', permission: 'view', subject_type: 'user' }, 'AUTHZ_CAVEAT_EVALUATION_FAILED');
      await expectError('/lookup-resources', { resource_type: 'document', permission: 'view', subject: 'user:jon', context: { country: 'NL' } }, 'AUTHZ_CAVEAT_EVALUATION_FAILED');
      await expectError('/expand', { resource: 'document:2', permission: 'view', context: {} }, 'AUTHZ_CAVEAT_EVALUATION_FAILED');
    });

    // Issue 9 part 2: a cycle in the data through an exclusion.
    it('answers a cycle through an exclusion with 400 AUTHZ_CYCLE in check, bulk check and both lookups', async () => {
      await server.core.tenants.create('loop');
      const cyclic = 'definition user {}\n\ndefinition document {\n  relation restricted: user | document#viewer\n  relation viewer_direct: user\n  permission viewer = viewer_direct - restricted\n}\n';
      assert.equal((await call('/schema', { schema: cyclic }, 'loop')).statusCode, 200);
      const write = await call('/relationships/write', { updates: ['document:1#viewer_direct@user:jon', 'document:1#restricted@document:1#viewer'].map((relationship) => ({ operation: 'touch', relationship })) }, 'loop');
      assert.equal(write.statusCode, 200, write.body);
      const at = { mode: 'at_least_as_fresh', token: write.json().token };
      const requests: [string, Record<string, unknown>][] = [
        ['/check', { resource: 'document:1', permission: 'viewer', subject: 'user:jon' }],
        ['/check', { resource: 'document:1', permission: 'restricted', subject: 'user:jon', explain: true }],
        ['/check/bulk', { items: [{ resource: 'document:1', permission: 'viewer', subject: 'user:jon' }] }],
        ['/lookup-resources', { resource_type: 'document', permission: 'viewer', subject: 'user:jon' }],
        ['/lookup-subjects', { resource: 'document:1', permission: 'viewer', subject_type: 'user' }],
      ];
      for (const [url, body] of requests) {
        const response = await call(url, { ...body, consistency: at }, 'loop');
        assert.equal(response.statusCode, 400, `${url}: ${response.body}`);
        assert.equal(response.json().code, 'AUTHZ_CYCLE', url);
      }
    });

    // Issue 9 part 3: schemas that would stall or crash the engine are refused when written.
    it('refuses a 6,000-hop arrow chain and 5,000 nested parentheses with 400 AUTHZ_SCHEMA_LIMIT at line and column, and keeps the schema that runs', async () => {
      const folder = (permission: string) => `definition user {}\ndefinition folder {\n  relation par: folder\n  relation viewer: user\n  permission view = ${permission}\n}\n`;
      await server.core.tenants.create('limits');
      assert.equal((await call('/schema', { schema: folder('viewer + par->view') }, 'limits')).statusCode, 200);
      const write = await call('/relationships/write', { updates: [{ operation: 'touch', relationship: 'folder:f1#viewer@user:ann' }] }, 'limits');
      for (const [expr, limit, column] of [
        [`${'par->'.repeat(6000)}viewer`, 'arrowChain', 20 + 5 * 32 + 4],
        [`${'('.repeat(5000)}viewer${')'.repeat(5000)}`, 'parenthesisNesting', 20 + 64 + 1],
      ] as const) {
        const response = await call('/schema', { schema: folder(expr) }, 'limits');
        assert.equal(response.statusCode, 400, response.body);
        assert.equal(response.json().code, 'AUTHZ_SCHEMA_LIMIT');
        assert.deepEqual([response.json().details.limit, response.json().details.line, response.json().details.column], [limit, 5, column]);
      }
      const check = await call('/check', { resource: 'folder:f1', permission: 'view', subject: 'user:ann', consistency: { mode: 'at_least_as_fresh', token: write.json().token } }, 'limits');
      assert.equal(check.statusCode, 200, check.body);
      assert.equal(check.json().permissionship, 'allowed');
    });
  });
}
