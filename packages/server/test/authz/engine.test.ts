import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCaveats } from '../../src/authz/caveats/index.js';
import { createEngine } from '../../src/authz/engine/engine.js';
import { createRelationshipIndex } from '../../src/authz/engine/relationship-index.js';
import { parseRelationships } from '../../src/authz/relationships/index.js';
import { compileSchema } from '../../src/authz/schema/index.js';
import type { SubjectRef } from '../../src/authz/types.js';

function engine(schemaText: string, relationships: string, options: { maxDepth?: number; clock?: () => number } = {}) {
  const schema = compileSchema(schemaText);
  return createEngine({ schema, caveats: compileCaveats(schema.caveats.values()), reader: createRelationshipIndex(parseRelationships(relationships)), ...options });
}

const ref = (text: string) => {
  const [object, relation] = text.split('#');
  const [type, id] = object!.split(':');
  return { type: type!, id: id!, ...(relation ? { relation } : {}) } as SubjectRef;
};

/** subject × permission × resource → expected, one row a line (spicedb engine-test style). */
function table(e: ReturnType<typeof engine>, rows: [string, string, string, string, Record<string, unknown>?][]) {
  for (const [resource, permission, subject, expected, context] of rows) {
    const { type, id } = ref(resource);
    assert.equal(e.check({ resource: { type, id }, permission, subject: ref(subject), context }).permissionship, expected, `${resource}#${permission}@${subject}`);
  }
}

const docs = `
  definition user {}
  definition group {
    relation member: user | group#member
  }
  definition folder {
    relation parent: folder
    relation viewer: user | group#member | user:*
    permission view = viewer + parent->view
  }
  definition document {
    relation folder: folder
    relation owner: user
    relation editor: user | group#member
    relation banned: user | user:*
    permission edit = owner + editor
    permission view = (edit + folder->view) - banned
    permission strict = edit & folder->view
    permission everyfolder = folder.all(view)
  }
`;

describe('permission engine', () => {
  it('answers unions, arrows, usersets, intersections and exclusions', () => {
    const e = engine(docs, `
      group:eng#member@user:ann
      group:eng#member@group:leads#member
      group:leads#member@user:lee
      folder:root#viewer@group:eng#member
      folder:sub#parent@folder:root
      document:d1#folder@folder:sub
      document:d1#owner@user:olga
      document:d1#banned@user:ann
      document:d2#editor@user:ed
      document:d2#folder@folder:root
    `);
    table(e, [
      ['document:d1', 'view', 'user:lee', 'allowed'],
      ['document:d1', 'view', 'user:olga', 'allowed'],
      ['document:d1', 'view', 'user:ann', 'denied'],
      ['document:d1', 'view', 'user:zoe', 'denied'],
      ['document:d1', 'strict', 'user:olga', 'denied'],
      ['document:d2', 'strict', 'user:ed', 'denied'],
      ['document:d1', 'view', 'group:eng#member', 'allowed'],
      ['group:eng', 'member', 'group:eng#member', 'allowed'],
      ['document:d2', 'everyfolder', 'user:ann', 'allowed'],
      ['document:d2', 'everyfolder', 'user:zoe', 'denied'],
    ]);
  });

  it('treats a public wildcard as everyone of the type, and lets an exclusion take it back', () => {
    const e = engine(docs, `
      folder:pub#viewer@user:*
      document:p#folder@folder:pub
      document:q#folder@folder:pub
      document:q#banned@user:*
    `);
    table(e, [
      ['document:p', 'view', 'user:anyone', 'allowed'],
      ['document:p', 'view', 'user:*', 'allowed'],
      ['document:q', 'view', 'user:anyone', 'denied'],
    ]);
    assert.deepEqual(e.lookupResources({ resourceType: 'document', permission: 'view', subject: ref('user:anyone') }).allowed, ['p']);
  });

  it('is conditional when a caveat parameter is missing, and decides when it is given or stored', () => {
    const e = engine(
      `
      definition user {}
      caveat limit(count int, max int) { count < max }
      definition doc {
        relation viewer: user with limit
        permission view = viewer
      }`,
      `
      doc:a#viewer@user:u[limit]
      doc:b#viewer@user:u[limit:{"max":5}]
      doc:c#viewer@user:u[limit:{"max":5,"count":1}]
    `,
    );
    assert.deepEqual(e.check({ resource: { type: 'doc', id: 'a' }, permission: 'view', subject: ref('user:u') }), { permissionship: 'conditional', missing: ['count', 'max'] });
    table(e, [
      ['doc:a', 'view', 'user:u', 'allowed', { count: 1, max: 2 }],
      ['doc:b', 'view', 'user:u', 'allowed', { count: 1 }],
      ['doc:b', 'view', 'user:u', 'denied', { count: 9 }],
      // The relationship's own context overrides the request's.
      ['doc:c', 'view', 'user:u', 'allowed', { count: 100, max: 1 }],
    ]);
    assert.deepEqual(e.lookupResources({ resourceType: 'doc', permission: 'view', subject: ref('user:u') }), { allowed: ['c'], conditional: ['a', 'b'] });
  });

  it('ignores expired relationships', () => {
    const schema = `
      use expiration
      definition user {}
      definition doc {
        relation viewer: user with expiration
        permission view = viewer
      }`;
    const rels = `doc:a#viewer@user:u[expiration:2026-01-01T00:00:00Z]`;
    table(engine(schema, rels, { clock: () => Date.parse('2025-12-31T23:59:59Z') }), [['doc:a', 'view', 'user:u', 'allowed']]);
    table(engine(schema, rels, { clock: () => Date.parse('2026-01-01T00:00:00Z') }), [['doc:a', 'view', 'user:u', 'denied']]);
  });

  it('terminates on cycles in the data', () => {
    const e = engine(docs, `
      group:a#member@group:b#member
      group:b#member@group:a#member
      group:b#member@user:bea
      folder:x#parent@folder:y
      folder:y#parent@folder:x
    `);
    table(e, [
      ['group:a', 'member', 'user:bea', 'allowed'],
      ['group:a', 'member', 'user:nobody', 'denied'],
      ['folder:x', 'view', 'user:nobody', 'denied'],
    ]);
    assert.deepEqual(e.lookupResources({ resourceType: 'group', permission: 'member', subject: ref('user:bea') }).allowed, ['a', 'b']);
  });

  it('fails with a clear error past the depth limit', () => {
    const chain = Array.from({ length: 60 }, (_, i) => `folder:f${i}#parent@folder:f${i + 1}`).join('\n');
    const e = engine(docs, chain, { maxDepth: 50 });
    assert.throws(() => e.check({ resource: { type: 'folder', id: 'f0' }, permission: 'view', subject: ref('user:u') }), { code: 'AUTHZ_DEPTH_EXCEEDED' });
    table(engine(docs, chain, { maxDepth: 200 }), [['folder:f0', 'view', 'user:u', 'denied']]);
  });

  it('refuses unknown types and permissions', () => {
    const e = engine(docs, '');
    assert.throws(() => e.check({ resource: { type: 'nope', id: 'x' }, permission: 'view', subject: ref('user:u') }), { code: 'AUTHZ_UNKNOWN_TYPE' });
    assert.throws(() => e.check({ resource: { type: 'document', id: 'x' }, permission: 'nope', subject: ref('user:u') }), { code: 'AUTHZ_UNKNOWN_PERMISSION' });
  });

  it('finds subjects, including through nested groups and a wildcard', () => {
    const e = engine(docs, `
      group:eng#member@user:ann
      group:eng#member@group:leads#member
      group:leads#member@user:lee
      folder:root#viewer@group:eng#member
      document:d#folder@folder:root
      document:d#banned@user:ann
      folder:pub#viewer@user:*
      folder:pub#viewer@user:pat
    `);
    assert.deepEqual(e.lookupSubjects({ resource: { type: 'document', id: 'd' }, permission: 'view', subjectType: 'user' }).allowed, ['lee']);
    assert.deepEqual(e.lookupSubjects({ resource: { type: 'folder', id: 'root' }, permission: 'view', subjectType: 'group', subjectRelation: 'member' }).allowed, ['eng', 'leads']);
    assert.ok(e.lookupSubjects({ resource: { type: 'folder', id: 'pub' }, permission: 'view', subjectType: 'user' }).allowed.includes('*'));
  });

  /** Every check of `permission` on every `resourceType` object for every `subjectType` object agrees with both lookups. */
  function agree(e: ReturnType<typeof engine>, resourceType: string, permission: string, subjectType: string, ids: string[]) {
    for (const subject of ids) {
      const resources = e.lookupResources({ resourceType, permission, subject: { type: subjectType, id: subject } }).allowed;
      for (const resource of ids) {
        const allowed = e.check({ resource: { type: resourceType, id: resource }, permission, subject: { type: subjectType, id: subject } }).permissionship === 'allowed';
        assert.equal(resources.includes(resource), allowed, `lookup-resources ${resourceType}#${permission} for ${subject}: ${resource}`);
        const subjects = e.lookupSubjects({ resource: { type: resourceType, id: resource }, permission, subjectType }).allowed;
        assert.equal(subjects.includes(subject), allowed, `lookup-subjects ${resourceType}:${resource}#${permission}: ${subject}`);
      }
    }
  }

  const selfSchema = `
    use self
    definition user {
      relation friend: user
      relation blocked: user
      relation group: group
      permission view_profile = self + friend
      permission message = (self + friend) - blocked
      permission others = friend - self
      permission in_group = self & group->member
    }
    definition group {
      relation member: user
    }
  `;

  it('grants `self` to the object itself only, as a direct subject of its own type', () => {
    const e = engine(selfSchema, `
      user:ann#friend@user:bob
      user:ann#friend@user:ann
      user:bob#blocked@user:bob
      user:cat#group@group:g
      group:g#member@user:cat
    `);
    table(e, [
      ['user:ann', 'view_profile', 'user:ann', 'allowed'],
      ['user:ann', 'view_profile', 'user:bob', 'allowed'],
      ['user:bob', 'view_profile', 'user:ann', 'denied'],
      ['user:ann', 'view_profile', 'user:ann#blocked', 'denied'],
      ['user:bob', 'message', 'user:bob', 'denied'],
      ['user:ann', 'others', 'user:ann', 'denied'],
      ['user:ann', 'others', 'user:bob', 'allowed'],
      ['user:cat', 'in_group', 'user:cat', 'allowed'],
      ['user:ann', 'in_group', 'user:ann', 'denied'],
    ]);
    assert.deepEqual(e.lookupResources({ resourceType: 'user', permission: 'view_profile', subject: ref('user:bob') }).allowed, ['ann', 'bob']);
    assert.deepEqual(e.lookupSubjects({ resource: { type: 'user', id: 'ann' }, permission: 'view_profile', subjectType: 'user' }).allowed, ['ann', 'bob']);
    for (const permission of ['view_profile', 'message', 'others', 'in_group']) agree(e, 'user', permission, 'user', ['ann', 'bob', 'cat', 'dan']);
    const explained = e.check({ resource: { type: 'user', id: 'dan' }, permission: 'view_profile', subject: ref('user:dan'), explain: true }).explanation;
    assert.equal(explained?.summary, 'user:dan#view_profile ← self: (the subject itself)');
    assert.deepEqual(e.expand({ resource: { type: 'user', id: 'dan' }, permission: 'view_profile' }), {
      kind: 'union',
      expanded: { type: 'user', id: 'dan', relation: 'view_profile' },
      children: [
        { kind: 'leaf', expanded: { type: 'user', id: 'dan', relation: 'view_profile' }, subjects: [{ type: 'user', id: 'dan' }] },
        { kind: 'leaf', expanded: { type: 'user', id: 'dan', relation: 'friend' }, subjects: [] },
      ],
    });
  });

  const chains = `
    definition user {}
    definition org {
      relation admin: user
    }
    definition team {
      relation org: org
      relation lead: user
    }
    definition folder {
      relation team: team
      relation org: org
    }
    definition document {
      relation folder: folder
      permission org_admin = folder->team->org->admin
      permission strict_admin = folder.any(team).all(org)->admin
      permission lead = folder->team->lead
      permission direct = folder->org->admin
    }
  `;

  it('walks nested arrows hop by hop, each hop quantified by its own mode', () => {
    const e = engine(chains, `
      document:d1#folder@folder:f1
      document:d2#folder@folder:f2
      folder:f1#team@team:t1
      folder:f2#team@team:t1
      folder:f2#team@team:t2
      folder:f2#org@org:o2
      team:t1#org@org:o1
      team:t2#org@org:o2
      team:t1#lead@user:lee
      org:o1#admin@user:ann
      org:o2#admin@user:bob
    `);
    table(e, [
      ['document:d1', 'org_admin', 'user:ann', 'allowed'],
      ['document:d1', 'org_admin', 'user:bob', 'denied'],
      ['document:d2', 'org_admin', 'user:ann', 'allowed'],
      ['document:d2', 'org_admin', 'user:bob', 'allowed'],
      ['document:d1', 'strict_admin', 'user:ann', 'allowed'],
      // d2's folder has two teams in different orgs: .all() over the teams needs both.
      ['document:d2', 'strict_admin', 'user:ann', 'denied'],
      ['document:d2', 'strict_admin', 'user:bob', 'denied'],
      ['document:d1', 'lead', 'user:lee', 'allowed'],
      ['document:d2', 'direct', 'user:bob', 'allowed'],
      ['document:d1', 'direct', 'user:ann', 'denied'],
    ]);
    for (const permission of ['org_admin', 'strict_admin', 'lead', 'direct']) agree(e, 'document', permission, 'user', ['d1', 'd2', 'ann', 'bob', 'lee']);
    const explained = e.check({ resource: { type: 'document', id: 'd1' }, permission: 'org_admin', subject: ref('user:ann'), explain: true }).explanation;
    assert.equal(
      explained?.summary,
      'document:d1#org_admin ← folder->team->org->admin ← folder:f1#team->org->admin ← team->org->admin ← team:t1#org->admin ← org->admin ← org:o1#admin: ' +
        'document:d1#folder@folder:f1, folder:f1#team@team:t1, team:t1#org@org:o1, org:o1#admin@user:ann',
    );
  });

  it('refuses nested arrows whose hops are not relations of the types they reach', () => {
    const at = (expr: string) => chains.replace('permission direct = folder->org->admin', `permission direct = ${expr}`);
    assert.throws(() => compileSchema(at('folder->nope->admin')), (e: Error & { code?: string; details?: Record<string, unknown> }) => {
      assert.equal(e.code, 'AUTHZ_SCHEMA_UNKNOWN_RELATION');
      assert.deepEqual([e.details?.line, e.details?.column], [19, 35]);
      assert.match(e.message, /walks "nope", which is not a relation of "folder"/);
      return true;
    });
    assert.throws(() => compileSchema(at('folder->team->nope')), { code: 'AUTHZ_SCHEMA_UNKNOWN_RELATION', message: /targets "nope", which exists on none of the types of "team" \(team\)/ });
    assert.throws(() => compileSchema(at('folder->team->lead->admin')), { code: 'AUTHZ_SCHEMA_UNKNOWN_RELATION', message: /targets "admin", which exists on none of the types of "lead" \(user\)/ });
    assert.throws(
      () => compileSchema(chains.replace('relation lead: user', 'relation lead: user\n      permission boss = org').replace('permission direct = folder->org->admin', 'permission direct = folder->team->boss->admin')),
      { code: 'AUTHZ_SCHEMA_ARROW_OVER_PERMISSION', message: /"boss" is a permission; the left side of an arrow must be a relation of "team"/ },
    );
  });
});
