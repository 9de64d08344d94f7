import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCaveats } from '../../src/authz/caveats/index.js';
import { createEngine } from '../../src/authz/engine/engine.js';
import { createRelationshipIndex } from '../../src/authz/engine/relationship-index.js';
import { parseRelationships } from '../../src/authz/relationships/index.js';
import { compileSchema, SCHEMA_LIMITS } from '../../src/authz/schema/index.js';
import { GatehouseError } from '../../src/errors.js';

/** Compiles, expecting AUTHZ_SCHEMA_LIMIT for `limit` at line/column (a GatehouseError, not a RangeError). */
function refused(text: string, limit: keyof typeof SCHEMA_LIMITS, line: number, column: number) {
  assert.throws(
    () => compileSchema(text),
    (error: unknown) => {
      assert.ok(error instanceof GatehouseError, String(error));
      assert.equal(error.code, 'AUTHZ_SCHEMA_LIMIT', error.message);
      assert.deepEqual({ limit: error.details?.limit, line: error.details?.line, column: error.details?.column }, { limit, line, column }, error.message);
      return true;
    },
  );
}

function engine(schemaText: string, relationships: string) {
  const schema = compileSchema(schemaText);
  return createEngine({ schema, caveats: compileCaveats(schema.caveats.values()), reader: createRelationshipIndex(parseRelationships(relationships)) });
}

const folder = (permission: string) => `definition user {}\ndefinition folder {\n  relation par: folder\n  relation viewer: user\n  permission view = ${permission}\n}\n`;
// Column of the n-th (1-based) occurrence of `needle` in line 5 (`  permission view = …`).
const columnOf = (expr: string, needle: string, n: number) => {
  let at = -1;
  for (let i = 0; i < n; i++) at = expr.indexOf(needle, at + 1);
  return '  permission view = '.length + at + 1;
};

describe('schema limits (issue 9 part 3)', () => {
  it('refuses the 30 KB schema with a 6,000-hop arrow chain at the arrow past the limit', () => {
    const chain = `${'par->'.repeat(6000)}viewer`;
    assert.ok(chain.length > 30_000);
    refused(folder(chain), 'arrowChain', 5, columnOf(chain, '->', SCHEMA_LIMITS.arrowChain + 1));
  });

  it('accepts an arrow chain at the limit, and walks it', () => {
    const chain = `${'par->'.repeat(SCHEMA_LIMITS.arrowChain)}viewer`;
    const rels = [...Array.from({ length: SCHEMA_LIMITS.arrowChain }, (_, i) => `folder:f${i}#par@folder:f${i + 1}`), `folder:f${SCHEMA_LIMITS.arrowChain}#viewer@user:u`].join('\n');
    const e = engine(folder(chain), rels);
    assert.equal(e.check({ resource: { type: 'folder', id: 'f0' }, permission: 'view', subject: { type: 'user', id: 'u' } }).permissionship, 'allowed');
    assert.equal(e.check({ resource: { type: 'folder', id: 'f1' }, permission: 'view', subject: { type: 'user', id: 'u' } }).permissionship, 'denied');
  });

  it('refuses 5,000 nested parentheses at the first one past the limit, and accepts the limit', () => {
    const deep = `${'('.repeat(5000)}viewer${')'.repeat(5000)}`;
    refused(folder(deep), 'parenthesisNesting', 5, columnOf(deep, '(', SCHEMA_LIMITS.parenthesisNesting + 1));
    const max = SCHEMA_LIMITS.parenthesisNesting;
    assert.deepEqual(compileSchema(folder(`${'('.repeat(max)}viewer${')'.repeat(max)}`)).definitions.get('folder')!.permissions.get('view')!.expr, { kind: 'ref', name: 'viewer' });
  });

  it('refuses expressions nested too deeply, and a `+` chain with too many operands; a long chain within the bounds is flat', () => {
    const exclusions = Array(10_000).fill('viewer').join(' - ');
    refused(folder(exclusions), 'expressionNesting', 5, '  permission view = '.length + 1);
    const union = Array(SCHEMA_LIMITS.operands).fill('viewer').join(' + ');
    const expr = compileSchema(folder(union)).definitions.get('folder')!.permissions.get('view')!.expr;
    assert.equal(expr.kind === 'union' && expr.children.length, SCHEMA_LIMITS.operands);
    const tooMany = `${union} + viewer`;
    refused(folder(tooMany), 'operands', 5, columnOf(tooMany, 'viewer', SCHEMA_LIMITS.operands + 1));
  });

  it('refuses a chain of 1,990 partials each including the next at the include past the limit', () => {
    const partials = Array.from({ length: 1990 }, (_, i) => `partial part${i} {\n  ...part${i + 1}\n}`).join('\n');
    const text = `use partial\ndefinition user {}\n${partials}\npartial part1990 {\n  relation viewer: user\n}\n`;
    // Partial part0 starts at line 3; each partial takes 3 lines; the include is its second.
    refused(text, 'partialNesting', 3 + 3 * SCHEMA_LIMITS.partialNesting + 1, 3);
  });

  it('refuses caveat types nested too deeply, and too many definitions', () => {
    refused(`caveat deep(value ${'list<'.repeat(5000)}int${'>'.repeat(5000)}) {\n  true\n}\n`, 'typeNesting', 1, 'caveat deep(value '.length + 'list<'.length * SCHEMA_LIMITS.typeNesting + 'list'.length + 1);
    const many = Array.from({ length: SCHEMA_LIMITS.definitions + 1 }, (_, i) => `definition type${i} {}`).join('\n');
    refused(many, 'definitions', SCHEMA_LIMITS.definitions + 1, 1);
  });
});

describe('permission engine: walks that nest too deeply (issue 9 part 3)', () => {
  // `view` nested `levels` deep in every folder of a 48-folder chain.
  const deep = (levels: number) => {
    let expr = 'viewer + par->view';
    for (let i = 0; i < levels; i++) expr = `(${expr}) - nil`;
    const rels = [...Array.from({ length: 48 }, (_, i) => `folder:f${i}#par@folder:f${i + 1}`), 'folder:f48#viewer@user:u'].join('\n');
    return engine(folder(expr), rels);
  };
  const request = { resource: { type: 'folder', id: 'f0' }, permission: 'view', subject: { type: 'user', id: 'u' } };

  it('fails check, explain, lookups and expand with AUTHZ_NESTING_EXCEEDED instead of exhausting the stack', () => {
    const e = deep(SCHEMA_LIMITS.expressionNesting - 2);
    assert.throws(() => e.check(request), { code: 'AUTHZ_NESTING_EXCEEDED' });
    assert.throws(() => e.check({ ...request, explain: true }), { code: 'AUTHZ_NESTING_EXCEEDED' });
    assert.throws(() => e.lookupSubjects({ resource: request.resource, permission: 'view', subjectType: 'user' }), { code: 'AUTHZ_NESTING_EXCEEDED' });
    assert.throws(() => e.expand({ resource: request.resource, permission: 'view' }), { code: 'AUTHZ_NESTING_EXCEEDED' });
  });

  it('answers the same walk with shallower expressions', () => {
    const e = deep(16);
    assert.equal(e.check({ ...request, explain: true }).permissionship, 'allowed');
    assert.deepEqual(e.lookupSubjects({ resource: request.resource, permission: 'view', subjectType: 'user' }).allowed, ['u']);
    assert.ok(JSON.stringify(e.expand({ resource: request.resource, permission: 'view' })).includes('"u"'));
  });
});
