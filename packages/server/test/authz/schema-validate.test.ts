import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { compileSchema, parseSchema, schemaErrors, validateSchema } from '../../src/authz/schema/index.js';
import type { Schema } from '../../src/authz/types.js';
import { GatehouseError } from '../../src/errors.js';

// SpiceDB's validation files (../shared/conformance): every schema there is one SpiceDB accepts.
const corpus = new URL('../../../../../shared/conformance/spicedb/validation/', import.meta.url);
const validationFiles = readdirSync(corpus)
  .filter((name) => name.endsWith('.yaml'))
  .sort();

function rejects(run: () => unknown, code: string, line: number, column: number): GatehouseError {
  let caught: unknown;
  assert.throws(run, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof GatehouseError, String(caught));
  assert.equal(caught.code, code, caught.message);
  assert.doesNotMatch(caught.message, /\{\w+\}/, 'every placeholder of the message is filled');
  assert.equal(caught.status, 400);
  assert.deepEqual({ line: caught.details?.line, column: caught.details?.column }, { line, column }, caught.message);
  assert.ok(caught.message.includes(`line ${line}, column ${column}`), caught.message);
  return caught;
}

describe('validateSchema on the SpiceDB validation corpus', () => {
  it('has the 73 files the corpus README lists', () => {
    assert.equal(validationFiles.length, 73);
  });

  for (const name of validationFiles) {
    it(`compiles the schema of ${name}`, () => {
      const file = parse(readFileSync(new URL(name, corpus), 'utf8')) as { schema: string };
      const schema = compileSchema(file.schema);
      assert.ok(schema.definitions.size > 0);
    });
  }
});

const USER = 'definition user {}\n';

describe('validateSchema refuses what SpiceDB refuses, pointing at the token', () => {
  // [what, schema, code, line, column]
  const table: [string, string, string, number, number][] = [
    ['an unknown subject type', 'definition doc {\n  relation viewer: user\n}', 'AUTHZ_SCHEMA_UNKNOWN_TYPE', 2, 20],
    ['an unknown wildcard type', `${USER}definition doc {\n  relation viewer: user | robot:*\n}`, 'AUTHZ_SCHEMA_UNKNOWN_TYPE', 3, 27],
    [
      'an unknown relation in type#rel',
      `${USER}definition group {\n  relation member: user\n}\ndefinition doc {\n  relation viewer: group#admin\n}`,
      'AUTHZ_SCHEMA_UNKNOWN_RELATION',
      6,
      26,
    ],
    ['an unknown relation of its own type in type#rel', `${USER}definition group {\n  relation member: user | group#members\n}`, 'AUTHZ_SCHEMA_UNKNOWN_RELATION', 3, 33],
    [
      'a permission referring to an unknown name',
      `${USER}definition doc {\n  relation viewer: user\n  permission view = viewer + editor\n}`,
      'AUTHZ_SCHEMA_UNKNOWN_RELATION',
      4,
      30,
    ],
    ['an unknown name deep in an expression', `${USER}definition doc {\n  relation viewer: user\n  permission view = (viewer - (viewer & nope))\n}`, 'AUTHZ_SCHEMA_UNKNOWN_RELATION', 4, 41],
    [
      'an arrow over a permission',
      `${USER}definition folder {\n  relation viewer: user\n}\ndefinition doc {\n  relation parent: folder\n  permission parents = parent\n  permission view = parents->viewer\n}`,
      'AUTHZ_SCHEMA_ARROW_OVER_PERMISSION',
      8,
      21,
    ],
    ['an arrow over an unknown relation', `${USER}definition doc {\n  relation viewer: user\n  permission view = parent.all(viewer)\n}`, 'AUTHZ_SCHEMA_UNKNOWN_RELATION', 4, 21],
    [
      'an arrow to a name on none of the walked types',
      `${USER}definition folder {\n  relation viewer: user\n}\ndefinition doc {\n  relation parent: folder | user\n  permission view = parent->reader\n}`,
      'AUTHZ_SCHEMA_UNKNOWN_RELATION',
      7,
      29,
    ],
    [
      'an arrow over a relation that allows a wildcard',
      `${USER}definition doc {\n  relation parent: doc | user:*\n  permission view = parent->view\n}`,
      'AUTHZ_SCHEMA_WILDCARD_MISUSE',
      4,
      21,
    ],
    [
      'an arrow over a relation that reaches a wildcard through a subject set',
      `${USER}definition doc {\n  relation owner: user:*\n  relation parent: doc#owner\n  permission view = parent->view\n}`,
      'AUTHZ_SCHEMA_WILDCARD_MISUSE',
      5,
      21,
    ],
    [
      'a subject set of another type that includes a wildcard',
      `${USER}definition group {\n  relation member: user | user:*\n}\ndefinition doc {\n  relation viewer: user | group#member\n}`,
      'AUTHZ_SCHEMA_WILDCARD_MISUSE',
      6,
      27,
    ],
    ['an unknown caveat', `${USER}definition doc {\n  relation viewer: user with on_tuesday\n}`, 'AUTHZ_SCHEMA_UNKNOWN_CAVEAT', 3, 30],
    ['`with expiration` without `use expiration`', `${USER}definition doc {\n  relation viewer: user | user with expiration\n}`, 'AUTHZ_SCHEMA_EXPIRATION_DISABLED', 3, 37],
    ['a definition and a caveat of the same name', `${USER}caveat user(a int) {\n  a == 1\n}`, 'AUTHZ_SCHEMA_DUPLICATE', 2, 1],
    ['a relation and a permission of the same name', `${USER}definition doc {\n  permission viewer = nil\n  relation viewer: user\n}`, 'AUTHZ_SCHEMA_DUPLICATE', 4, 3],
    ['the same subject type twice', `${USER}definition doc {\n  relation viewer: user#... | user\n}`, 'AUTHZ_SCHEMA_DUPLICATE', 3, 31],
    ['the same caveated subject type twice', `${USER}caveat cav(a int) { a == 1 }\ndefinition doc {\n  relation viewer: user with cav | user | user with cav\n}`, 'AUTHZ_SCHEMA_DUPLICATE', 4, 43],
    ['two permissions that alias each other', `${USER}definition doc {\n  relation viewer: user\n  permission a1a = b1b\n  permission b1b = a1a\n}`, 'AUTHZ_SCHEMA_CYCLE', 4, 3],
    ['a permission that aliases itself', `${USER}definition doc {\n  permission view = view\n}`, 'AUTHZ_SCHEMA_CYCLE', 3, 3],
    [
      'permissions that refer to each other through operators',
      `${USER}definition doc {\n  relation viewer: user\n  permission entry = edit\n  permission edit = viewer + view\n  permission view = viewer - (nil & edit)\n}`,
      'AUTHZ_SCHEMA_CYCLE',
      5,
      3,
    ],
    ['a definition name SpiceDB does not allow', 'definition ab {}', 'AUTHZ_SCHEMA_INVALID_NAME', 1, 1],
    ['an upper-case relation name', `${USER}definition doc {\n  relation Viewer: user\n}`, 'AUTHZ_SCHEMA_INVALID_NAME', 3, 3],
    ['a non-ASCII definition name', 'definition 文档abc {}', 'AUTHZ_SCHEMA_INVALID_NAME', 1, 1],
    ['an unknown caveat parameter type', 'caveat cav(a integer) {\n  a == 1\n}', 'AUTHZ_SCHEMA_UNKNOWN_PARAMETER_TYPE', 1, 14],
    ['a list with two type parameters', 'caveat cav(a list<int, int>) {\n  a == []\n}', 'AUTHZ_SCHEMA_UNKNOWN_PARAMETER_TYPE', 1, 14],
    ['a map without its type parameter', 'caveat cav(a string, b map) {\n  a == b\n}', 'AUTHZ_SCHEMA_UNKNOWN_PARAMETER_TYPE', 1, 24],
    ['a basic type with a type parameter', 'caveat cav(a int<string>) {\n  a == 1\n}', 'AUTHZ_SCHEMA_UNKNOWN_PARAMETER_TYPE', 1, 14],
  ];
  for (const [what, schema, code, line, column] of table) {
    it(`refuses ${what} with ${code} at ${line}:${column}`, () => {
      rejects(() => compileSchema(schema), code, line, column);
    });
  }

  it('names what is wrong in the details', () => {
    const unknownType = rejects(() => compileSchema('definition doc {\n  relation viewer: user\n}'), 'AUTHZ_SCHEMA_UNKNOWN_TYPE', 2, 20);
    assert.deepEqual(unknownType.details, { line: 2, column: 20, type: 'user', definition: 'doc', relation: 'viewer' });
    const cycle = rejects(() => compileSchema(`${USER}definition doc {\n  permission a1a = b1b\n  permission b1b = a1a\n}`), 'AUTHZ_SCHEMA_CYCLE', 3, 3);
    assert.deepEqual(cycle.details!.cycle, ['a1a', 'b1b', 'a1a']);
  });
});

describe('validateSchema accepts what SpiceDB accepts', () => {
  const accepted: [string, string][] = [
    [
      'a permission that recurses through an arrow (the data decides where it ends)',
      `${USER}definition folder {\n  relation parent: folder\n  relation viewer: user\n  permission view = viewer + parent->view\n}`,
    ],
    ['a relation that recurses through a subject set', `${USER}definition group {\n  relation member: user | group#member\n  permission membership = member\n}`],
    [
      'permissions that call each other through arrows in both directions',
      `${USER}definition team {\n  relation org: org\n  relation member: user\n  permission view = member + org->view\n}\ndefinition org {\n  relation team: team\n  permission view = team->view\n}`,
    ],
    ['a wildcard next to a subject set of its own type', `${USER}definition group {\n  relation member: user:* | group#member\n}`],
    [
      'an arrow whose target exists on only one of the walked types',
      `${USER}definition folder {\n  relation viewer: user\n}\ndefinition doc {\n  relation parent: folder | user\n  permission view = parent->viewer\n}`,
    ],
    ['an arrow to a permission', `${USER}definition folder {\n  relation viewer: user\n  permission view = viewer\n}\ndefinition doc {\n  relation parent: folder\n  permission view = parent.all(view)\n}`],
    ['a permission over other permissions without a cycle', `${USER}definition doc {\n  relation viewer: user\n  permission read = viewer\n  permission view = read & read - nil\n  permission edit = view + read\n}`],
    ['`with expiration` under `use expiration`', `use expiration\n${USER}caveat cav(a int) { a == 1 }\ndefinition doc {\n  relation viewer: user with expiration | user with cav and expiration\n}`],
    ['a caveat named expiration without `use expiration`', `${USER}caveat expiration(a int) { a == 1 }\ndefinition doc {\n  relation viewer: user with expiration\n}`],
    ['every caveat parameter type', 'caveat cav(a any, b bool, c string, d int, e uint, f double, g bytes, h duration, i timestamp, j ipaddress, k list<map<list<int>>>) {\n  a == 1\n}'],
  ];
  for (const [what, schema] of accepted) {
    it(`accepts ${what}`, () => {
      assert.ok(compileSchema(schema));
    });
  }
});

describe('validateSchema on a Schema built in code', () => {
  const build = (): Schema => parseSchema(`${USER}definition doc {\n  relation viewer: user\n  permission view = viewer\n}`);

  it('points at the enclosing relation or permission when it has no parse positions', () => {
    const schema = build();
    schema.definitions.get('doc')!.permissions.get('view')!.expr = { kind: 'union', children: [{ kind: 'ref', name: 'viewer' }, { kind: 'ref', name: 'nope' }] };
    rejects(() => validateSchema(schema), 'AUTHZ_SCHEMA_UNKNOWN_RELATION', 4, 3);
    schema.definitions.get('doc')!.relations.get('viewer')!.allowed.push({ type: 'user', expiration: true });
    rejects(() => validateSchema(schema), 'AUTHZ_SCHEMA_EXPIRATION_DISABLED', 3, 3);
  });

  it('refuses a relation without subject types and a map key that differs from the name', () => {
    const empty = build();
    empty.definitions.get('doc')!.relations.get('viewer')!.allowed = [];
    rejects(() => validateSchema(empty), 'AUTHZ_SCHEMA_MALFORMED', 3, 3);
    const renamed = build();
    renamed.definitions.get('doc')!.permissions.get('view')!.name = 'read';
    rejects(() => validateSchema(renamed), 'AUTHZ_SCHEMA_MALFORMED', 4, 3);
  });

  it('refuses duplicate caveat parameters', () => {
    const schema = parseSchema('caveat cav(a int) {\n  a == 1\n}');
    schema.caveats.get('cav')!.parameters.push({ name: 'a', type: 'int' });
    rejects(() => validateSchema(schema), 'AUTHZ_SCHEMA_DUPLICATE', 1, 1);
  });
});

describe('schemaErrors', () => {
  it('gives every code a 400 and a message with the line and column', () => {
    for (const [code, spec] of Object.entries(schemaErrors.catalogue)) {
      assert.match(code, /^AUTHZ_SCHEMA_[A-Z_]+$/);
      assert.equal(spec.status, 400, code);
      assert.ok(spec.message.includes('line {line}, column {column}'), code);
    }
  });
});
