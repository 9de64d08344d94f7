import { GatehouseError } from '../../errors.js';
import { formatRelationship } from '../relationships/index.js';
import { chainText, unlowered } from '../schema/arrow-chains.js';
import type { CaveatResult, Definition, PermissionExpr, Relationship, Schema, SubjectRef } from '../types.js';
import type { CaveatEvaluator } from './engine.js';
import { engineErrors, MAX_NESTING } from './errors.js';
import type { RelationshipReader } from './relationship-index.js';

/**
 * Why a check came out as it did. Computed by a separate walk that mirrors the engine's
 * semantics step for step, so `check` itself never allocates any of this.
 */
export type Explanation =
  | {
      permissionship: 'allowed';
      /** One path per branch an intersection needed (usually one), each from the resource to the subject. */
      paths: ExplainedPath[];
      /** `document:d1#view ← edit ← owner: document:d1#owner@user:olga` (paths joined by ` & `). */
      summary: string;
    }
  | {
      permissionship: 'conditional';
      /** Caveat parameters whose values would decide the check. */
      missing: string[];
      /** Caveats of the relationships that left the check undecided. */
      caveats: string[];
      summary: string;
    }
  | {
      permissionship: 'denied';
      /**
       * `unreachable`: no relationship leads from the resource to the subject; `excluded`: an
       * exclusion (`- banned`) took the subject out; `caveat`: the only paths carry caveats that
       * evaluated to false; `expired`: the only paths go through expired relationships;
       * `intersection`: an intersection (`&`) lacks one branch.
       */
      reason: 'unreachable' | 'excluded' | 'caveat' | 'expired' | 'intersection';
      /** For `intersection`: the branch the subject does not reach although the ones before it hold. */
      branch?: string;
      /** For `excluded`: the path(s) through the subtracted branch that matched the subject. */
      excludedBy?: ExplainedPath[];
      /** For `caveat`: the caveats that evaluated to false. */
      caveats?: string[];
      /** For `expired`: the expired relationships. */
      expired?: string[];
      summary: string;
    };

export interface ExplainedPath {
  /** The permission expression branches taken: `document:d1#view`, `edit`, `folder->view`, `group:eng#member`… */
  steps: string[];
  /** The relationships walked, in order from the resource to the subject, as `formatRelationship` writes them. */
  relationships: string[];
}

export interface ExplainDeps {
  schema: Schema;
  reader: RelationshipReader;
  caveats: CaveatEvaluator;
  maxDepth: number;
  now: number;
}

interface Trail {
  steps: string[];
  rels: Relationship[];
}

type Denial =
  | { kind: 'excluded'; trails: Trail[] }
  | { kind: 'caveat'; caveats: Set<string> }
  | { kind: 'expired'; rels: Relationship[] }
  | { kind: 'intersection'; branch: string };

// The engine's outcome, with evidence: the trails that grant, the caveats that leave it open,
// why nothing granted, or the error that leaves it undecided (as in the engine: a failed caveat
// or a cycle through an exclusion).
type Proof = { s: 0; why?: Denial } | { s: 1; trails: Trail[] } | { s: 2; missing: Set<string>; caveats: Set<string> } | { s: 3; error: GatehouseError };

const NO: Proof = { s: 0 };
/** The subject is the set itself: a path of no further relationships. */
const HERE: Proof = { s: 1, trails: [{ steps: [], rels: [] }] };
/** A condition that holds (no caveat, or a caveat that is true): adds no path of its own. */
const HOLDS: Proof = { s: 1, trails: [] };
const maybe = (missing: Iterable<string>, caveats: Iterable<string>): Proof => ({ s: 2, missing: new Set(missing), caveats: new Set(caveats) });

/** Keeps the most telling denial: an exclusion beats a false caveat beats an expiry beats nothing. */
function worse(a: Denial | undefined, b: Denial | undefined): Denial | undefined {
  const rank = (d: Denial | undefined) => (d === undefined ? 0 : { intersection: 1, expired: 2, caveat: 3, excluded: 4 }[d.kind]);
  return rank(b) > rank(a) ? b : a;
}

function or(a: Proof, b: Proof): Proof {
  if (a.s === 1) return a;
  if (b.s === 1) return b;
  if (a.s === 3) return a;
  if (b.s === 3) return b;
  if (a.s === 0 && b.s === 0) return { s: 0, why: worse(a.why, b.why) };
  if (a.s === 0) return b;
  if (b.s === 0) return a;
  return maybe([...a.missing, ...b.missing], [...a.caveats, ...b.caveats]);
}

function and(a: Proof, b: Proof): Proof {
  if (a.s === 0) return a;
  if (b.s === 0) return b;
  if (a.s === 3) return a;
  if (b.s === 3) return b;
  if (a.s === 1 && b.s === 1) return { s: 1, trails: [...a.trails, ...b.trails] };
  if (a.s === 1) return b;
  if (b.s === 1) return a;
  return maybe([...a.missing, ...b.missing], [...a.caveats, ...b.caveats]);
}

function butNot(a: Proof, b: Proof): Proof {
  if (a.s === 0) return a;
  if (b.s === 1) return { s: 0, why: { kind: 'excluded', trails: b.trails } };
  if (a.s === 3) return a;
  if (b.s === 3) return b;
  if (a.s === 1 && b.s === 0) return a;
  const missing = [...(a.s === 2 ? a.missing : []), ...(b.s === 2 ? b.missing : [])];
  const caveats = [...(a.s === 2 ? a.caveats : []), ...(b.s === 2 ? b.caveats : [])];
  return maybe(missing, caveats);
}

/** Prefixes every granting trail with a step (and the relationship that led there, if any). */
function via(proof: Proof, step: string, rel?: Relationship): Proof {
  if (proof.s !== 1) return proof;
  return {
    s: 1,
    trails: proof.trails.map((t) => ({ steps: [step, ...t.steps], rels: rel ? [rel, ...t.rels] : t.rels })),
  };
}

/** A permission expression as the schema writes it. */
function label(expr: PermissionExpr): string {
  switch (expr.kind) {
    case 'nil':
      return 'nil';
    case 'self':
      return 'self';
    case 'ref':
      return expr.name;
    case 'arrow':
      return chainText([{ relation: expr.tupleset, mode: expr.mode }], expr.computed);
    case 'arrow-chain':
      return chainText(expr.hops, expr.computed);
    case 'union':
      return `(${expr.children.map(label).join(' + ')})`;
    case 'intersection':
      return `(${expr.children.map(label).join(' & ')})`;
    case 'exclusion':
      return `(${label(expr.base)} - ${label(expr.subtract)})`;
  }
}

const normalise = (subject: SubjectRef): SubjectRef =>
  subject.relation === '...' || subject.relation === '' ? { type: subject.type, id: subject.id } : subject;

const formatSubject = (s: SubjectRef) => `${s.type}:${s.id}${s.relation ? `#${s.relation}` : ''}`;

const formatPath = (p: ExplainedPath) => `${p.steps.join(' ← ')}: ${p.relationships.length > 0 ? p.relationships.join(', ') : '(the subject itself)'}`;

const toPath = (t: Trail): ExplainedPath => ({ steps: t.steps, relationships: t.rels.map(formatRelationship) });

/**
 * Explains one check. The walk is the engine's own (same order, same short-circuits, same memo
 * and cycle cutting), so its verdict is the engine's verdict.
 */
export function explainCheck(
  { schema, reader, caveats, maxDepth, now }: ExplainDeps,
  request: { resource: { type: string; id: string }; permission: string; subject: SubjectRef; context?: Record<string, unknown> },
): Explanation {
  const subject = normalise(request.subject);
  const context = request.context ?? {};
  const memo = new Map<string, Proof>();
  const onPath = new Map<string, number>();
  let negations = 0;
  let nesting = 0;
  let cycleCuts = 0;

  function definition(type: string): Definition {
    const def = schema.definitions.get(type);
    if (!def) throw engineErrors.create('AUTHZ_UNKNOWN_TYPE', { type });
    return def;
  }

  function caveatOf(r: Relationship): Proof {
    if (r.expiresAt !== undefined && r.expiresAt <= now) return { s: 0, why: { kind: 'expired', rels: [r] } };
    if (!r.caveat) return HOLDS;
    const merged = r.caveat.context ? { ...context, ...r.caveat.context } : context;
    let result: CaveatResult;
    try {
      result = caveats.evaluate(r.caveat.name, merged);
    } catch (error) {
      if (error instanceof GatehouseError) return { s: 3, error };
      throw error;
    }
    if (result.result === 'true') return HOLDS;
    if (result.result === 'false') return { s: 0, why: { kind: 'caveat', caveats: new Set([r.caveat.name]) } };
    return maybe(result.missing, [r.caveat.name]);
  }

  function evaluate(type: string, id: string, name: string): Proof {
    if (subject.relation !== undefined && subject.type === type && subject.id === id && subject.relation === name) return HERE;
    const key = `${type}:${id}#${name}`;
    const cached = memo.get(key);
    if (cached) return cached;
    const entered = onPath.get(key);
    if (entered !== undefined) {
      cycleCuts++;
      return negations > entered ? { s: 3, error: engineErrors.create('AUTHZ_CYCLE', { object: key }) } : NO;
    }
    if (onPath.size >= maxDepth) throw engineErrors.create('AUTHZ_DEPTH_EXCEEDED', { maxDepth });
    const def = definition(type);
    const cutsBefore = cycleCuts;
    onPath.set(key, negations);
    let proof: Proof;
    try {
      const permission = def.permissions.get(name);
      if (permission) proof = expression(def, id, permission.expr);
      else if (def.relations.has(name)) proof = relation(type, id, name);
      else throw engineErrors.create('AUTHZ_UNKNOWN_PERMISSION', { type, name });
    } finally {
      onPath.delete(key);
    }
    if (cycleCuts === cutsBefore) memo.set(key, proof);
    return proof;
  }

  function relation(type: string, id: string, name: string): Proof {
    let proof: Proof = NO;
    for (const r of reader.forResource(type, id, name)) {
      if (
        r.subjectType === subject.type &&
        r.subjectRelation === subject.relation &&
        (r.subjectId === subject.id || (r.subjectId === '*' && subject.relation === undefined))
      ) {
        proof = or(proof, and(caveatOf(r), { s: 1, trails: [{ steps: [], rels: [r] }] }));
      } else if (r.subjectRelation !== undefined && r.subjectId !== '*') {
        const cond = caveatOf(r);
        if (cond.s === 0) {
          proof = or(proof, cond);
          continue;
        }
        proof = or(proof, and(cond, via(evaluate(r.subjectType, r.subjectId, r.subjectRelation), `${r.subjectType}:${r.subjectId}#${r.subjectRelation}`, r)));
      } else {
        continue;
      }
      if (proof.s === 1) return proof;
    }
    return proof;
  }

  function arrow(def: Definition, id: string, tupleset: string, computed: string, mode: 'any' | 'all'): Proof {
    let proof: Proof = mode === 'all' ? HOLDS : NO;
    let targets = 0;
    for (const r of reader.forResource(def.name, id, tupleset)) {
      if (r.subjectId === '*' || (r.expiresAt !== undefined && r.expiresAt <= now)) continue;
      const cond = caveatOf(r);
      if (cond.s === 0) {
        if (mode === 'all') return cond;
        proof = or(proof, cond);
        continue;
      }
      targets++;
      const target = schema.definitions.get(r.subjectType);
      const has = target !== undefined && (target.relations.has(computed) || target.permissions.has(computed));
      const reached = has ? and(cond, via(evaluate(r.subjectType, r.subjectId, computed), `${r.subjectType}:${r.subjectId}#${computed}`, r)) : NO;
      if (mode === 'any') {
        proof = or(proof, reached);
        if (proof.s === 1) return proof;
      } else {
        proof = and(proof, reached);
        if (proof.s === 0) return proof;
      }
    }
    return mode === 'all' && targets === 0 ? NO : proof;
  }

  function expression(def: Definition, id: string, expr: PermissionExpr): Proof {
    if (++nesting > MAX_NESTING) throw engineErrors.create('AUTHZ_NESTING_EXCEEDED', { max: MAX_NESTING });
    const proof = expressionOf(def, id, expr);
    nesting--;
    return proof;
  }

  function expressionOf(def: Definition, id: string, expr: PermissionExpr): Proof {
    switch (expr.kind) {
      case 'nil':
        return NO;
      case 'self':
        return subject.relation === undefined && subject.type === def.name && subject.id === id ? via(HERE, 'self') : NO;
      case 'ref':
        return via(evaluate(def.name, id, expr.name), expr.name);
      case 'arrow':
        return via(arrow(def, id, expr.tupleset, expr.computed, expr.mode), label(expr));
      case 'arrow-chain':
        return unlowered();
      case 'union': {
        let proof: Proof = NO;
        for (const child of expr.children) {
          proof = or(proof, expression(def, id, child));
          if (proof.s === 1) return proof;
        }
        return proof;
      }
      case 'intersection': {
        let proof: Proof = HOLDS;
        for (const [i, child] of expr.children.entries()) {
          proof = and(proof, expression(def, id, child));
          // The earlier branches held: name the one that did not (unless it says why itself).
          if (proof.s === 0) return i > 0 && proof.why === undefined ? { s: 0, why: { kind: 'intersection', branch: label(child) } } : proof;
        }
        return proof;
      }
      case 'exclusion': {
        const base = expression(def, id, expr.base);
        if (base.s === 0) return base;
        negations++;
        try {
          return butNot(base, expression(def, id, expr.subtract));
        } finally {
          negations--;
        }
      }
    }
  }

  definition(request.resource.type);
  const top = `${request.resource.type}:${request.resource.id}#${request.permission}`;
  const proof = via(evaluate(request.resource.type, request.resource.id, request.permission), top);
  return describe(proof, top, formatSubject(subject));
}

function describe(proof: Proof, top: string, subject: string): Explanation {
  // The engine's check throws the same error: there is no verdict to explain.
  if (proof.s === 3) throw proof.error;
  if (proof.s === 1) {
    const paths = proof.trails.map(toPath);
    return { permissionship: 'allowed', paths, summary: paths.map(formatPath).join(' & ') };
  }
  if (proof.s === 2) {
    const missing = [...proof.missing].sort();
    const caveats = [...proof.caveats].sort();
    return { permissionship: 'conditional', missing, caveats, summary: `${top} for ${subject} depends on caveat ${caveats.join(', ')}: missing ${missing.join(', ')}` };
  }
  const why = proof.why;
  if (why?.kind === 'excluded') {
    const excludedBy = why.trails.map(toPath);
    return { permissionship: 'denied', reason: 'excluded', excludedBy, summary: `${subject} is excluded by ${excludedBy.map(formatPath).join(' & ')}` };
  }
  if (why?.kind === 'caveat') {
    const caveats = [...why.caveats].sort();
    return { permissionship: 'denied', reason: 'caveat', caveats, summary: `${top} reaches ${subject} only through caveats that evaluated to false: ${caveats.join(', ')}` };
  }
  if (why?.kind === 'expired') {
    const expired = why.rels.map(formatRelationship);
    return { permissionship: 'denied', reason: 'expired', expired, summary: `${top} reaches ${subject} only through expired relationships: ${expired.join(', ')}` };
  }
  if (why?.kind === 'intersection') {
    return { permissionship: 'denied', reason: 'intersection', branch: why.branch, summary: `${top} needs ${why.branch}, which does not reach ${subject}` };
  }
  return { permissionship: 'denied', reason: 'unreachable', summary: `no relationship reaches ${subject} from ${top}` };
}
