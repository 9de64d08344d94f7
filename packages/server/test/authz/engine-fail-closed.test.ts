import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCaveats } from '../../src/authz/caveats/index.js';
import { createEngine } from '../../src/authz/engine/engine.js';
import { createRelationshipIndex } from '../../src/authz/engine/relationship-index.js';
import { parseRelationships } from '../../src/authz/relationships/index.js';
import { compileSchema } from '../../src/authz/schema/index.js';
import type { SubjectRef } from '../../src/authz/types.js';

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
