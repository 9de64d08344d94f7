import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { compileCaveats } from './caveats/index.js';
import { createEngine, type Engine, type Permissionship } from './engine/engine.js';
import { createRelationshipIndex } from './engine/relationship-index.js';
import { compileSchema } from './schema/index.js';
import type { SubjectRef } from './types.js';
import { loadValidationFile, type ValidationFile } from './validation-file.js';

export interface AssertionFailure {
  file: string;
  kind: 'assertTrue' | 'assertFalse' | 'assertCaveated' | 'load' | 'consistency';
  assertion: string;
  expected: string;
  actual: string;
}

export interface ValidationReport {
  passed: number;
  failed: number;
  failures: AssertionFailure[];
}

const EXPECTED: Record<'assertTrue' | 'assertFalse' | 'assertCaveated', Permissionship> = {
  assertTrue: 'allowed',
  assertFalse: 'denied',
  assertCaveated: 'conditional',
};

/**
 * Builds an engine for one validation file: its schema, caveats and relationships. The
 * schema's imports (`use import`) are read relative to the schema file, or to the
 * validation file for an inline schema.
 */
export function engineFor(file: ValidationFile, options: { clock?: () => number } = {}): Engine {
  const root = dirname(file.schemaFile ?? file.path);
  const schema = compileSchema(file.schema, { readImport: (path) => readFileSync(join(root, path), 'utf8') });
  return createEngine({
    schema,
    caveats: compileCaveats(schema.caveats.values()),
    reader: createRelationshipIndex(file.relationships),
    clock: options.clock,
  });
}

/**
 * Runs every assertion of SpiceDB validation files (what `gatehouse authz validate` prints).
 * A file that cannot load counts as one failure; each assertion counts once.
 */
export function validateFiles(paths: string[], options: { consistency?: boolean; clock?: () => number } = {}): ValidationReport {
  const report: ValidationReport = { passed: 0, failed: 0, failures: [] };
  const fail = (failure: AssertionFailure) => {
    report.failed++;
    report.failures.push(failure);
  };
  for (const path of paths) {
    let file: ValidationFile;
    let engine: Engine;
    try {
      file = loadValidationFile(path);
      engine = engineFor(file, options);
    } catch (error) {
      fail({ file: path, kind: 'load', assertion: '(file)', expected: 'loads', actual: error instanceof Error ? error.message : String(error) });
      continue;
    }
    for (const kind of ['assertTrue', 'assertFalse', 'assertCaveated'] as const) {
      for (const assertion of file.assertions[kind]) {
        let actual: string;
        try {
          actual = engine.check({ resource: assertion.resource, permission: assertion.permission, subject: assertion.subject, context: assertion.context }).permissionship;
        } catch (error) {
          actual = `error: ${error instanceof Error ? error.message : String(error)}`;
        }
        if (actual === EXPECTED[kind]) report.passed++;
        else fail({ file: path, kind, assertion: assertion.text, expected: EXPECTED[kind], actual });
      }
    }
    if (options.consistency) {
      for (const problem of consistencyProblems(file, engine)) fail({ file: path, kind: 'consistency', ...problem });
    }
  }
  return report;
}

/** An answer, or `error: CODE` when the engine refused to answer (a cycle, a failed caveat…). */
function answer<T>(run: () => T): { value: T } | { error: string } {
  try {
    return { value: run() };
  } catch (error) {
    return { error: `error: ${(error as { code?: unknown }).code ?? (error instanceof Error ? error.message : String(error))}` };
  }
}

type Lookup = { allowed: string[]; conditional: string[] };

/**
 * What a lookup says about one id. A lookup that failed answers for no id in particular: it
 * agrees with a check that failed with the same error, and (as some other check of its scope
 * must have failed so) with any answer when `scopeFailed` says one did.
 */
function viaLookup(lookup: { value: Lookup } | { error: string }, id: string, check: string, scopeFailed: (error: string) => boolean): string {
  if ('error' in lookup) return check === lookup.error || scopeFailed(lookup.error) ? check : lookup.error;
  return lookup.value.allowed.includes(id) ? 'allowed' : lookup.value.conditional.includes(id) ? 'conditional' : 'denied';
}

/**
 * check, lookup-resources and lookup-subjects must agree for every resource × subject pair
 * the file's relationships mention, for every relation and permission of the resource type.
 * An error is an answer too: where check fails (AUTHZ_CYCLE, a caveat that cannot be
 * evaluated) the lookups must fail, not list or leave out the pair.
 */
export function consistencyProblems(file: ValidationFile, engine: Engine): { assertion: string; expected: string; actual: string }[] {
  const problems: { assertion: string; expected: string; actual: string }[] = [];
  const resources = new Map<string, Set<string>>();
  const subjects = new Map<string, SubjectRef>();
  for (const r of file.relationships) {
    if (!resources.has(r.resourceType)) resources.set(r.resourceType, new Set());
    resources.get(r.resourceType)!.add(r.resourceId);
    const subject: SubjectRef = { type: r.subjectType, id: r.subjectId, ...(r.subjectRelation ? { relation: r.subjectRelation } : {}) };
    subjects.set(`${subject.type}:${subject.id}#${subject.relation ?? '...'}`, subject);
  }
  const sameKind = (a: SubjectRef, b: SubjectRef) => a.type === b.type && a.relation === b.relation;
  for (const [type, ids] of resources) {
    const def = engine.schema.definitions.get(type);
    if (!def) continue;
    for (const name of [...def.relations.keys(), ...def.permissions.keys()]) {
      const checks = new Map<string, string>();
      const checkOf = (id: string, subject: SubjectRef): string => {
        const k = `${id}@${subject.type}:${subject.id}#${subject.relation ?? '...'}`;
        let found = checks.get(k);
        if (found === undefined) {
          const result = answer(() => engine.check({ resource: { type, id }, permission: name, subject }).permissionship);
          found = 'error' in result ? result.error : result.value;
          checks.set(k, found);
        }
        return found;
      };
      for (const subject of subjects.values()) {
        const found = answer(() => engine.lookupResources({ resourceType: type, permission: name, subject }));
        for (const id of ids) {
          const check = checkOf(id, subject);
          const label = `${type}:${id}#${name}@${subject.type}:${subject.id}${subject.relation ? `#${subject.relation}` : ''}`;
          const viaResources = viaLookup(found, id, check, (error) => [...ids].some((other) => checkOf(other, subject) === error));
          if (viaResources !== check) problems.push({ assertion: `${label} (lookup-resources)`, expected: check, actual: viaResources });
          const lookup = answer(() => engine.lookupSubjects({ resource: { type, id }, permission: name, subjectType: subject.type, subjectRelation: subject.relation }));
          const viaSubjects = viaLookup(lookup, subject.id, check, (error) => [...subjects.values()].some((other) => sameKind(other, subject) && checkOf(id, other) === error));
          if (viaSubjects !== check) problems.push({ assertion: `${label} (lookup-subjects)`, expected: check, actual: viaSubjects });
        }
      }
    }
  }
  return problems;
}
