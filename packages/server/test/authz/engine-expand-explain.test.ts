import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { compileCaveats } from '../../src/authz/caveats/index.js';
import { createEngine, type ExpandNode, type ExpandSubject } from '../../src/authz/engine/engine.js';
import { createRelationshipIndex } from '../../src/authz/engine/relationship-index.js';
import { parseRelationships } from '../../src/authz/relationships/index.js';
import { compileSchema } from '../../src/authz/schema/index.js';
import type { SubjectRef } from '../../src/authz/types.js';
import { engineFor } from '../../src/authz/validate-files.js';
import { loadValidationFile } from '../../src/authz/validation-file.js';

function engine(schemaText: string, relationships: string, options: { maxDepth?: number; clock?: () => number } = {}) {
  const schema = compileSchema(schemaText);
  return createEngine({ schema, caveats: compileCaveats(schema.caveats.values()), reader: createRelationshipIndex(parseRelationships(relationships)), ...options });
}

const ref = (text: string) => {
  const [object, relation] = text.split('#');
  const [type, id] = object!.split(':');
  return { type: type!, id: id!, ...(relation ? { relation } : {}) } as SubjectRef;
};

const subjectText = (s: ExpandSubject) => `${s.type}:${s.id}${s.relation ? `#${s.relation}` : ''}${s.caveat ? `[${s.caveat}${s.missing ? `:${s.missing.join(',')}` : ''}]` : ''}`;

/** A tree in one line: `kind(object#relation)[children]`, leaves as `object#relation{subjects}`. */
function render(node: ExpandNode): string {
  const at = `${node.expanded.type}:${node.expanded.id}#${node.expanded.relation}`;
  const caveat = node.caveat ? `[${node.caveat}]` : '';
  if (node.kind === 'leaf') {
    if (node.cycle) return `${caveat}${at}{cycle}`;
    const usersets = node.usersets && node.usersets.length > 0 ? ` => ${node.usersets.map(render).join(', ')}` : '';
    return `${caveat}${at}{${node.subjects.map(subjectText).join(', ')}}${usersets}`;
  }
  return `${caveat}${node.kind}(${at})[${node.children.map(render).join(', ')}]`;
}

const docs = `
  definition user {}
  caveat on_vpn(vpn bool) { vpn }
  definition group {
    relation member: user | group#member
  }
  definition folder {
    relation parent: folder | folder with on_vpn
    relation viewer: user | group#member | user:*
    permission view = viewer + parent->view
  }
  definition document {
    relation folder: folder
    relation owner: user
    relation editor: user | group#member
    relation reader: user with on_vpn
    relation banned: user | user:*
    permission edit = owner + editor
    permission view = (edit + folder->view) - banned
    permission strict = edit & folder->view
    permission everyfolder = folder.all(view)
    permission read = reader
    permission nothing = nil
  }
`;

const data = `
  group:eng#member@user:ann
  group:eng#member@group:leads#member
  group:leads#member@user:lee
  folder:root#viewer@group:eng#member
  folder:sub#parent@folder:root
  folder:pub#viewer@user:*
  document:d1#folder@folder:sub
  document:d1#owner@user:olga
  document:d1#editor@group:eng#member
  document:d1#banned@user:ann
  document:d1#reader@user:rita[on_vpn]
  document:d2#folder@folder:root
  document:d2#folder@folder:pub
  document:d2#editor@user:ed
`;

describe('permission engine: expand', () => {
  const e = engine(docs, data);
  const expand = (resource: string, permission: string, options: { depth?: number; context?: Record<string, unknown> } = {}) => render(e.expand({ resource: ref(resource), permission, ...options }));

  it('draws one userset rewrite per node: unions, intersections, exclusions, arrows, nil and leaves', () => {
    const rows: [string, string, string][] = [
      // relation: a leaf of direct subjects; a userset subject is listed, not expanded
      ['document:d1', 'editor', 'document:d1#editor{group:eng#member}'],
      // union of two relations
      ['document:d1', 'edit', 'union(document:d1#edit)[document:d1#owner{user:olga}, document:d1#editor{group:eng#member}]'],
      // intersection with an arrow: one subtree per tupleset target
      [
        'document:d2',
        'strict',
        'intersection(document:d2#strict)[union(document:d2#edit)[document:d2#owner{}, document:d2#editor{user:ed}], union(document:d2#strict)[' +
          'union(folder:root#view)[folder:root#viewer{group:eng#member}, union(folder:root#view)[]], ' +
          'union(folder:pub#view)[folder:pub#viewer{user:*}, union(folder:pub#view)[]]]]',
      ],
      // exclusion: base first, then what is subtracted
      [
        'document:d1',
        'view',
        'exclusion(document:d1#view)[union(document:d1#view)[union(document:d1#edit)[document:d1#owner{user:olga}, document:d1#editor{group:eng#member}], ' +
          'union(document:d1#view)[union(folder:sub#view)[folder:sub#viewer{}, union(folder:sub#view)[union(folder:root#view)[folder:root#viewer{group:eng#member}, union(folder:root#view)[]]]]]], ' +
          'document:d1#banned{user:ann}]',
      ],
      // .all() arrows are intersections of their targets
      ['document:d2', 'everyfolder', 'union(document:d2#everyfolder)[intersection(document:d2#everyfolder)[union(folder:root#view)[folder:root#viewer{group:eng#member}, union(folder:root#view)[]], union(folder:pub#view)[folder:pub#viewer{user:*}, union(folder:pub#view)[]]]]'],
      // nil is an empty leaf
      ['document:d1', 'nothing', 'document:d1#nothing{}'],
      // wildcard subject
      ['folder:pub', 'viewer', 'folder:pub#viewer{user:*}'],
      // caveated subject carries its caveat name
      ['document:d1', 'read', 'union(document:d1#read)[document:d1#reader{user:rita[on_vpn]}]'],
    ];
    for (const [resource, permission, expected] of rows) assert.equal(expand(resource, permission), expected, `${resource}#${permission}`);
  });

  it('leaves out expired relationships', () => {
    const schema = `
      use expiration
      definition user {}
      definition doc {
        relation viewer: user with expiration
      }`;
    const rels = `
      doc:a#viewer@user:old[expiration:2026-01-01T00:00:00Z]
      doc:a#viewer@user:new[expiration:2027-01-01T00:00:00Z]`;
    const at = engine(schema, rels, { clock: () => Date.parse('2026-06-01T00:00:00Z') });
    const tree = at.expand({ resource: ref('doc:a'), permission: 'viewer' });
    assert.equal(render(tree), 'doc:a#viewer{user:new}');
    assert.deepEqual(tree.kind === 'leaf' && tree.subjects[0], { type: 'user', id: 'new', expiresAt: Date.parse('2027-01-01T00:00:00Z') });
  });

  it('resolves caveats against a context when one is given', () => {
    assert.equal(expand('document:d1', 'reader', { context: {} }), 'document:d1#reader{user:rita[on_vpn:vpn]}');
    assert.equal(expand('document:d1', 'reader', { context: { vpn: true } }), 'document:d1#reader{user:rita}');
    assert.equal(expand('document:d1', 'reader', { context: { vpn: false } }), 'document:d1#reader{}');
  });

  it('marks subtrees reached through a caveated tupleset relationship', () => {
    const c = engine(docs, `folder:a#parent@folder:b[on_vpn]\nfolder:b#viewer@user:bo`);
    assert.equal(render(c.expand({ resource: ref('folder:a'), permission: 'view' })), 'union(folder:a#view)[folder:a#viewer{}, union(folder:a#view)[[on_vpn]union(folder:b#view)[folder:b#viewer{user:bo}, union(folder:b#view)[]]]]');
  });

  it('expands userset subjects only as deep as asked', () => {
    assert.equal(expand('folder:root', 'viewer'), 'folder:root#viewer{group:eng#member}');
    assert.equal(expand('folder:root', 'viewer', { depth: 2 }), 'folder:root#viewer{group:eng#member} => group:eng#member{user:ann, group:leads#member}');
    assert.equal(
      expand('folder:root', 'viewer', { depth: 3 }),
      'folder:root#viewer{group:eng#member} => group:eng#member{user:ann, group:leads#member} => group:leads#member{user:lee}',
    );
    assert.throws(() => e.expand({ resource: ref('folder:root'), permission: 'viewer', depth: 0 }), TypeError);
  });

  it('stops at cycles in the data and fails past the depth limit', () => {
    const c = engine(docs, `
      group:a#member@group:b#member
      group:b#member@group:a#member
      folder:x#parent@folder:y
      folder:y#parent@folder:x
    `);
    assert.equal(render(c.expand({ resource: ref('group:a'), permission: 'member', depth: 10 })), 'group:a#member{group:b#member} => group:b#member{group:a#member} => group:a#member{cycle}');
    assert.equal(
      render(c.expand({ resource: ref('folder:x'), permission: 'view' })),
      'union(folder:x#view)[folder:x#viewer{}, union(folder:x#view)[union(folder:y#view)[folder:y#viewer{}, union(folder:y#view)[folder:x#view{cycle}]]]]',
    );
    const chain = Array.from({ length: 60 }, (_, i) => `folder:f${i}#parent@folder:f${i + 1}`).join('\n');
    assert.throws(() => engine(docs, chain, { maxDepth: 50 }).expand({ resource: ref('folder:f0'), permission: 'view' }), { code: 'AUTHZ_DEPTH_EXCEEDED' });
  });

  it('refuses unknown types and permissions', () => {
    assert.throws(() => e.expand({ resource: ref('nope:x'), permission: 'view' }), { code: 'AUTHZ_UNKNOWN_TYPE' });
    assert.throws(() => e.expand({ resource: ref('document:x'), permission: 'nope' }), { code: 'AUTHZ_UNKNOWN_PERMISSION' });
  });
});

describe('permission engine: explain', () => {
  const e = engine(docs, data);
  const explain = (resource: string, permission: string, subject: string, context?: Record<string, unknown>) => {
    const result = e.check({ resource: ref(resource), permission, subject: ref(subject), context, explain: true });
    assert.ok(result.explanation);
    assert.equal(result.explanation.permissionship, result.permissionship);
    return result.explanation;
  };

  it('adds nothing to a check that does not ask', () => {
    assert.deepEqual(e.check({ resource: ref('document:d1'), permission: 'view', subject: ref('user:olga') }), { permissionship: 'allowed' });
  });

  it('gives the path that granted, as branches taken and relationships walked', () => {
    const rows: [string, string, string, string][] = [
      ['document:d1', 'view', 'user:olga', 'document:d1#view ← edit ← owner: document:d1#owner@user:olga'],
      // through nested groups
      [
        'document:d1',
        'edit',
        'user:lee',
        'document:d1#edit ← editor ← group:eng#member ← group:leads#member: document:d1#editor@group:eng#member, group:eng#member@group:leads#member, group:leads#member@user:lee',
      ],
      // through arrows (folder, then its parent), then a group
      [
        'folder:sub',
        'view',
        'user:ann',
        'folder:sub#view ← parent->view ← folder:root#view ← viewer ← group:eng#member: folder:sub#parent@folder:root, folder:root#viewer@group:eng#member, group:eng#member@user:ann',
      ],
      // through a public wildcard
      ['document:d2', 'view', 'user:anyone', 'document:d2#view ← folder->view ← folder:pub#view ← viewer: document:d2#folder@folder:pub, folder:pub#viewer@user:*'],
      // an intersection needs a path per branch
      [
        'document:d2',
        'strict',
        'user:ed',
        'document:d2#strict ← edit ← editor: document:d2#editor@user:ed & document:d2#strict ← folder->view ← folder:pub#view ← viewer: document:d2#folder@folder:pub, folder:pub#viewer@user:*',
      ],
      // a set contains itself
      ['group:eng', 'member', 'group:eng#member', 'group:eng#member: (the subject itself)'],
    ];
    for (const [resource, permission, subject, summary] of rows) {
      const explanation = explain(resource, permission, subject);
      assert.equal(explanation.permissionship, 'allowed', `${resource}#${permission}@${subject}`);
      assert.equal(explanation.summary, summary);
    }
    const lee = explain('document:d1', 'edit', 'user:lee');
    assert.deepEqual(lee.permissionship === 'allowed' && lee.paths, [
      {
        steps: ['document:d1#edit', 'editor', 'group:eng#member', 'group:leads#member'],
        relationships: ['document:d1#editor@group:eng#member', 'group:eng#member@group:leads#member', 'group:leads#member@user:lee'],
      },
    ]);
  });

  it('joins the paths of every branch of an intersection', () => {
    const both = engine(docs, `document:d#owner@user:o\ndocument:d#folder@folder:f\nfolder:f#viewer@user:o`);
    const explanation = both.check({ resource: ref('document:d'), permission: 'strict', subject: ref('user:o'), explain: true }).explanation;
    assert.equal(
      explanation?.summary,
      'document:d#strict ← edit ← owner: document:d#owner@user:o & document:d#strict ← folder->view ← folder:f#view ← viewer: document:d#folder@folder:f, folder:f#viewer@user:o',
    );
  });

  it('says why a check was denied', () => {
    const rows: [string, string, string, Record<string, unknown> | undefined, { reason: string; summary: string }][] = [
      ['document:d1', 'view', 'user:ann', undefined, { reason: 'excluded', summary: 'user:ann is excluded by banned: document:d1#banned@user:ann' }],
      ['document:d1', 'view', 'user:zoe', undefined, { reason: 'unreachable', summary: 'no relationship reaches user:zoe from document:d1#view' }],
      ['document:d1', 'strict', 'user:olga', undefined, { reason: 'intersection', summary: 'document:d1#strict needs folder->view, which does not reach user:olga' }],
      ['document:d1', 'read', 'user:rita', { vpn: false }, { reason: 'caveat', summary: 'document:d1#read reaches user:rita only through caveats that evaluated to false: on_vpn' }],
    ];
    for (const [resource, permission, subject, context, expected] of rows) {
      const explanation = explain(resource, permission, subject, context);
      assert.equal(explanation.permissionship, 'denied', `${resource}#${permission}@${subject}`);
      assert.deepEqual({ reason: explanation.reason, summary: explanation.summary }, expected);
    }
    const ann = explain('document:d1', 'view', 'user:ann');
    assert.deepEqual(ann.permissionship === 'denied' && ann.excludedBy, [{ steps: ['banned'], relationships: ['document:d1#banned@user:ann'] }]);
  });

  it('names expired relationships when only they would have granted', () => {
    const schema = `
      use expiration
      definition user {}
      definition doc {
        relation viewer: user with expiration
        permission view = viewer
      }`;
    const late = engine(schema, `doc:a#viewer@user:u[expiration:2026-01-01T00:00:00Z]`, { clock: () => Date.parse('2026-01-01T00:00:00Z') });
    const explanation = late.check({ resource: ref('doc:a'), permission: 'view', subject: ref('user:u'), explain: true }).explanation;
    assert.deepEqual(explanation, {
      permissionship: 'denied',
      reason: 'expired',
      expired: ['doc:a#viewer@user:u[expiration:2026-01-01T00:00:00Z]'],
      summary: 'doc:a#view reaches user:u only through expired relationships: doc:a#viewer@user:u[expiration:2026-01-01T00:00:00Z]',
    });
  });

  it('lists the missing caveat parameters and the caveats involved when conditional', () => {
    const c = engine(
      `
      definition user {}
      caveat limit(count int, max int) { count < max }
      caveat on_vpn(vpn bool) { vpn }
      definition group {
        relation member: user with on_vpn
      }
      definition doc {
        relation viewer: user with limit | group#member
        permission view = viewer
      }`,
      `
      doc:a#viewer@user:u[limit:{"max":5}]
      doc:a#viewer@group:g#member
      group:g#member@user:u[on_vpn]
    `,
    );
    const result = c.check({ resource: ref('doc:a'), permission: 'view', subject: ref('user:u'), explain: true });
    assert.deepEqual(result, {
      permissionship: 'conditional',
      missing: ['count', 'vpn'],
      explanation: { permissionship: 'conditional', missing: ['count', 'vpn'], caveats: ['limit', 'on_vpn'], summary: 'doc:a#view for user:u depends on caveat limit, on_vpn: missing count, vpn' },
    });
    const granted = c.check({ resource: ref('doc:a'), permission: 'view', subject: ref('user:u'), context: { vpn: true }, explain: true });
    assert.equal(granted.explanation?.summary, 'doc:a#view ← viewer ← group:g#member: doc:a#viewer@group:g#member, group:g#member@user:u[on_vpn]');
  });
});

// SpiceDB's own validation files (../shared/conformance), used as they are.
const corpus = fileURLToPath(new URL('../../../../../shared/conformance/spicedb/validation/', import.meta.url));

describe('explain on the SpiceDB validation corpus', () => {
  it("reaches check's verdict for every assertion of the 73 files", () => {
    const files = readdirSync(corpus).filter((name) => name.endsWith('.yaml'));
    assert.equal(files.length, 73);
    let compared = 0;
    const mismatches: string[] = [];
    for (const name of files) {
      const file = loadValidationFile(join(corpus, name));
      const e = engineFor(file);
      for (const assertion of [...file.assertions.assertTrue, ...file.assertions.assertFalse, ...file.assertions.assertCaveated]) {
        const request = { resource: assertion.resource, permission: assertion.permission, subject: assertion.subject, context: assertion.context };
        const plain = e.check(request);
        const { explanation, ...verdict } = e.check({ ...request, explain: true });
        compared++;
        if (!explanation) {
          mismatches.push(`${name}: ${assertion.text}: no explanation`);
          continue;
        }
        assert.deepEqual(verdict, plain, `${name}: ${assertion.text}`);
        const missing = explanation.permissionship === 'conditional' ? explanation.missing : undefined;
        if (explanation.permissionship !== plain.permissionship || JSON.stringify(missing) !== JSON.stringify(plain.missing)) {
          mismatches.push(`${name}: ${assertion.text}: check ${plain.permissionship}, explain ${explanation.permissionship}`);
        }
      }
    }
    assert.deepEqual(mismatches, []);
    assert.equal(compared, 411);
  });
});
