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

/**
 * check, lookup-resources and lookup-subjects must agree for every resource × subject pair
 * the file's relationships mention, for every relation and permission of the resource type.
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
  for (const [type, ids] of resources) {
    const def = engine.schema.definitions.get(type);
    if (!def) continue;
    for (const name of [...def.relations.keys(), ...def.permissions.keys()]) {
      for (const subject of subjects.values()) {
        const found = engine.lookupResources({ resourceType: type, permission: name, subject });
        for (const id of ids) {
          const check = engine.check({ resource: { type, id }, permission: name, subject }).permissionship;
          const viaResources = found.allowed.includes(id) ? 'allowed' : found.conditional.includes(id) ? 'conditional' : 'denied';
          const label = `${type}:${id}#${name}@${subject.type}:${subject.id}${subject.relation ? `#${subject.relation}` : ''}`;
          if (viaResources !== check) problems.push({ assertion: `${label} (lookup-resources)`, expected: check, actual: viaResources });
          const lookup = engine.lookupSubjects({ resource: { type, id }, permission: name, subjectType: subject.type, subjectRelation: subject.relation });
          const viaSubjects = lookup.allowed.includes(subject.id) ? 'allowed' : lookup.conditional.includes(subject.id) ? 'conditional' : 'denied';
          if (viaSubjects !== check) problems.push({ assertion: `${label} (lookup-subjects)`, expected: check, actual: viaSubjects });
        }
      }
    }
  }
  return problems;
}
