import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { formatRelationship, parseCheckAssertion, parseRelationship, parseRelationships, relationshipErrors } from '../../src/authz/relationships/index.js';
import type { Relationship } from '../../src/authz/types.js';
import { GatehouseError } from '../../src/errors.js';

function throwsCode(fn: () => unknown, code: keyof typeof relationshipErrors.catalogue, details: Record<string, unknown> = {}) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GatehouseError, String(error));
    assert.equal(error.code, code, error.message);
    for (const [k, v] of Object.entries(details)) assert.deepEqual(error.details?.[k], v, `${k} in ${error.message}`);
    return true;
  });
}

const LONG_ID = 'very'.repeat(250) + 'long';
const BASE64_ID = '--=base64YWZzZGZh-ZHNmZHPwn5iK8J+YivC/fmIrwn5iK==';

describe('relationship syntax', () => {
  // text → parsed relationship.
  const table: [string, Relationship][] = [
    ['document:doc1#viewer@user:tom', { resourceType: 'document', resourceId: 'doc1', relation: 'viewer', subjectType: 'user', subjectId: 'tom' }],
    ['document:doc1#viewer@user:*', { resourceType: 'document', resourceId: 'doc1', relation: 'viewer', subjectType: 'user', subjectId: '*' }],
    ['group:eng#member@group:eng#member', { resourceType: 'group', resourceId: 'eng', relation: 'member', subjectType: 'group', subjectId: 'eng', subjectRelation: 'member' }],
    [
      'example/document:x#reader@example/user:fred#...',
      { resourceType: 'example/document', resourceId: 'x', relation: 'reader', subjectType: 'example/user', subjectId: 'fred' },
    ],
    [
      'org/identity_team/group:ultragroup#member@org/identity_team/user:someguy#...',
      { resourceType: 'org/identity_team/group', resourceId: 'ultragroup', relation: 'member', subjectType: 'org/identity_team/user', subjectId: 'someguy' },
    ],
    [
      'document:firstdoc#viewer@user:tom[is_valid_ip:{"cidr":"10.0.0.0/8"}]',
      { resourceType: 'document', resourceId: 'firstdoc', relation: 'viewer', subjectType: 'user', subjectId: 'tom', caveat: { name: 'is_valid_ip', context: { cidr: '10.0.0.0/8' } } },
    ],
    [
      'document:firstdoc#reader@user:caveatedreader[some_caveat]',
      { resourceType: 'document', resourceId: 'firstdoc', relation: 'reader', subjectType: 'user', subjectId: 'caveatedreader', caveat: { name: 'some_caveat' } },
    ],
    [
      'document:firstdoc#viewer@user:fred[some_caveat:{"somemap": {"foo": 42, "bar": [1, "]}"]}}]',
      { resourceType: 'document', resourceId: 'firstdoc', relation: 'viewer', subjectType: 'user', subjectId: 'fred', caveat: { name: 'some_caveat', context: { somemap: { foo: 42, bar: [1, ']}'] } } } },
    ],
    [
      'repo:buynlarge/orgrepo#readers@anonymoususer:*[is_not_geo_banned:{"cidr":"1.0.0.0/8"}]',
      { resourceType: 'repo', resourceId: 'buynlarge/orgrepo', relation: 'readers', subjectType: 'anonymoususer', subjectId: '*', caveat: { name: 'is_not_geo_banned', context: { cidr: '1.0.0.0/8' } } },
    ],
    [
      'document:firstdoc#viewer@user:tom[expiration:2300-01-01T00:00:00Z]',
      { resourceType: 'document', resourceId: 'firstdoc', relation: 'viewer', subjectType: 'user', subjectId: 'tom', expiresAt: Date.UTC(2300, 0, 1) },
    ],
    [
      'document:firstdoc#viewer@user:sarah[somecaveat:{"somecondition":42}][expiration:2300-12-01T00:00:00Z]',
      {
        resourceType: 'document',
        resourceId: 'firstdoc',
        relation: 'viewer',
        subjectType: 'user',
        subjectId: 'sarah',
        caveat: { name: 'somecaveat', context: { somecondition: 42 } },
        expiresAt: Date.UTC(2300, 11, 1),
      },
    ],
    [
      'document:firstdoc#viewer@team:first#member[some_caveat][expiration:2023-12-01T00:00:00.5+01:00]',
      {
        resourceType: 'document',
        resourceId: 'firstdoc',
        relation: 'viewer',
        subjectType: 'team',
        subjectId: 'first',
        subjectRelation: 'member',
        caveat: { name: 'some_caveat' },
        expiresAt: Date.UTC(2023, 10, 30, 23, 0, 0, 500),
      },
    ],
    [
      'document:doc#viewer@user:tom[foo/bar/only_on_tuesday]',
      { resourceType: 'document', resourceId: 'doc', relation: 'viewer', subjectType: 'user', subjectId: 'tom', caveat: { name: 'foo/bar/only_on_tuesday' } },
    ],
    // A caveat may be named `expiration`; with a JSON context it is one.
    [
      'document:doc#viewer@user:tom[expiration:{"a":1}]',
      { resourceType: 'document', resourceId: 'doc', relation: 'viewer', subjectType: 'user', subjectId: 'tom', caveat: { name: 'expiration', context: { a: 1 } } },
    ],
    [
      `document:${BASE64_ID}#writer@user:${BASE64_ID}#...`,
      { resourceType: 'document', resourceId: BASE64_ID, relation: 'writer', subjectType: 'user', subjectId: BASE64_ID },
    ],
    [`document:${LONG_ID}#reader@user:a|b-c=d+e/f_g`, { resourceType: 'document', resourceId: LONG_ID, relation: 'reader', subjectType: 'user', subjectId: 'a|b-c=d+e/f_g' }],
  ];
  for (const [text, expected] of table) {
    it(`parses ${text.length > 100 ? `${text.slice(0, 100)}…` : text}`, () => {
      assert.deepEqual(parseRelationship(text), expected);
    });
  }

  it('formats relationships back into text that parses to the same relationship', () => {
    for (const [, relationship] of table) assert.deepEqual(parseRelationship(formatRelationship(relationship)), relationship);
    assert.equal(formatRelationship(table[2]![1]), 'group:eng#member@group:eng#member');
    assert.equal(formatRelationship(table[3]![1]), 'example/document:x#reader@example/user:fred');
    assert.equal(formatRelationship(table[10]![1]), 'document:firstdoc#viewer@user:sarah[somecaveat:{"somecondition":42}][expiration:2300-12-01T00:00:00Z]');
    assert.equal(formatRelationship(table[11]![1]), 'document:firstdoc#viewer@team:first#member[some_caveat][expiration:2023-11-30T23:00:00.5Z]');
  });

  it('drops an empty caveat context: `[c:{}]` is `[c]`', () => {
    assert.deepEqual(parseRelationship('document:d#viewer@user:u[some_caveat:{}]').caveat, { name: 'some_caveat' });
  });

  // text → the 1-based column the error points at.
  const rejected: [string, string, number][] = [
    ['no object type separator', 'document', 9],
    ['an upper-case type', 'Document:doc#viewer@user:tom', 1],
    ['a two-letter type', 'do:doc#viewer@user:tom', 1],
    ['a type ending in _', 'document_:doc#viewer@user:tom', 1],
    ['a missing relation', 'document:doc@user:tom', 13],
    ['an empty object id', 'document:#viewer@user:tom', 10],
    ['a space in an object id', 'document:my doc#viewer@user:tom', 12],
    ['a dot in an object id', 'document:a.b#viewer@user:tom', 11],
    ['a wildcard resource', 'document:*#viewer@user:tom', 10],
    ['an object id over 1024 characters', `document:${'a'.repeat(1025)}#viewer@user:tom`, 10],
    ['a missing subject', 'document:doc#viewer', 20],
    ['an invalid relation', 'document:doc#View@user:tom', 14],
    ['a subject without id', 'document:doc#viewer@user', 25],
    ['a wildcard subject with a relation', 'document:doc#viewer@user:*#member', 28],
    ['an invalid subject relation', 'document:doc#viewer@group:eng#..', 31],
    ['trailing text', 'document:doc#viewer@user:tom extra', 29],
    ['an unclosed caveat', 'document:doc#viewer@user:tom[some_caveat', 41],
    ['an invalid caveat name', 'document:doc#viewer@user:tom[Some]', 30],
    ['invalid caveat context JSON', 'document:doc#viewer@user:tom[c_c:{"a":}]', 34],
    ['a caveat context that is not an object', 'document:doc#viewer@user:tom[c_c:[1]]', 34],
    ['an unterminated caveat context', 'document:doc#viewer@user:tom[c_c:{"a":1]', 34],
    ['an invalid expiration', 'document:doc#viewer@user:tom[expiration:tomorrow]', 41],
    ['an expiration on an impossible date', 'document:doc#viewer@user:tom[expiration:2023-02-30T00:00:00Z]', 41],
    ['an expiration before the caveat', 'document:doc#viewer@user:tom[expiration:2300-01-01T00:00:00Z][some_caveat]', 62],
    ['two caveats', 'document:doc#viewer@user:tom[aaa][bbb]', 34],
    ['two expirations', 'document:doc#viewer@user:tom[expiration:2300-01-01T00:00:00Z][expiration:2300-01-01T00:00:00Z]', 62],
  ];
  for (const [label, text, column] of rejected) {
    it(`rejects ${label}, naming the column`, () => {
      throwsCode(() => parseRelationship(text), 'AUTHZ_RELATIONSHIP_SYNTAX', { text, column });
    });
  }
});

describe('relationship blocks', () => {
  it('skips blank lines and // comments and keeps the order', () => {
    const block = '// team definition\nteam:first#member@user:tom\n\n   \n  // nested comment\n  document:doc#viewer@team:first#member\n';
    assert.deepEqual(parseRelationships(block).map(formatRelationship), ['team:first#member@user:tom', 'document:doc#viewer@team:first#member']);
    assert.deepEqual(parseRelationships(''), []);
  });

  it('names the line of a bad relationship in the block', () => {
    throwsCode(() => parseRelationships('team:first#member@user:tom\n\n  team:first#Member@user:tom'), 'AUTHZ_RELATIONSHIP_SYNTAX', { line: 3, column: 14 });
  });

  it('refuses a relationship given twice, even with another caveat or expiration (as SpiceDB does)', () => {
    throwsCode(() => parseRelationships('team:a#member@user:tom\nteam:a#member@user:tom[some_caveat]'), 'AUTHZ_RELATIONSHIP_DUPLICATE', { line: 2, first: 1 });
    throwsCode(() => parseRelationships('team:a#member@user:tom#...\nteam:a#member@user:tom'), 'AUTHZ_RELATIONSHIP_DUPLICATE');
    assert.equal(parseRelationships('team:a#member@user:tom\nteam:a#member@user:tom2\nteam:a#member@team:b#member\nteam:a#member@team:b').length, 4);
  });
});

describe('check assertions', () => {
  it('parses resource#permission@subject', () => {
    assert.deepEqual(parseCheckAssertion('document:firstdoc#view@user:tom'), { resource: { type: 'document', id: 'firstdoc' }, permission: 'view', subject: { type: 'user', id: 'tom' } });
    assert.deepEqual(parseCheckAssertion('document:firstdoc#view@team:eng#member').subject, { type: 'team', id: 'eng', relation: 'member' });
    assert.deepEqual(parseCheckAssertion('document:firstdoc#view@user:tom#...').subject, { type: 'user', id: 'tom' });
  });

  it('parses the caveat context after " with "', () => {
    assert.deepEqual(parseCheckAssertion('resource:firstresource#view_by_all@user:tom with {"memberparam": 42, "teamparam": 41}'), {
      resource: { type: 'resource', id: 'firstresource' },
      permission: 'view_by_all',
      subject: { type: 'user', id: 'tom' },
      context: { memberparam: 42, teamparam: 41 },
    });
    assert.deepEqual(parseCheckAssertion('document:budget#read@user:maria with {"actual" : "a with b"}').context, { actual: 'a with b' });
  });

  const rejected: [string, string, number][] = [
    ['invalid JSON context', 'document:doc#view@user:tom with {"a":', 33],
    ['a context that is not an object', 'document:doc#view@user:tom with [1]', 33],
    ['a null context', 'document:doc#view@user:tom with null', 33],
    ['a caveat on the assertion', 'document:doc#view@user:tom[some_caveat]', 27],
    ['an expiration on the assertion', 'document:doc#view@user:tom[expiration:2300-01-01T00:00:00Z]', 27],
    ['a bad resource', 'document#view@user:tom', 9],
  ];
  for (const [label, text, column] of rejected) {
    it(`rejects ${label}`, () => throwsCode(() => parseCheckAssertion(text), 'AUTHZ_RELATIONSHIP_SYNTAX', { column }));
  }
});

// SpiceDB's own validation files: every relationship line and every assertion parses.
const corpus = fileURLToPath(new URL('../../../../../shared/conformance/spicedb/validation/', import.meta.url));

describe('relationship syntax of the SpiceDB validation corpus', () => {
  it('parses every relationship and every assertion of the 73 files, and formats them back', () => {
    const names = readdirSync(corpus).filter((name) => name.endsWith('.yaml'));
    assert.equal(names.length, 73);
    let relationships = 0;
    let assertions = 0;
    for (const name of names) {
      const doc = parseYaml(readFileSync(join(corpus, name), 'utf8')) as { relationships?: string | null; assertions?: Record<string, string[] | null> | null };
      for (const r of parseRelationships(doc.relationships ?? '')) {
        assert.deepEqual(parseRelationship(formatRelationship(r)), r, name);
        relationships++;
      }
      for (const text of Object.values(doc.assertions ?? {}).flatMap((list) => list ?? [])) {
        parseCheckAssertion(text);
        assertions++;
      }
    }
    assert.ok(relationships > 400, `${relationships} relationships`);
    assert.equal(assertions, 411);
  });
});

describe('object and subject references of the API', () => {
  it('parses type:id and subjects with or without a relation', async () => {
    const { parseObjectRef, parseSubjectRef } = await import('../../src/authz/relationships/index.js');
    assert.deepEqual(parseObjectRef('example/document:a|b'), { type: 'example/document', id: 'a|b' });
    assert.deepEqual(parseSubjectRef('user:tom'), { type: 'user', id: 'tom' });
    assert.deepEqual(parseSubjectRef('user:tom#...'), { type: 'user', id: 'tom' });
    assert.deepEqual(parseSubjectRef('group:eng#member'), { type: 'group', id: 'eng', relation: 'member' });
    assert.deepEqual(parseSubjectRef('user:*'), { type: 'user', id: '*' });
  });

  it('refuses trailing text, wildcard resources and wildcard usersets', async () => {
    const { parseObjectRef, parseSubjectRef } = await import('../../src/authz/relationships/index.js');
    for (const bad of ['doc:a#view', 'doc:*', 'doc', 'Doc:a', 'doc:a b']) assert.throws(() => parseObjectRef(bad), { code: 'AUTHZ_RELATIONSHIP_SYNTAX' }, bad);
    for (const bad of ['user:*#member', 'user:tom[c]', 'user', 'user:tom#']) assert.throws(() => parseSubjectRef(bad), { code: 'AUTHZ_RELATIONSHIP_SYNTAX' }, bad);
  });
});
