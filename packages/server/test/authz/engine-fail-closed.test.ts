import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { compileCaveats } from '../../src/authz/caveats/index.js';
import { createEngine } from '../../src/authz/engine/engine.js';
import { createRelationshipIndex } from '../../src/authz/engine/relationship-index.js';
import { parseRelationships } from '../../src/authz/relationships/index.js';
import { compileSchema } from '../../src/authz/schema/index.js';
import type { SubjectRef } from '../../src/authz/types.js';
import { validateFiles } from '../../src/authz/validate-files.js';

function engine(schemaText: string, relationships: string) {
  const schema = compileSchema(schemaText);
  return createEngine({ schema, caveats: compileCaveats(schema.caveats.values()), reader: createRelationshipIndex(parseRelationships(relationships)) });
}

const user = (id: string): SubjectRef => ({ type: 'user', id });
const doc = (id: string) => ({ type: 'document', id });

// Issue 9 part 1: a ban whose caveat cannot be evaluated must not read as "not banned".
const banned = `
  definition user {}
  caveat blocked_country(country string) { country == "KP" }
  caveat over_quota(used int, quota int) { used / quota > 1 }
  definition document {
    relation viewer: user
    relation owner: user
    relation banned: user with blocked_country | user with over_quota
    permission view = viewer - banned
    permission both = viewer & banned
    permission either = owner + banned
  }`;

const rels = `
  document:1#viewer@user:jon
  document:1#banned@user:jon[blocked_country]
  document:2#viewer@user:jon
  document:2#banned@user:jon[over_quota:{"used":5,"quota":0}]
  document:3#viewer@user:jon
  document:3#owner@user:jon
  document:3#banned@user:jon[blocked_country]
`;

describe('permission engine: a caveat that cannot be evaluated never grants', () => {
  const e = engine(banned, rels);

  it('fails a check with a context of the wrong JSON type instead of lifting the ban', () => {
    for (const country of [1, ['KP'], { code: 'KP' }, true, null]) {
      assert.throws(() => e.check({ resource: doc('1'), permission: 'view', subject: user('jon'), context: { country } }), { code: 'AUTHZ_CAVEAT_CONTEXT_INVALID' }, JSON.stringify(country));
    }
    // The same check with a well-typed context still decides.
    assert.equal(e.check({ resource: doc('1'), permission: 'view', subject: user('jon'), context: { country: 'KP' } }).permissionship, 'denied');
    assert.equal(e.check({ resource: doc('1'), permission: 'view', subject: user('jon'), context: { country: 'NL' } }).permissionship, 'allowed');
    assert.equal(e.check({ resource: doc('1'), permission: 'view', subject: user('jon') }).permissionship, 'conditional');
  });

  it('fails a check whose stored caveat divides by zero', () => {
    assert.throws(() => e.check({ resource: doc('2'), permission: 'view', subject: user('jon') }), { code: 'AUTHZ_CAVEAT_EVALUATION_FAILED' });
    assert.throws(() => e.check({ resource: doc('2'), permission: 'both', subject: user('jon') }), { code: 'AUTHZ_CAVEAT_EVALUATION_FAILED' });
  });

  it('lets a branch that decides on its own decide: a granting union branch, a non-granting base', () => {
    // owner + banned: the owner relationship grants whatever the caveat says.
    assert.equal(e.check({ resource: doc('3'), permission: 'either', subject: user('jon'), context: { country: 1 } }).permissionship, 'allowed');
    // viewer - banned for someone who is not a viewer: no, without evaluating the ban.
    assert.equal(e.check({ resource: doc('1'), permission: 'view', subject: user('ann'), context: { country: 1 } }).permissionship, 'denied');
  });

  it('fails lookup-resources and lookup-subjects instead of listing the resource', () => {
    assert.throws(() => e.lookupResources({ resourceType: 'document', permission: 'view', subject: user('jon'), context: { country: 1 } }), { code: 'AUTHZ_CAVEAT_CONTEXT_INVALID' });
    assert.throws(() => e.lookupResources({ resourceType: 'document', permission: 'view', subject: user('jon'), context: { country: 'NL' } }), { code: 'AUTHZ_CAVEAT_EVALUATION_FAILED' });
    assert.throws(() => e.lookupSubjects({ resource: doc('1'), permission: 'view', subjectType: 'user', context: { country: ['KP'] } }), { code: 'AUTHZ_CAVEAT_CONTEXT_INVALID' });
    assert.throws(() => e.lookupSubjects({ resource: doc('2'), permission: 'view', subjectType: 'user' }), { code: 'AUTHZ_CAVEAT_EVALUATION_FAILED' });
    assert.deepEqual(e.lookupSubjects({ resource: doc('1'), permission: 'view', subjectType: 'user', context: { country: 'KP' } }), { allowed: [], conditional: [] });
  });

  it('fails explain and expand instead of dropping the banned relationship', () => {
    assert.throws(() => e.check({ resource: doc('1'), permission: 'view', subject: user('jon'), context: { country: 1 }, explain: true }), { code: 'AUTHZ_CAVEAT_CONTEXT_INVALID' });
    assert.throws(() => e.expand({ resource: doc('1'), permission: 'banned', context: { country: 1 } }), { code: 'AUTHZ_CAVEAT_CONTEXT_INVALID' });
    assert.throws(() => e.expand({ resource: doc('2'), permission: 'view', context: {} }), { code: 'AUTHZ_CAVEAT_EVALUATION_FAILED' });
    const explained = e.check({ resource: doc('3'), permission: 'either', subject: user('jon'), context: { country: 1 }, explain: true });
    assert.equal(explained.explanation?.permissionship, 'allowed');
  });
});

// Issue 9 part 2: the schema and relationships of the finding.
const restricted = `
  definition user {}
  definition group {
    relation member: user | group#member
  }
  definition document {
    relation restricted: user | document#viewer | group#member
    relation viewer_direct: user
    permission viewer = viewer_direct - restricted
    permission both = viewer_direct & viewer
    permission shown = viewer_direct + viewer
  }`;
const loop = `
  document:1#viewer_direct@user:jon
  document:1#restricted@document:1#viewer
`;

describe('permission engine: a cycle through an exclusion never grants', () => {
  it('fails the check with AUTHZ_CYCLE, for the permission and for the relation that closes the loop', () => {
    const e = engine(restricted, loop);
    for (const permission of ['viewer', 'restricted', 'both']) {
      assert.throws(() => e.check({ resource: doc('1'), permission, subject: user('jon') }), { code: 'AUTHZ_CYCLE' }, permission);
      assert.throws(() => e.check({ resource: doc('1'), permission, subject: user('jon'), explain: true }), { code: 'AUTHZ_CYCLE' }, permission);
    }
    // A union branch that grants on its own still grants; a subject the base does not reach is denied.
    assert.equal(e.check({ resource: doc('1'), permission: 'shown', subject: user('jon') }).permissionship, 'allowed');
    assert.equal(e.check({ resource: doc('1'), permission: 'viewer', subject: user('ann') }).permissionship, 'denied');
  });

  it('fails lookup-resources and lookup-subjects the same way (check and lookups agree)', () => {
    const e = engine(restricted, loop);
    assert.throws(() => e.lookupResources({ resourceType: 'document', permission: 'viewer', subject: user('jon') }), { code: 'AUTHZ_CYCLE' });
    assert.throws(() => e.lookupSubjects({ resource: doc('1'), permission: 'viewer', subjectType: 'user' }), { code: 'AUTHZ_CYCLE' });
    assert.throws(() => e.lookupResources({ resourceType: 'document', permission: 'restricted', subject: user('jon') }), { code: 'AUTHZ_CYCLE' });
    assert.deepEqual(e.lookupResources({ resourceType: 'document', permission: 'shown', subject: user('jon') }), { allowed: ['1'], conditional: [] });
  });

  it('still answers a cycle that only unions, under an exclusion or not (its least fixed point)', () => {
    const e = engine(restricted, `
      document:1#viewer_direct@user:jon
      document:1#viewer_direct@user:bea
      document:1#restricted@group:a#member
      group:a#member@group:b#member
      group:b#member@group:a#member
      group:b#member@user:bea
      document:2#viewer_direct@user:jon
      document:2#restricted@document:1#viewer
    `);
    assert.equal(e.check({ resource: doc('1'), permission: 'viewer', subject: user('jon') }).permissionship, 'allowed');
    assert.equal(e.check({ resource: doc('1'), permission: 'viewer', subject: user('bea') }).permissionship, 'denied');
    // document:2 excludes document:1's viewers, which is no cycle: jon is one there, so not here.
    assert.equal(e.check({ resource: doc('2'), permission: 'viewer', subject: user('jon') }).permissionship, 'denied');
    assert.deepEqual(e.lookupResources({ resourceType: 'document', permission: 'viewer', subject: user('jon') }), { allowed: ['1'], conditional: [] });
    assert.deepEqual(e.lookupSubjects({ resource: doc('1'), permission: 'viewer', subjectType: 'user' }), { allowed: ['jon'], conditional: [] });
  });

  describe('validate', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cycle-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const indent = (text: string) => text.split('\n').map((line) => `  ${line}`).join('\n');

    it('asserts neither viewer nor restricted, and --consistency finds check and lookups agreeing', () => {
      const path = join(dir, 'cycle.yaml');
      writeFileSync(path, `schema: |\n${indent(restricted)}\nrelationships: |\n${indent(loop.trim())}\nassertions:\n  assertTrue:\n    - document:1#viewer@user:jon\n  assertFalse:\n    - document:1#restricted@user:jon\n`);
      const report = validateFiles([path], { consistency: true });
      assert.deepEqual(
        report.failures.map((f) => [f.kind, f.assertion, f.actual.split(':')[0]]),
        [
          ['assertTrue', 'document:1#viewer@user:jon', 'error'],
          ['assertFalse', 'document:1#restricted@user:jon', 'error'],
        ],
        JSON.stringify(report.failures),
      );
      assert.match(report.failures[0]!.actual, /cycle through an exclusion at document:1#viewer/);
    });
  });
});
