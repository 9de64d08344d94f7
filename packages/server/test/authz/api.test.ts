import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminToken, basic, dialects, startServer, tokenRequest, type TestServer } from '../helpers.js';

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

for (const dialect of dialects) {
  describe(`permission service API (${dialect})`, () => {
    let server: TestServer;
    let admin: string;
    let checker: string;
    const call = (method: 'GET' | 'PUT' | 'POST', url: string, body: unknown, token: string | null = admin) =>
      server.inject({
        method,
        url: `/api/v1/tenants/acme/authz${url}`,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
      });

    before(async () => {
      server = await startServer({ dialect });
      admin = await adminToken(server);
      await server.core.tenants.create('acme');
      const { client, clientSecret } = await server.core.catalog.createClient('default', {
        name: 'orders service',
        grantTypes: ['client_credentials'],
        apis: { 'urn:gatehouse:admin': ['authz:check'] },
      });
      checker = (await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, clientSecret!) })).json.access_token!;
    });
    after(() => server.close());

    it('refuses an invalid schema with its line and column, then accepts a valid one', async () => {
      const bad = await call('PUT', '/schema', { schema: 'definition document {\n  relation owner: nobody\n}\n' });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().code, 'AUTHZ_SCHEMA_UNKNOWN_TYPE');
      assert.equal(bad.json().details.line, 2);
      const good = await call('PUT', '/schema', { schema });
      assert.equal(good.statusCode, 200);
      assert.match(good.json().token, /^gh1_/);
    });

    it('writes relationships and answers checks at the write token, with an explanation', async () => {
      const write = await call('POST', '/relationships/write', {
        updates: [
          { operation: 'touch', relationship: 'group:eng#member@user:ann' },
          { operation: 'touch', relationship: 'document:plan#viewer@group:eng#member' },
          { operation: 'touch', relationship: 'document:plan#banned@user:bob' },
          { operation: 'touch', relationship: 'document:plan#owner@user:bob' },
        ],
      });
      assert.equal(write.statusCode, 200);
      const consistency = { mode: 'at_least_as_fresh', token: write.json().token };
      const allowed = await call('POST', '/check', { resource: 'document:plan', permission: 'view', subject: 'user:ann', consistency, explain: true }, checker);
      assert.equal(allowed.statusCode, 200);
      assert.equal(allowed.json().permissionship, 'allowed');
      assert.match(JSON.stringify(allowed.json().explanation), /group:eng#member@user:ann/);
      const banned = await call('POST', '/check', { resource: 'document:plan', permission: 'view', subject: 'user:bob', consistency, explain: true }, checker);
      assert.equal(banned.json().permissionship, 'denied');
      assert.match(banned.json().explanation.summary, /banned/);
      const bulk = await call('POST', '/check/bulk', { items: [{ resource: 'document:plan', permission: 'view', subject: 'user:ann' }, { resource: 'document:plan', permission: 'view', subject: 'user:bob', explain: true }], consistency }, checker);
      assert.deepEqual(bulk.json().results.map((r: { permissionship: string }) => r.permissionship), ['allowed', 'denied']);
      assert.equal(bulk.json().results[0].explanation, undefined, 'explained only when asked');
      assert.match(bulk.json().results[1].explanation.summary, /banned/);
    });

    it('looks up resources and subjects, and expands', async () => {
      const consistency = { mode: 'fully_consistent' };
      const resources = await call('POST', '/lookup-resources', { resource_type: 'document', permission: 'view', subject: 'user:ann', consistency }, checker);
      assert.deepEqual(resources.json().allowed, ['plan']);
      const subjects = await call('POST', '/lookup-subjects', { resource: 'document:plan', permission: 'view', subject_type: 'user', consistency }, checker);
      assert.deepEqual(subjects.json().allowed, ['ann']);
      const expand = await call('POST', '/expand', { resource: 'document:plan', permission: 'viewer', consistency }, checker);
      assert.equal(expand.statusCode, 200);
      assert.match(JSON.stringify(expand.json().tree), /"eng"/);
      await server.core.audit.flush();
      const expansions = await server.core.repos.audit.query({ tenantId: 'acme', action: 'authz.expand', limit: 10 });
      assert.deepEqual(
        expansions.map((e) => e.target),
        ['document:plan#viewer'],
      );
    });

    it('keeps checkers from writing, and everyone without a token out', async () => {
      const denied = await call('POST', '/relationships/write', { updates: [{ operation: 'touch', relationship: 'document:x#owner@user:mallory' }] }, checker);
      assert.equal(denied.statusCode, 403);
      assert.match(String(denied.headers['www-authenticate']), /insufficient_scope/);
      assert.equal((await call('PUT', '/schema', { schema }, checker)).statusCode, 403);
      assert.equal((await call('POST', '/check', { resource: 'document:plan', permission: 'view', subject: 'user:ann' }, null)).statusCode, 401);
    });

    it('answers bad input with typed errors and writes nothing', async () => {
      const cases: [string, unknown, string][] = [
        ['/relationships/write', { updates: [{ operation: 'touch', relationship: 'not a relationship' }] }, 'AUTHZ_RELATIONSHIP_SYNTAX'],
        ['/relationships/write', { updates: [{ operation: 'touch', relationship: 'document:x#view@user:a' }] }, 'AUTHZ_RELATIONSHIP_INVALID'],
        ['/relationships/write', { updates: [{ operation: 'create', relationship: 'group:eng#member@user:ann' }] }, 'AUTHZ_RELATIONSHIP_EXISTS'],
        ['/relationships/write', { updates: [{ operation: 'touch', relationship: 'document:y#owner@user:a' }], preconditions: [{ operation: 'must_match', filter: { resource_type: 'document', resource_id: 'nope' } }] }, 'AUTHZ_PRECONDITION_FAILED'],
        ['/check', { resource: 'folder:x', permission: 'view', subject: 'user:a' }, 'AUTHZ_UNKNOWN_TYPE'],
        ['/check', { resource: 'document:x', permission: 'edit', subject: 'user:a' }, 'AUTHZ_UNKNOWN_PERMISSION'],
        ['/check', { resource: 'document:x', permission: 'view', subject: 'user:a', consistency: { mode: 'at_least_as_fresh', token: 'forged' } }, 'AUTHZ_CONSISTENCY_TOKEN_INVALID'],
        ['/check', { resource: 'document:x', permission: 'view', subject: 'user:a', consistency: { mode: 'at_least_as_fresh' } }, 'AUTHZ_CONSISTENCY_TOKEN_REQUIRED'],
        ['/check', { resource: 'document:x', permission: 'view', subject: 'user:a', extra: true }, 'REQUEST_INVALID'],
      ];
      for (const [url, body, code] of cases) {
        const response = await call('POST', url, body);
        assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${code}: ${response.statusCode}`);
        assert.equal(response.json().code, code, JSON.stringify(body));
      }
      const read = await call('POST', '/relationships/read', { filter: { resource_type: 'document', resource_id: 'y' } });
      assert.deepEqual(read.json().relationships, []);
    });

    it('combines the graph with Cedar policies: a forbid wins, a permit adds, an evaluation error denies', async () => {
      const bad = await call('PUT', '/policies', { policies: 'permit(principal, action, resource' });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().code, 'AUTHZ_POLICY_INVALID');
      const policies = [
        '@id("no-mfa") forbid(principal, action == Action::"view", resource) when { context has mfa && context.mfa == false };',
        '@id("auditors") permit(principal in group::"auditors", action == Action::"view", resource);',
        '@id("broken") forbid(principal, action == Action::"view", resource) when { context has region && context.region.code == "x" };',
      ].join('\n');
      const written = await call('PUT', '/policies', { policies });
      assert.equal(written.statusCode, 200);
      const consistency = { mode: 'at_least_as_fresh', token: written.json().token };
      const ask = (body: Record<string, unknown>) => call('POST', '/check', { resource: 'document:plan', permission: 'view', consistency, ...body }, checker);
      // The graph allows ann; a forbid on the request context takes it away.
      assert.equal((await ask({ subject: 'user:ann', context: { mfa: true } })).json().permissionship, 'allowed');
      const forbidden = (await ask({ subject: 'user:ann', context: { mfa: false } })).json();
      assert.equal(forbidden.permissionship, 'denied');
      assert.match(forbidden.policy, /no-mfa/);
      // A permit grants what the graph does not: zed is an auditor by the entities given.
      const permitted = (await ask({ subject: 'user:zed', entities: [{ uid: { type: 'user', id: 'zed' }, parents: [{ type: 'group', id: 'auditors' }] }] })).json();
      assert.equal(permitted.permissionship, 'allowed');
      assert.match(permitted.policy, /auditors/);
      // A policy that errors (region is a string, not a record) denies even where the graph allows.
      const errored = (await ask({ subject: 'user:ann', context: { region: 'eu' } })).json();
      assert.equal(errored.permissionship, 'denied');
      assert.match(errored.policy, /policy evaluation error/);
      assert.equal((await call('GET', '/policies', undefined, checker)).json().policies, policies);
      const cleared = await call('PUT', '/policies', { policies: '' });
      assert.equal((await ask({ subject: 'user:ann', context: { mfa: false }, consistency: { mode: 'at_least_as_fresh', token: cleared.json().token } })).json().permissionship, 'allowed');
    });

    it('imports relationships in bulk, refusing the whole text when one line does not fit', async () => {
      const lines = Array.from({ length: 2500 }, (_, i) => `document:bulk${i}#viewer@user:u${i % 7}`);
      const refused = await call('POST', '/relationships/import', { relationships: [...lines, 'document:bulk#view@user:x'].join('\n') });
      assert.equal(refused.json().code, 'AUTHZ_RELATIONSHIP_INVALID');
      assert.deepEqual((await call('POST', '/relationships/read', { filter: { resource_type: 'document', resource_id: 'bulk0' } })).json().relationships, []);
      const imported = await call('POST', '/relationships/import', { relationships: `// a comment\n# another\n\n${lines.join('\n')}\n` });
      assert.equal(imported.statusCode, 200);
      assert.equal(imported.json().imported, 2500);
      const found = await call('POST', '/lookup-resources', { resource_type: 'document', permission: 'view', subject: 'user:u3', consistency: { mode: 'at_least_as_fresh', token: imported.json().token } }, checker);
      assert.equal(found.json().allowed.length, 357);
    });

    it('reads and deletes relationships, and audits every decision', async () => {
      const read = await call('POST', '/relationships/read', { filter: { resource_type: 'document', resource_id: 'plan' }, limit: 2 });
      assert.equal(read.json().relationships.length, 2);
      const next = await call('POST', '/relationships/read', { filter: { resource_type: 'document', resource_id: 'plan' }, limit: 2, after: read.json().next });
      assert.equal(next.json().relationships.length, 1);
      const deleted = await call('POST', '/relationships/delete', { filter: { resource_type: 'document', resource_id: 'plan', relation: 'banned' } });
      assert.equal(deleted.json().deleted, 1);
      const after = await call('POST', '/check', { resource: 'document:plan', permission: 'view', subject: 'user:bob', consistency: { mode: 'at_least_as_fresh', token: deleted.json().token } }, checker);
      assert.equal(after.json().permissionship, 'allowed');
      await server.core.audit.flush();
      const decisions = await server.core.repos.audit.query({ tenantId: 'acme', action: 'authz.check', limit: 100 });
      assert.ok(decisions.length >= 5);
      assert.ok(decisions.some((e) => e.target === 'document:plan#view@user:bob' && e.result === 'failure'));
    });
  });
}
