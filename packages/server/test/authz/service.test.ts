import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseRelationship } from '../../src/authz/relationships/index.js';
import { revisionOf } from '../../src/authz/service.js';
import type { RelationshipUpdate } from '../../src/authz/store-types.js';
import { createCore, type Core } from '../../src/core.js';
import { dialects, startServer, type TestServer } from '../helpers.js';
import pino from 'pino';

const schema = `
  definition user {}
  caveat on_tuesday(day string) { day == 'tuesday' }
  definition group {
    relation member: user | group#member
  }
  definition document {
    relation owner: user
    relation viewer: user | user:* | group#member | user with on_tuesday
    permission view = viewer + owner
  }
`;
const touch = (text: string): RelationshipUpdate => ({ operation: 'touch', relationship: parseRelationship(text) });
const create = (text: string): RelationshipUpdate => ({ operation: 'create', relationship: parseRelationship(text) });
const del = (text: string): RelationshipUpdate => ({ operation: 'delete', relationship: parseRelationship(text) });

for (const dialect of dialects) {
  describe(`permission service (${dialect})`, () => {
    let server: TestServer;
    let core: Core;
    const check = async (tenant: string, text: string, consistency?: Parameters<Core['authz']['engineFor']>[1], context?: Record<string, unknown>) => {
      const [resource, subject] = text.split('@') as [string, string];
      const [object, permission] = resource.split('#') as [string, string];
      const [type, id] = object.split(':') as [string, string];
      const [stype, sid] = subject.split(':') as [string, string];
      const { engine, token } = await core.authz.engineFor(tenant, consistency);
      return { ...engine.check({ resource: { type, id }, permission, subject: { type: stype, id: sid }, context }), token };
    };

    before(async () => {
      server = await startServer({ dialect });
      core = server.core;
      await core.tenants.create('acme');
    });
    after(() => server.close());

    it('refuses relationships before a schema exists, and a schema that does not compile', async () => {
      await assert.rejects(core.authz.writeRelationships('acme', [touch('document:d#owner@user:ann')]), { code: 'AUTHZ_NO_SCHEMA' });
      await assert.rejects(core.authz.writeSchema('acme', 'definition user {\n  relation xyz: nope\n}'), { code: 'AUTHZ_SCHEMA_UNKNOWN_TYPE' });
      assert.equal(await core.authz.readSchema('acme'), undefined);
    });

    it('writes a schema and relationships; a check at the write token sees the write', async () => {
      const { token: schemaToken } = await core.authz.writeSchema('acme', schema);
      assert.ok(revisionOf(schemaToken) > 0);
      assert.equal((await check('acme', 'document:d#view@user:ann', { mode: 'at_least_as_fresh', token: schemaToken })).permissionship, 'denied');
      const { token } = await core.authz.writeRelationships('acme', [touch('document:d#owner@user:ann'), touch('group:eng#member@user:bob'), touch('document:d#viewer@group:eng#member')]);
      assert.ok(revisionOf(token) > revisionOf(schemaToken));
      const answer = await check('acme', 'document:d#view@user:bob', { mode: 'at_least_as_fresh', token });
      assert.equal(answer.permissionship, 'allowed');
      assert.ok(revisionOf(answer.token) >= revisionOf(token));
      assert.equal((await check('acme', 'document:d#view@user:ann', { mode: 'fully_consistent' })).permissionship, 'allowed');
      assert.equal((await check('acme', 'document:d#view@user:cat')).permissionship, 'denied');
    });

    it('validates relationships against the schema and writes nothing of a refused batch', async () => {
      const bad: [string, string][] = [
        ['folder:f#owner@user:ann', 'type "folder"'],
        ['document:d#view@user:ann', 'is a permission'],
        ['document:d#owner@group:eng#member', 'does not allow group#member'],
        ['document:d#owner@user:*', 'does not allow user:*'],
        ['document:d#viewer@user:ann[nope]', 'does not allow user with nope'],
      ];
      for (const [text, detail] of bad) {
        await assert.rejects(core.authz.writeRelationships('acme', [touch('document:x#owner@user:zed'), touch(text)]), (error: { code: string; message: string }) => {
          return error.code === 'AUTHZ_RELATIONSHIP_INVALID' && error.message.includes(detail);
        });
      }
      assert.deepEqual(await core.authz.readRelationships('acme', { resourceType: 'document', resourceId: 'x' }), []);
    });

    it('creates only what does not exist, and checks preconditions atomically', async () => {
      await assert.rejects(core.authz.writeRelationships('acme', [create('document:e#owner@user:eve'), create('document:d#owner@user:ann')]), { code: 'AUTHZ_RELATIONSHIP_EXISTS' });
      assert.deepEqual(await core.authz.readRelationships('acme', { resourceType: 'document', resourceId: 'e' }), []);
      await assert.rejects(
        core.authz.writeRelationships('acme', [touch('document:e#owner@user:eve')], [{ operation: 'must_match', filter: { resourceType: 'document', resourceId: 'nope' } }]),
        { code: 'AUTHZ_PRECONDITION_FAILED' },
      );
      await assert.rejects(
        core.authz.writeRelationships('acme', [touch('document:e#owner@user:eve')], [{ operation: 'must_not_match', filter: { resourceType: 'document', resourceId: 'd', relation: 'owner' } }]),
        { code: 'AUTHZ_PRECONDITION_FAILED' },
      );
      assert.deepEqual(await core.authz.readRelationships('acme', { resourceType: 'document', resourceId: 'e' }), []);
      await core.authz.writeRelationships('acme', [touch('document:e#owner@user:eve')], [{ operation: 'must_match', filter: { resourceType: 'document', resourceId: 'd', relation: 'owner', subjectType: 'user', subjectId: 'ann' } }]);
      assert.equal((await core.authz.readRelationships('acme', { resourceType: 'document', resourceId: 'e' })).length, 1);
    });

    it('keeps caveats and expiration, and deletes by relationship or by filter', async () => {
      const { token } = await core.authz.writeRelationships('acme', [touch('document:t#viewer@user:tue[on_tuesday]')]);
      const consistency = { mode: 'at_least_as_fresh' as const, token };
      assert.equal((await check('acme', 'document:t#view@user:tue', consistency)).permissionship, 'conditional');
      assert.equal((await check('acme', 'document:t#view@user:tue', consistency, { day: 'tuesday' })).permissionship, 'allowed');
      const [stored] = await core.authz.readRelationships('acme', { resourceType: 'document', resourceId: 't' });
      assert.deepEqual(stored!.caveat, { name: 'on_tuesday' });
      const removed = await core.authz.writeRelationships('acme', [del('document:t#viewer@user:tue[on_tuesday]')]);
      assert.equal((await check('acme', 'document:t#view@user:tue', { mode: 'at_least_as_fresh', token: removed.token }, { day: 'tuesday' })).permissionship, 'denied');
      await core.authz.writeRelationships('acme', [touch('document:f1#owner@user:f'), touch('document:f2#owner@user:f')]);
      const { deleted, token: after } = await core.authz.deleteRelationships('acme', { resourceType: 'document', relation: 'owner', subjectType: 'user', subjectId: 'f' });
      assert.equal(deleted, 2);
      assert.equal((await check('acme', 'document:f1#view@user:f', { mode: 'at_least_as_fresh', token: after })).permissionship, 'denied');
      // A filter means the same to read and to delete: a subject id alone is the direct subject, not its sets.
      await core.authz.writeRelationships('acme', [touch('document:f3#viewer@group:gx#member')]);
      const direct = { resourceType: 'document', resourceId: 'f3', subjectType: 'group', subjectId: 'gx' };
      assert.deepEqual(await core.authz.readRelationships('acme', direct), []);
      assert.equal((await core.authz.deleteRelationships('acme', direct)).deleted, 0);
      assert.equal((await core.authz.deleteRelationships('acme', { ...direct, subjectRelation: 'member' })).deleted, 1);
    });

    it('refuses a schema change that would orphan stored relationships, with the count', async () => {
      const narrower = schema.replace('relation viewer: user | user:* | group#member | user with on_tuesday', 'relation viewer: user | user with on_tuesday');
      await assert.rejects(core.authz.writeSchema('acme', narrower), (error: { code: string; details: { count: number } }) => {
        return error.code === 'AUTHZ_SCHEMA_ORPHANS' && error.details.count === 1;
      });
      assert.equal((await core.authz.readSchema('acme'))!.text, schema);
    });

    it('applies its own writes to the live snapshot instead of rebuilding it', async () => {
      const before = await core.authz.engineFor('acme', { mode: 'fully_consistent' });
      const { token } = await core.authz.writeRelationships('acme', [touch('document:live#owner@user:lia'), touch('document:gone#owner@user:lia')]);
      const after = await core.authz.engineFor('acme', { mode: 'at_least_as_fresh', token });
      assert.equal(after.engine, before.engine, 'same engine, patched in place');
      assert.equal((await check('acme', 'document:live#view@user:lia', { mode: 'at_least_as_fresh', token })).permissionship, 'allowed');
      const removed = await core.authz.writeRelationships('acme', [del('document:gone#owner@user:lia')]);
      assert.equal((await check('acme', 'document:gone#view@user:lia', { mode: 'at_least_as_fresh', token: removed.token })).permissionship, 'denied');
      assert.deepEqual(after.engine.lookupResources({ resourceType: 'document', permission: 'view', subject: { type: 'user', id: 'lia' } }).allowed, ['live']);
    });

    it('rejects a forged consistency token', async () => {
      await assert.rejects(core.authz.engineFor('acme', { mode: 'at_least_as_fresh', token: 'rev:1' }), { code: 'AUTHZ_CONSISTENCY_TOKEN_INVALID' });
    });

    it('answers minimize_latency from the snapshot at hand while a write of another process is being loaded', async () => {
      const stale = await core.authz.engineFor('acme', { mode: 'fully_consistent' });
      const other = await createCore(server.config, { logger: pino({ level: 'silent' }) });
      try {
        const { token } = await other.authz.writeRelationships('acme', [touch('document:q#viewer@user:quinn')]);
        // This process learns of the write through the change feed…
        await core.authz.engineFor('acme', { mode: 'at_least_as_fresh', token: stale.token });
        core.authz.invalidate('acme', revisionOf(token));
        // … and answers at once from what it has, without waiting for the rebuild.
        const now = await core.authz.engineFor('acme');
        assert.equal(now.engine, stale.engine);
        assert.equal(now.token, stale.token);
        // Asking for the write's token waits for (and shares) the rebuild, which then serves everyone.
        const fresh = await core.authz.engineFor('acme', { mode: 'at_least_as_fresh', token });
        assert.notEqual(fresh.engine, stale.engine);
        assert.equal((await check('acme', 'document:q#view@user:quinn')).permissionship, 'allowed');
      } finally {
        await other.close();
      }
    });

    it('sees a write made by another process once it asks for the token of that write', async () => {
      const before = await check('acme', 'document:p#view@user:pia', { mode: 'fully_consistent' });
      assert.equal(before.permissionship, 'denied');
      const other = await createCore(server.config, { logger: pino({ level: 'silent' }) });
      try {
        const { token } = await other.authz.writeRelationships('acme', [touch('document:p#viewer@user:pia')]);
        assert.equal((await check('acme', 'document:p#view@user:pia', { mode: 'at_least_as_fresh', token })).permissionship, 'allowed');
      } finally {
        await other.close();
      }
    });
  });
}
