import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { defineErrors, GatehouseError } from '../errors.js';
import { parseCheckAssertion, parseRelationships, type CheckAssertion } from './relationships/index.js';
import type { Relationship } from './types.js';

/**
 * SpiceDB validation files (`zed validate`, the playground, SpiceDB's integration tests):
 * a YAML document with `schema:` (or `schemaFile:`), `relationships:` (one string, one
 * relationship per line), `assertions:` and the expected relations under `validation:`.
 */

export const validationFileErrors = defineErrors({
  AUTHZ_VALIDATION_FILE_INVALID: { status: 400, message: 'Validation file {path} is invalid at {where}: {reason}' },
});

/** A check assertion with its text as written and its 1-based line in the file. */
export interface Assertion extends CheckAssertion {
  text: string;
  line: number;
}

export type AssertionKind = 'assertTrue' | 'assertFalse' | 'assertCaveated';

export interface ValidationFile {
  path: string;
  /** The schema text (from `schema:`, or read from `schemaFile:`). Empty when the file has none. */
  schema: string;
  /** The schema file read, when the schema came from `schemaFile:`. */
  schemaFile?: string;
  relationships: Relationship[];
  /** `assertTrue`: allowed; `assertFalse`: denied; `assertCaveated`: conditional on missing caveat context. */
  assertions: Record<AssertionKind, Assertion[]>;
  /** `validation:` (expected relations) as raw YAML data; not evaluated. `undefined` when absent. */
  validation?: unknown;
}

const ASSERTION_KINDS: AssertionKind[] = ['assertTrue', 'assertFalse', 'assertCaveated'];

/**
 * Reads and parses a validation file. Throws AUTHZ_VALIDATION_FILE_INVALID naming the file,
 * the line and the reason (a relationship or assertion error keeps its own code in `cause`).
 *
 * @example
 * const file = loadValidationFile('testconfigs/basiccaveat.yaml');
 * file.assertions.assertCaveated[0]; // { text, line, resource, permission, subject, context? }
 */
export function loadValidationFile(path: string): ValidationFile {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalid(path, 'the file', `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parseValidationFile(source, path);
}

function invalid(path: string, where: string, reason: string, extra: Record<string, unknown> = {}, cause?: unknown): GatehouseError {
  const error = validationFileErrors.create('AUTHZ_VALIDATION_FILE_INVALID', { path, where, reason, ...extra });
  if (cause !== undefined) error.cause = cause;
  return error;
}

/** Parses the text of a validation file; `path` names it in errors and anchors `schemaFile:`. */
export function parseValidationFile(source: string, path: string): ValidationFile {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  const lineOf = (offset: number) => lines.linePos(offset).line;
  const fail = (line: number | undefined, reason: string, cause?: unknown): GatehouseError =>
    invalid(path, line === undefined ? 'the top level' : `line ${line}`, reason, line === undefined ? {} : { line }, cause);

  const yamlError = doc.errors[0];
  if (yamlError) throw fail(lineOf(yamlError.pos[0]), `not valid YAML: ${yamlError.message.split('\n')[0]}`, yamlError);
  // An empty document (or a lone `---`) is an empty validation file.
  const empty = doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null);
  if (!empty && !isMap(doc.contents)) throw fail(undefined, 'the document must be a mapping (schema, relationships, assertions)');

  const node = (key: string): YamlNode | undefined => (empty ? undefined : (doc.get(key, true) as YamlNode | undefined));
  const line = (n: YamlNode | undefined) => (n?.range ? lineOf(n.range[0]) : undefined);
  const keyLine = (key: string) => {
    const pair = isMap(doc.contents) ? doc.contents.items.find((p) => isScalar(p.key) && p.key.value === key) : undefined;
    return line(pair?.key as YamlNode | undefined);
  };
  /** A scalar string value, `undefined` for an absent or null key. */
  const text = (key: string): string | undefined => {
    const n = node(key);
    if (n === undefined || (isScalar(n) && n.value === null)) return undefined;
    if (!isScalar(n) || typeof n.value !== 'string') throw fail(line(n), `"${key}" must be a string`);
    return n.value;
  };

  // SpiceDB refuses the legacy sections rather than ignoring them.
  if (node('namespace_configs') !== undefined) throw fail(keyLine('namespace_configs'), 'definitions must be given in "schema"');
  if (node('validation_tuples') !== undefined) throw fail(keyLine('validation_tuples'), 'relationships must be given in "relationships"');

  const file: ValidationFile = {
    path,
    schema: text('schema') ?? '',
    relationships: readRelationships(source, node('relationships'), text('relationships'), lineOf, fail),
    assertions: empty ? { assertTrue: [], assertFalse: [], assertCaveated: [] } : readAssertions(doc, lineOf, fail),
  };

  const schemaFile = text('schemaFile');
  if (schemaFile !== undefined && schemaFile !== '') {
    if (file.schema !== '') throw fail(line(node('schemaFile')), 'only one of "schema" and "schemaFile" can be given');
    file.schemaFile = resolveSchemaFile(path, schemaFile, () => fail(line(node('schemaFile')), `schema file "${schemaFile}" is not inside the directory of the validation file`));
    try {
      file.schema = readFileSync(file.schemaFile, 'utf8');
    } catch (error) {
      throw fail(line(node('schemaFile')), `schema file "${schemaFile}" cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, error);
    }
  }

  if (!empty && doc.has('validation')) file.validation = (doc.toJS() as Record<string, unknown>).validation;
  return file;
}

/**
 * `schemaFile:` is relative to the validation file and must stay below its directory (as in
 * SpiceDB, which refuses non-local paths): a validation file must not read arbitrary files.
 */
function resolveSchemaFile(path: string, schemaFile: string, notLocal: () => GatehouseError): string {
  if (isAbsolute(schemaFile)) throw notLocal();
  const base = resolve(dirname(path));
  const target = resolve(base, schemaFile);
  const rel = relative(base, target);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw notLocal();
  return target;
}

function readRelationships(
  source: string,
  n: YamlNode | undefined,
  block: string | undefined,
  lineOf: (offset: number) => number,
  fail: (line: number | undefined, reason: string, cause?: unknown) => GatehouseError,
): Relationship[] {
  if (block === undefined) return [];
  try {
    return parseRelationships(block);
  } catch (error) {
    if (!(error instanceof GatehouseError)) throw error;
    // Map the line in the block to a line in the file: find the offending text after the key.
    const start = n?.range?.[0] ?? 0;
    const offending = typeof error.details?.text === 'string' ? source.indexOf(error.details.text, start) : -1;
    throw fail(lineOf(offending >= 0 ? offending : start), error.message, error);
  }
}

function readAssertions(
  doc: Document,
  lineOf: (offset: number) => number,
  fail: (line: number | undefined, reason: string, cause?: unknown) => GatehouseError,
): Record<AssertionKind, Assertion[]> {
  const assertions: Record<AssertionKind, Assertion[]> = { assertTrue: [], assertFalse: [], assertCaveated: [] };
  const section = doc.get('assertions', true) as YamlNode | undefined;
  if (section === undefined || (isScalar(section) && section.value === null)) return assertions;
  const sectionLine = section.range ? lineOf(section.range[0]) : undefined;
  if (!isMap(section)) throw fail(sectionLine, '"assertions" must be a mapping of assertTrue, assertFalse and assertCaveated');
  for (const kind of ASSERTION_KINDS) {
    const list = section.get(kind, true) as YamlNode | undefined;
    if (list === undefined || (isScalar(list) && list.value === null)) continue;
    if (!isSeq(list)) throw fail(list.range ? lineOf(list.range[0]) : sectionLine, `"${kind}" must be a list of assertions`);
    for (const item of list.items as YamlNode[]) {
      const line = item.range ? lineOf(item.range[0]) : (sectionLine ?? 0);
      if (!isScalar(item) || typeof item.value !== 'string') throw fail(line, `each "${kind}" entry must be a string "resource#permission@subject"`);
      try {
        assertions[kind].push({ ...parseCheckAssertion(item.value), text: item.value, line });
      } catch (error) {
        if (!(error instanceof GatehouseError)) throw error;
        throw fail(line, error.message, error);
      }
    }
  }
  return assertions;
}
