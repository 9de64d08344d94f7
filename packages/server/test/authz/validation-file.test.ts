import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { formatRelationship } from '../../src/authz/relationships/index.js';
import { validateFiles } from '../../src/authz/validate-files.js';
import { loadValidationFile, parseValidationFile, validationFileErrors, type ValidationFile } from '../../src/authz/validation-file.js';
import { GatehouseError } from '../../src/errors.js';

const corpus = fileURLToPath(new URL('../../../../../shared/conformance/spicedb/validation/', import.meta.url));

function throwsInvalid(fn: () => unknown, details: Record<string, unknown> = {}, causeCode?: string) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GatehouseError, String(error));
    assert.equal(error.code, 'AUTHZ_VALIDATION_FILE_INVALID' satisfies keyof typeof validationFileErrors.catalogue, error.message);
    for (const [k, v] of Object.entries(details)) assert.deepEqual(error.details?.[k], v, `${k} in ${error.message}`);
    if (causeCode) assert.equal((error.cause as GatehouseError | undefined)?.code, causeCode, error.message);
    return true;
  });
}

describe('SpiceDB validation corpus files', () => {
  const files = readdirSync(corpus)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => loadValidationFile(join(corpus, name)));

  it('loads all 73 files', () => {
    assert.equal(files.length, 73);
    for (const file of files) assert.ok(file.schema.includes('definition'), file.path);
  });

  it('holds the 411 assertions the corpus README counts: 226 assertTrue, 159 assertFalse, 26 assertCaveated, 66 with context, 9 files without any', () => {
    const all = (f: ValidationFile) => [...f.assertions.assertTrue, ...f.assertions.assertFalse, ...f.assertions.assertCaveated];
    const sum = (count: (f: ValidationFile) => number) => files.reduce((n, f) => n + count(f), 0);
    assert.equal(sum((f) => f.assertions.assertTrue.length), 226);
    assert.equal(sum((f) => f.assertions.assertFalse.length), 159);
    assert.equal(sum((f) => f.assertions.assertCaveated.length), 26);
    assert.equal(sum((f) => all(f).length), 411);
    assert.equal(sum((f) => all(f).filter((a) => a.context !== undefined).length), 66);
    assert.equal(files.filter((f) => all(f).length === 0).length, 9);
  });

  it('keeps each assertion with its text and its line in the file', () => {
    const file = files.find((f) => f.path.endsWith('caveatedintersectionarrow.yaml'))!;
    const assertion = file.assertions.assertTrue.find((a) => a.context?.memberparam === 42 && a.context.teamparam === 41)!;
    assert.equal(assertion.text, 'resource:firstresource#view_by_all@user:tom with {"memberparam": 42, "teamparam": 41}');
    assert.deepEqual(assertion.resource, { type: 'resource', id: 'firstresource' });
    assert.equal(assertion.permission, 'view_by_all');
    assert.deepEqual(assertion.subject, { type: 'user', id: 'tom' });
    assert.ok(assertion.line > 1);
  });

  it('reads relationships from every block style, comments and blank lines skipped', () => {
    const relationships = (name: string) => files.find((f) => f.path.endsWith(`/${name}`))!.relationships;
    // `>-` (folded, blank-line separated), with slash-qualified types and `#...`.
    assert.deepEqual(relationships('multipleslashes.yaml')[0], {
      resourceType: 'org/identity_team/group',
      resourceId: 'ultragroup',
      relation: 'member',
      subjectType: 'org/identity_team/user',
      subjectId: 'someguy',
    });
    assert.equal(relationships('multipleslashes.yaml').length, 6);
    // `//` comment lines between relationships.
    assert.ok(relationships('multipleops.yaml').length > 0);
    assert.ok(relationships('caveatindirectarrow.yaml').every((r) => r.resourceType !== '//'));
  });

  it('exposes the validation section as raw data', () => {
    assert.deepEqual(files.find((f) => f.path.endsWith('/arrowsublr.yaml'))!.validation, {});
    assert.equal(files.find((f) => f.path.endsWith('/multiplepathssamelookupresult.yaml'))!.validation, null);
    assert.equal(files.find((f) => f.path.endsWith('/basiccaveat.yaml'))!.validation, undefined);
  });
});

describe('validation file format', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-validation-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const write = (text: string, name = `file${n++}.yaml`) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const schema = 'definition user {}\n\ndefinition document {\n  relation viewer: user\n}\n';
  const indent = (text: string) =>
    text
      .split('\n')
      .map((l) => (l ? `  ${l}` : l))
      .join('\n');

  for (const style of ['|', '|-', '|+', '>-', '>']) {
    it(`reads schema and relationships written as "${style}" blocks`, () => {
      // Folded styles (`>`) join adjacent lines, so such files separate relationships by blank lines.
      const relationships = style.startsWith('>') ? 'document:a#viewer@user:tom\n\ndocument:b#viewer@user:sarah\n' : 'document:a#viewer@user:tom\ndocument:b#viewer@user:sarah\n';
      const file = loadValidationFile(write(`schema: ${style}\n${indent(schema)}\nrelationships: ${style}\n${indent(relationships)}\nassertions:\n  assertTrue:\n    - document:a#viewer@user:tom\n`));
      assert.match(file.schema, /definition document \{/);
      assert.deepEqual(file.relationships.map(formatRelationship), ['document:a#viewer@user:tom', 'document:b#viewer@user:sarah']);
      assert.equal(file.assertions.assertTrue.length, 1);
    });
  }

  it('accepts missing sections and null ones', () => {
    const empty = { assertTrue: [], assertFalse: [], assertCaveated: [] };
    for (const text of ['', '---\n', 'schema: |\n  definition user {}\n', 'schema: ""\nrelationships: null\nassertions: null\nvalidation: null\n', 'assertions:\n  assertTrue: null\n  assertFalse: []\n']) {
      const file = parseValidationFile(text, join(dir, 'inline.yaml'));
      assert.deepEqual(file.relationships, [], text);
      assert.deepEqual(file.assertions, empty, text);
    }
  });

  it('reads the schema from schemaFile, relative to the validation file', () => {
    mkdirSync(join(dir, 'schemas'), { recursive: true });
    writeFileSync(join(dir, 'schemas', 'basic.zed'), schema);
    const file = loadValidationFile(write('schemaFile: "./schemas/basic.zed"\nrelationships: |\n  document:a#viewer@user:tom\n'));
    assert.equal(file.schema, schema);
    assert.equal(file.schemaFile, join(dir, 'schemas', 'basic.zed'));
  });

  it('reads the imports of a schema file relative to it', () => {
    mkdirSync(join(dir, 'schemas', 'shared'), { recursive: true });
    writeFileSync(join(dir, 'schemas', 'shared', 'user.zed'), 'definition user {}\n');
    writeFileSync(join(dir, 'schemas', 'main.zed'), 'use import\nimport "shared/user.zed"\ndefinition document {\n  relation viewer: user\n  permission view = viewer\n}\n');
    const path = write('schemaFile: ./schemas/main.zed\nrelationships: |\n  document:a#viewer@user:tom\nassertions:\n  assertTrue:\n    - document:a#view@user:tom\n  assertFalse:\n    - document:a#view@user:sam\n');
    assert.deepEqual(validateFiles([path]), { passed: 2, failed: 0, failures: [] });
  });

  it('refuses both schema and schemaFile', () => {
    throwsInvalid(() => loadValidationFile(write('schemaFile: ./schemas/basic.zed\nschema: |\n  definition user {}\n')), { line: 1 });
  });

  it('refuses a schemaFile outside the directory of the validation file', () => {
    writeFileSync(join(tmpdir(), 'gatehouse-outside.zed'), schema);
    try {
      for (const path of ['../gatehouse-outside.zed', join(tmpdir(), 'gatehouse-outside.zed'), 'schemas/../../gatehouse-outside.zed', '.']) {
        throwsInvalid(() => loadValidationFile(write(`schemaFile: ${JSON.stringify(path)}\n`)), { line: 1 });
      }
    } finally {
      rmSync(join(tmpdir(), 'gatehouse-outside.zed'), { force: true });
    }
  });

  it('refuses a schemaFile that does not exist', () => {
    throwsInvalid(() => loadValidationFile(write('schemaFile: ./nope.zed\n')), { line: 1 });
  });

  it('names the file line of a bad relationship, keeping the syntax error as the cause', () => {
    const path = write('schema: |\n  definition user {}\nrelationships: |\n  document:a#viewer@user:tom\n\n  document:b#Viewer@user:tom\n');
    throwsInvalid(() => loadValidationFile(path), { path, line: 6 }, 'AUTHZ_RELATIONSHIP_SYNTAX');
  });

  it('names the file line of a repeated relationship', () => {
    const path = write('relationships: >-\n  document:a#viewer@user:tom\n\n  document:a#viewer@user:tom[some_caveat]\n');
    throwsInvalid(() => loadValidationFile(path), { line: 4 }, 'AUTHZ_RELATIONSHIP_DUPLICATE');
  });

  it('names the file line of a bad assertion', () => {
    const path = write('assertions:\n  assertTrue:\n    - document:a#viewer@user:tom\n  assertFalse:\n    - "document:a#viewer@user:tom with {nope}"\n');
    throwsInvalid(() => loadValidationFile(path), { line: 5 }, 'AUTHZ_RELATIONSHIP_SYNTAX');
  });

  const malformed: [string, string, number | undefined][] = [
    ['invalid YAML', 'schema: |\n  a\n bad: [\n', 3],
    ['a top level that is not a mapping', '- a\n- b\n', undefined],
    ['a schema that is not a string', 'schema:\n  - definition user {}\n', 2],
    ['relationships that are a list', 'relationships:\n  - document:a#viewer@user:tom\n', 2],
    ['assertions that are a list', 'assertions:\n  - document:a#viewer@user:tom\n', 2],
    ['an assertion list that is a string', 'assertions:\n  assertTrue: document:a#viewer@user:tom\n', 2],
    ['an assertion that is not a string', 'assertions:\n  assertTrue:\n    - {a: 1}\n', 3],
    ['a duplicated key', 'schema: ""\nschema: ""\n', 2],
    ['legacy namespace_configs', 'namespace_configs:\n  - name: x\n', 1],
    ['legacy validation_tuples', 'validation_tuples:\n  - document:a#viewer@user:tom\n', 1],
  ];
  for (const [label, text, line] of malformed) {
    it(`refuses ${label}`, () => {
      throwsInvalid(() => loadValidationFile(write(text)), line === undefined ? {} : { line });
    });
  }

  it('refuses a file that cannot be read', () => {
    throwsInvalid(() => loadValidationFile(join(dir, 'does-not-exist.yaml')));
  });
});
