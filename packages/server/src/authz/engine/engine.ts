import { GatehouseError } from '../../errors.js';
import type { CaveatResult, Definition, ObjectRef, PermissionExpr, Relationship, Schema, SubjectRef } from '../types.js';
import { lowerArrowChains, unlowered } from '../schema/arrow-chains.js';
import { engineErrors, MAX_NESTING } from './errors.js';
import { expandTree, type ExpandNode, type ExpandRequest } from './expand.js';
import { explainCheck, type Explanation } from './explain.js';
import { collectMentions, monotonePermissions, reverseEdges } from './reachability.js';
import type { RelationshipReader } from './relationship-index.js';

/** Evaluates caveats by name; the caveats module implements it over CEL. */
export interface CaveatEvaluator {
  evaluate(name: string, context: Record<string, unknown>): CaveatResult;
}

export type Permissionship = 'allowed' | 'denied' | 'conditional';

export interface CheckResult {
  permissionship: Permissionship;
  /** For `conditional`: the caveat parameters whose values would decide it. */
  missing?: string[];
  /** Only with `explain: true`: the path that granted, what is missing, or why it was denied. */
  explanation?: Explanation;
}

export interface CheckRequest {
  resource: ObjectRef;
  /** A permission or relation of the resource type. */
  permission: string;
  subject: SubjectRef;
  /** Caveat context of the request; a relationship's own context overrides it. */
  context?: Record<string, unknown>;
  /** Also explain the answer. A separate walk: a plain check allocates nothing for it. */
  explain?: boolean;
}

export interface EngineDeps {
  schema: Schema;
  reader: RelationshipReader;
  caveats: CaveatEvaluator;
  /** Nested relations one check may walk (SpiceDB's default is 50). */
  maxDepth?: number;
  clock?: () => number;
}

// Outcome of a walk: yes, no, "depends on caveat parameters that were not given", or "cannot
// be decided" (a caveat that failed to evaluate, a cycle through an exclusion). The last one
// is Kleene's unknown with its reason: it never grants and never denies by itself, a `+` with
// a yes or an `&` / `-` with a no decides without it, and a verdict that depends on it is an
// error (SpiceDB fails such a check instead of answering it).
type Outcome = { s: 0 } | { s: 1 } | { s: 2; missing: Set<string> } | { s: 3; error: GatehouseError };
const NO: Outcome = { s: 0 };
const YES: Outcome = { s: 1 };
const maybe = (missing: Iterable<string>): Outcome => ({ s: 2, missing: new Set(missing) });

function or(a: Outcome, b: Outcome): Outcome {
  if (a.s === 1 || b.s === 1) return YES;
  if (a.s === 3) return a;
  if (b.s === 3) return b;
  if (a.s === 0) return b;
  if (b.s === 0) return a;
  return maybe([...a.missing, ...b.missing]);
}

function and(a: Outcome, b: Outcome): Outcome {
  if (a.s === 0 || b.s === 0) return NO;
  if (a.s === 3) return a;
  if (b.s === 3) return b;
  if (a.s === 1) return b;
  if (b.s === 1) return a;
  return maybe([...a.missing, ...b.missing]);
}

/** `a - b`: yes only when a is yes and b is no; a conditional on either side stays conditional. */
function butNot(a: Outcome, b: Outcome): Outcome {
  if (a.s === 0 || b.s === 1) return NO;
  if (a.s === 3) return a;
  if (b.s === 3) return b;
  if (a.s === 1 && b.s === 0) return YES;
  return maybe([...(a.s === 2 ? a.missing : []), ...(b.s === 2 ? b.missing : [])]);
}

/** An error of a caveat evaluation as an undecided outcome; anything else is a bug and propagates. */
function undecided(error: unknown): Outcome {
  if (error instanceof GatehouseError) return { s: 3, error };
  throw error;
}

const normalise = (subject: SubjectRef): SubjectRef =>
  subject.relation === '...' || subject.relation === '' ? { type: subject.type, id: subject.id } : subject;

/**
 * The permission engine: check, lookup-resources and lookup-subjects over one relationship
 * reader (one revision). Caveats give three-valued answers; expired relationships are
 * ignored; cycles in data terminate; walks deeper than maxDepth fail with a clear error. A
 * verdict that hangs on a caveat that failed to evaluate or on a cycle through an exclusion
 * throws that error (AUTHZ_CAVEAT_CONTEXT_INVALID, AUTHZ_CAVEAT_EVALUATION_FAILED, AUTHZ_CYCLE).
 */
export function createEngine({ schema: declared, reader, caveats, maxDepth = 50, clock = Date.now }: EngineDeps) {
  const schema = lowerArrowChains(declared);
  const reverse = reverseEdges(schema);
  const monotone = monotonePermissions(schema);

  function definition(type: string): Definition {
    const def = schema.definitions.get(type);
    if (!def) throw engineErrors.create('AUTHZ_UNKNOWN_TYPE', { type });
    return def;
  }

  /** One subject, one context, one moment: results can be shared across resources. */
  function session(subjectIn: SubjectRef, context: Record<string, unknown>) {
    const subject = normalise(subjectIn);
    const now = clock();
    const memo = new Map<string, Outcome>();
    // Key → how many exclusions' subtracted sides the walk was inside when it entered the key.
    const onPath = new Map<string, number>();
    let negations = 0;
    let nesting = 0;
    let cycleCuts = 0;

    function caveatOf(r: Relationship): Outcome {
      if (r.expiresAt !== undefined && r.expiresAt <= now) return NO;
      if (!r.caveat) return YES;
      // The relationship's own context wins over the request's (SpiceDB semantics).
      const merged = r.caveat.context ? { ...context, ...r.caveat.context } : context;
      let result: CaveatResult;
      try {
        result = caveats.evaluate(r.caveat.name, merged);
      } catch (error) {
        // A caveat that cannot be evaluated (a context value of the wrong type, a runtime error
        // such as a division by zero) is undecided, not false: read as false under an
        // exclusion it would lift a ban for whoever controls the context.
        return undecided(error);
      }
      if (result.result === 'true') return YES;
      if (result.result === 'false') return NO;
      return maybe(result.missing);
    }

    function evaluate(type: string, id: string, name: string): Outcome {
      // A set contains itself: `group:eng#member` is a member of group:eng#member.
      if (subject.relation !== undefined && subject.type === type && subject.id === id && subject.relation === name) return YES;
      const key = `${type}:${id}#${name}`;
      const cached = memo.get(key);
      if (cached) return cached;
      const entered = onPath.get(key);
      if (entered !== undefined) {
        cycleCuts++;
        // A cycle in the data. Through unions, intersections and arrows only, cutting it as
        // "no" gives the least fixed point: a grant needs a finite chain of relationships.
        // Through the subtracted side of an exclusion (`viewer = direct - restricted` with
        // `restricted` reaching `viewer` again) no answer is sound, so the walk is undecided.
        return negations > entered ? { s: 3, error: engineErrors.create('AUTHZ_CYCLE', { object: key }) } : NO;
      }
      if (onPath.size >= maxDepth) throw engineErrors.create('AUTHZ_DEPTH_EXCEEDED', { maxDepth });
      const def = definition(type);
      const cutsBefore = cycleCuts;
      onPath.set(key, negations);
      let outcome: Outcome;
      try {
        const permission = def.permissions.get(name);
        if (permission) outcome = expression(def, id, permission.expr);
        else if (def.relations.has(name)) outcome = relation(type, id, name);
        else throw engineErrors.create('AUTHZ_UNKNOWN_PERMISSION', { type, name });
      } finally {
        onPath.delete(key);
      }
      // Only results computed without cutting a cycle are path-independent.
      if (cycleCuts === cutsBefore) memo.set(key, outcome);
      return outcome;
    }

    function relation(type: string, id: string, name: string): Outcome {
      let outcome: Outcome = NO;
      for (const r of reader.forResource(type, id, name)) {
        let hit: Outcome = NO;
        if (
          r.subjectType === subject.type &&
          r.subjectRelation === subject.relation &&
          (r.subjectId === subject.id || (r.subjectId === '*' && subject.relation === undefined))
        ) {
          hit = YES;
        } else if (r.subjectRelation !== undefined && r.subjectId !== '*') {
          const cond = caveatOf(r);
          if (cond.s === 0) continue;
          hit = and(cond, evaluate(r.subjectType, r.subjectId, r.subjectRelation));
          outcome = or(outcome, hit);
          if (outcome.s === 1) return YES;
          continue;
        } else {
          continue;
        }
        outcome = or(outcome, and(caveatOf(r), hit));
        if (outcome.s === 1) return YES;
      }
      return outcome;
    }

    function arrow(def: Definition, id: string, tupleset: string, computed: string, mode: 'any' | 'all'): Outcome {
      let outcome: Outcome = mode === 'all' ? YES : NO;
      let targets = 0;
      for (const r of reader.forResource(def.name, id, tupleset)) {
        if (r.subjectId === '*' || (r.expiresAt !== undefined && r.expiresAt <= now)) continue;
        const cond = caveatOf(r);
        // For .any() a relationship whose caveat is false is simply absent; for .all() it is a
        // member of the tupleset that does not grant, so the whole arrow is false (SpiceDB).
        if (cond.s === 0) {
          if (mode === 'all') return NO;
          continue;
        }
        targets++;
        const target = schema.definitions.get(r.subjectType);
        const has = target !== undefined && (target.relations.has(computed) || target.permissions.has(computed));
        const reached = has ? and(cond, evaluate(r.subjectType, r.subjectId, computed)) : NO;
        if (mode === 'any') {
          outcome = or(outcome, reached);
          if (outcome.s === 1) return YES;
        } else {
          outcome = and(outcome, reached);
          if (outcome.s === 0) return NO;
        }
      }
      return mode === 'all' && targets === 0 ? NO : outcome;
    }

    // Each nested expression is a frame of this walk, as each relation is: bounded together
    // (a deep expression in every object of a deep chain must not exhaust the stack).
    function expression(def: Definition, id: string, expr: PermissionExpr): Outcome {
      if (++nesting > MAX_NESTING) throw engineErrors.create('AUTHZ_NESTING_EXCEEDED', { max: MAX_NESTING });
      const outcome = expressionOf(def, id, expr);
      nesting--;
      return outcome;
    }

    function expressionOf(def: Definition, id: string, expr: PermissionExpr): Outcome {
      switch (expr.kind) {
        case 'nil':
          return NO;
        case 'self':
          return subject.relation === undefined && subject.type === def.name && subject.id === id ? YES : NO;
        case 'ref':
          return evaluate(def.name, id, expr.name);
        case 'arrow':
          return arrow(def, id, expr.tupleset, expr.computed, expr.mode);
        case 'arrow-chain':
          return unlowered();
        case 'union': {
          let outcome: Outcome = NO;
          for (const child of expr.children) {
            outcome = or(outcome, expression(def, id, child));
            if (outcome.s === 1) return YES;
          }
          return outcome;
        }
        case 'intersection': {
          let outcome: Outcome = YES;
          for (const child of expr.children) {
            outcome = and(outcome, expression(def, id, child));
            if (outcome.s === 0) return NO;
          }
          return outcome;
        }
        case 'exclusion': {
          const base = expression(def, id, expr.base);
          if (base.s === 0) return NO;
          negations++;
          try {
            return butNot(base, expression(def, id, expr.subtract));
          } finally {
            negations--;
          }
        }
      }
    }

    return { evaluate };
  }

  function toResult(outcome: Outcome): CheckResult {
    if (outcome.s === 3) throw outcome.error;
    if (outcome.s === 1) return { permissionship: 'allowed' };
    if (outcome.s === 0) return { permissionship: 'denied' };
    return { permissionship: 'conditional', missing: [...outcome.missing].sort() };
  }

  return {
    schema,
    check(request: CheckRequest): CheckResult {
      definition(request.resource.type);
      const result = toResult(session(request.subject, request.context ?? {}).evaluate(request.resource.type, request.resource.id, request.permission));
      if (request.explain) result.explanation = explainCheck({ schema, reader, caveats, maxDepth, now: clock() }, request);
      return result;
    },

    /**
     * SpiceDB's expand: the tree of userset rewrites behind a relation or permission of one
     * resource, leaves listing direct subjects (expired relationships left out).
     *
     * @example
     * engine.expand({ resource: { type: 'document', id: 'd1' }, permission: 'view' });
     * // { kind: 'exclusion', expanded: { type: 'document', id: 'd1', relation: 'view' }, children: [...] }
     */
    expand(request: ExpandRequest): ExpandNode {
      return expandTree({ schema, reader, caveats, maxDepth, now: clock() }, request);
    },

    /**
     * Every resource of `resourceType` on which the subject has the permission: a reverse walk
     * from the subject over relationships, usersets, permissions and arrows finds the
     * candidates; a check confirms each (intersections and exclusions over-approximate).
     */
    lookupResources(request: { resourceType: string; permission: string; subject: SubjectRef; context?: Record<string, unknown> }) {
      definition(request.resourceType);
      const subject = normalise(request.subject);
      const s = session(subject, request.context ?? {});
      // fact key → reached through unions and unconditional relationships only ("exact":
      // such a fact proves the permission; others are candidates a check must confirm).
      const reached = new Map<string, boolean>();
      const queue: [string, string, string, boolean][] = [];
      const reach = (type: string, id: string, name: string, exact: boolean) => {
        const k = `${type}:${id}#${name}`;
        const before = reached.get(k);
        if (before === true || (before === false && !exact)) return;
        reached.set(k, exact);
        queue.push([type, id, name, exact]);
      };
      const plain = (r: Relationship) => r.caveat === undefined && r.expiresAt === undefined;
      const reachFrom = (subjectType: string, subjectId: string, subjectRelation: string | undefined, exact: boolean) => {
        for (const r of reader.forSubject(subjectType, subjectId, subjectRelation)) reach(r.resourceType, r.resourceId, r.relation, exact && plain(r));
      };
      reachFrom(subject.type, subject.id, subject.relation, true);
      if (subject.relation === undefined) reachFrom(subject.type, '*', undefined, true);
      // A userset subject reaches its own set: group:eng#member "is" group:eng#member.
      if (subject.relation !== undefined) reach(subject.type, subject.id, subject.relation, true);
      // An object is a subject of the permissions of its own type that say `self`.
      else for (const permission of reverse.selfs.get(subject.type) ?? []) reach(subject.type, subject.id, permission, monotone.has(`${subject.type}#${permission}`));
      const exactIds = new Set<string>();
      const candidates = new Set<string>();
      for (let i = 0; i < queue.length; i++) {
        const [type, id, name, exact] = queue[i]!;
        if (type === request.resourceType && name === request.permission) (exact ? exactIds : candidates).add(id);
        reachFrom(type, id, name, exact);
        for (const permission of reverse.refs.get(`${type}#${name}`) ?? []) reach(type, id, permission, exact && monotone.has(`${type}#${permission}`));
        for (const edge of reverse.arrows.get(`${type}#${name}`) ?? []) {
          const viaExact = exact && monotone.has(`${edge.resourceType}#${edge.permission}`);
          // An arrow walks to the subject object whatever relation the tupleset names (folder:x#parent).
          for (const r of reader.forSubjectObject(type, id)) {
            if (r.resourceType === edge.resourceType && r.relation === edge.tupleset) reach(r.resourceType, r.resourceId, edge.permission, viaExact && plain(r));
          }
        }
      }
      const allowed: string[] = [...exactIds];
      const conditional: string[] = [];
      for (const id of candidates) {
        if (exactIds.has(id)) continue;
        const outcome = s.evaluate(request.resourceType, id, request.permission);
        // As check: a candidate that cannot be decided fails the lookup, it is not left out.
        if (outcome.s === 3) throw outcome.error;
        if (outcome.s === 1) allowed.push(id);
        else if (outcome.s === 2) conditional.push(id);
      }
      return { allowed: allowed.sort(), conditional: conditional.sort() };
    },

    /**
     * Every subject of `subjectType` (with `subjectRelation`, if given) that has the permission
     * on the resource: a forward walk collects the candidate subjects (`*` for a public
     * wildcard); a check confirms each.
     */
    lookupSubjects(request: { resource: ObjectRef; permission: string; subjectType: string; subjectRelation?: string; context?: Record<string, unknown> }) {
      const candidates = new Set<string>();
      const seen = new Set<string>();
      const walk = (type: string, id: string, name: string, depth: number) => {
        const k = `${type}:${id}#${name}`;
        if (seen.has(k) || depth > maxDepth) return;
        seen.add(k);
        if (type === request.subjectType && name === request.subjectRelation) candidates.add(id);
        const def = definition(type);
        const permission = def.permissions.get(name);
        if (permission) {
          const { refs, arrows, self } = collectMentions(permission.expr);
          if (self && type === request.subjectType && request.subjectRelation === undefined) candidates.add(id);
          for (const ref of refs) walk(type, id, ref, depth + 1);
          for (const a of arrows) {
            for (const r of reader.forResource(type, id, a.tupleset)) {
              const target = schema.definitions.get(r.subjectType);
              if (r.subjectId !== '*' && target && (target.relations.has(a.computed) || target.permissions.has(a.computed))) walk(r.subjectType, r.subjectId, a.computed, depth + 1);
            }
          }
          return;
        }
        for (const r of reader.forResource(type, id, name)) {
          if (r.subjectType === request.subjectType && r.subjectRelation === request.subjectRelation) candidates.add(r.subjectId);
          if (r.subjectRelation !== undefined && r.subjectId !== '*') walk(r.subjectType, r.subjectId, r.subjectRelation, depth + 1);
        }
      };
      walk(request.resource.type, request.resource.id, request.permission, 0);
      // A public wildcard covers every subject of the type; each still has to pass the check
      // (an exclusion may take some out), so they all become candidates.
      if (candidates.has('*') && request.subjectRelation === undefined) for (const id of reader.objectIds(request.subjectType)) candidates.add(id);
      const allowed: string[] = [];
      const conditional: string[] = [];
      for (const id of candidates) {
        const subject: SubjectRef = { type: request.subjectType, id, ...(request.subjectRelation ? { relation: request.subjectRelation } : {}) };
        const outcome = session(subject, request.context ?? {}).evaluate(request.resource.type, request.resource.id, request.permission);
        if (outcome.s === 3) throw outcome.error;
        if (outcome.s === 1) allowed.push(id);
        else if (outcome.s === 2) conditional.push(id);
      }
      return { allowed: allowed.sort(), conditional: conditional.sort() };
    },
  };
}

export type Engine = ReturnType<typeof createEngine>;
export type { ExpandedRef, ExpandNode, ExpandRequest, ExpandSubject } from './expand.js';
export type { ExplainedPath, Explanation } from './explain.js';
