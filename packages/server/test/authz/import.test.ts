import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { parseRelationship } from '../../src/authz/relationships/index.js';
import type { RelationshipUpdate } from '../../src/authz/store-types.js';
import { adminToken, dialects, startServer, type TestServer } from '../helpers.js';

const schema = `definition user {}

caveat on_tuesday(day string) { day == 'tuesday' }

definition document {
  relation viewer: user | user with on_tuesday
  permission view = viewer
}
`;
const touch = (text: string): RelationshipUpdate => ({ operation: 'touch', relationship: parseRelationship(text) });

// Issue 9 part 5: a 400k-relationship import held /healthz for 13 s. The import works in
// chunks and yields to the event loop between them, so other requests are served while it runs.
for (const dialect of dialects) {
  describe(`bulk import beside other requests (${dialect})`, () => {
    let server: TestServer;
    let admin: string;
    const api = (path: string, body: unknown) =>
      fetch(`${server.url}/api/v1/tenants/bulk/authz${path}`, {
        method: path === '/schema' ? 'PUT' : 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    before(async () => {
      server = await startServer({ dialect, listen: true });
      admin = await adminToken(server);
      await server.core.tenants.create('bulk');
      assert.equal((await api('/schema', { schema })).status, 200);
    });
    after(() => server.close());

    it('answers /healthz sent while a 100k-relationship import runs before the import answers', async () => {
      const count = 100_000;
      const text = Array.from({ length: count }, (_, i) => `document:d${i}#viewer@user:u${i % 1000}`).join('\n');
      const order: string[] = [];
      let answered = false;
      const importing = api('/relationships/import', { relationships: text }).then(async (response) => {
        order.push('import');
        answered = true;
        return { status: response.status, body: (await response.json()) as { imported: number; token: string } };
      });
      // Wait until the import is under way (its first chunk is stored), then probe health in
      // sequence until it answers: each probe issued during the import must come back before it.
      while (!answered && (await server.core.authz.readRelationships('bulk', { resourceType: 'document' }, { limit: 1 })).length === 0) await nextTurn();
      let issued = 0;
      while (!answered) {
        issued += 1;
        // A probe stuck behind a blocked event loop may lose its connection: that is a failure too.
        const health = await fetch(`${server.url}/healthz`).then((r) => r.status, (error: Error) => error.message);
        assert.equal(health, 200, 'a health probe failed while the import ran');
        order.push('healthz');
      }
      const result = await importing;
      assert.deepEqual([result.status, result.body.imported], [200, count]);
      const served = order.indexOf('import');
      assert.ok(issued >= 3, `only ${issued} health probes were issued while the import ran`);
      // Every probe but the one in flight when the import answered came back before the import did.
      assert.ok(served >= issued - 1, `order: ${order.slice(0, 10).join(', ')} … import at ${served} of ${order.length}`);
      assert.ok(served >= 3, `the import answered after ${served} probes`);
      const found = await server.core.authz.lookupResources('bulk', { resourceType: 'document', permission: 'view', subject: { type: 'user', id: 'u7' } }, { mode: 'at_least_as_fresh', token: result.body.token });
      assert.equal(found.allowed.length, count / 1000);
    });

    it('refuses a relationship repeated in a later chunk, naming both lines, and writes nothing', async () => {
      const lines = Array.from({ length: 4500 }, (_, i) => `document:dup${i}#viewer@user:v`);
      lines.push('document:dup3#viewer@user:v[on_tuesday]');
      const refused = await api('/relationships/import', { relationships: lines.join('\n') });
      const body = (await refused.json()) as { code: string; details: { line: number; first: number } };
      assert.deepEqual([refused.status, body.code, body.details.line, body.details.first], [400, 'AUTHZ_RELATIONSHIP_DUPLICATE', 4501, 4]);
      assert.deepEqual(await server.core.authz.readRelationships('bulk', { resourceType: 'document', resourceId: 'dup0' }), []);
    });

    it('keeps the last values when one write touches a relationship twice (one multi-row upsert)', async () => {
      await server.core.authz.writeRelationships('bulk', [touch('document:twice#viewer@user:t[on_tuesday]'), touch('document:other#viewer@user:t'), touch('document:twice#viewer@user:t')]);
      const [stored] = await server.core.authz.readRelationships('bulk', { resourceType: 'document', resourceId: 'twice' });
      assert.equal(stored!.caveat, undefined);
      const { token } = await server.core.authz.writeRelationships('bulk', [touch('document:twice#viewer@user:t'), touch('document:twice#viewer@user:t[on_tuesday]')]);
      const [again] = await server.core.authz.readRelationships('bulk', { resourceType: 'document', resourceId: 'twice' });
      assert.deepEqual(again!.caveat, { name: 'on_tuesday' });
      const check = await server.core.authz.check('bulk', { resource: { type: 'document', id: 'twice' }, permission: 'view', subject: { type: 'user', id: 't' } }, { mode: 'at_least_as_fresh', token });
      assert.equal(check.permissionship, 'conditional');
    });
  });
}
