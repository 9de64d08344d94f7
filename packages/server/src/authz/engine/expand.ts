import type { CaveatResult, Definition, ObjectRef, PermissionExpr, Relationship, Schema } from '../types.js';
import { unlowered } from '../schema/arrow-chains.js';
import type { CaveatEvaluator } from './engine.js';
import { engineErrors, MAX_NESTING } from './errors.js';
import type { RelationshipReader } from './relationship-index.js';

/** The relation or permission of one object that a node expands. */
export interface ExpandedRef {
  type: string;
  id: string;
  relation: string;
}

/** A direct subject of a relation: an object, a wildcard (`id: '*'`) or a set (`relation`). */
export interface ExpandSubject {
  type: string;
  id: string;
  /** A userset subject (`group:eng#member`); absent for a direct object. */
  relation?: string;
  /** The relationship's caveat, when it is not known to hold. */
  caveat?: string;
  /** With a request context: the caveat parameters still missing. */
  missing?: string[];
  /** Epoch milliseconds at which the relationship expires. */
  expiresAt?: number;
}

interface NodeBase {
  expanded: ExpandedRef;
  /** Reached through a caveated relationship (an arrow's tupleset, or a userset subject). */
  caveat?: string;
}

/**
 * SpiceDB's expansion tree: one userset rewrite per node. Leaves list a relation's direct
 * subjects; usersets among them are expanded further only when `depth` allows (`usersets`).
 */
export type ExpandNode =
  | (NodeBase & { kind: 'union' | 'intersection'; children: ExpandNode[] })
  | (NodeBase & { kind: 'exclusion'; children: [ExpandNode, ExpandNode] })
  | (NodeBase & {
      kind: 'leaf';
      subjects: ExpandSubject[];
      /** With `depth` > 1: the subtree of each userset subject, in subject order. */
      usersets?: ExpandNode[];
      /** The node is already being expanded higher up (a cycle in the data): not expanded again. */
      cycle?: true;
    });

export interface ExpandRequest {
  resource: ObjectRef;
  /** A permission or relation of the resource type. */
  permission: string;
  /**
   * Caveat context: when given, caveated relationships are evaluated (false ones left out, true
   * ones listed plainly, undecided ones with `caveat` and `missing`). Without it every caveated
   * relationship is listed with its caveat name.
   */
  context?: Record<string, unknown>;
  /**
   * How many levels of userset subjects to expand. 1 (the default) is SpiceDB's expand: leaves
   * list `group:eng#member` without expanding it; 2 expands those once more, and so on.
   */
  depth?: number;
}

export interface ExpandDeps {
  schema: Schema;
  reader: RelationshipReader;
  caveats: CaveatEvaluator;
  maxDepth: number;
  now: number;
}

/** A caveat verdict for one relationship: drop it, keep it plainly, or keep it marked. */
type Gate = { drop: true } | { drop: false; caveat?: string; missing?: string[] };

export function expandTree({ schema, reader, caveats, maxDepth, now }: ExpandDeps, request: ExpandRequest): ExpandNode {
  const depth = request.depth ?? 1;
  if (!Number.isInteger(depth) || depth < 1) throw new TypeError(`expand: depth must be a positive integer, got ${String(depth)}`);
  const onPath = new Set<string>();
  let nesting = 0;

  function definition(type: string): Definition {
    const def = schema.definitions.get(type);
    if (!def) throw engineErrors.create('AUTHZ_UNKNOWN_TYPE', { type });
    return def;
  }

  function gate(r: Relationship): Gate {
    if (r.expiresAt !== undefined && r.expiresAt <= now) return { drop: true };
    if (!r.caveat) return { drop: false };
    if (request.context === undefined) return { drop: false, caveat: r.caveat.name };
    const merged = r.caveat.context ? { ...request.context, ...r.caveat.context } : request.context;
    // As in check, a caveat that cannot be evaluated with this context (a value of the wrong
    // type, a runtime error) is an error, not a false caveat: dropping the relationship would
    // hide a subtracted subject from the tree.
    const result: CaveatResult = caveats.evaluate(r.caveat.name, merged);
    if (result.result === 'true') return { drop: false };
    if (result.result === 'false') return { drop: true };
    return { drop: false, caveat: r.caveat.name, missing: [...result.missing].sort() };
  }

  /** Expands `type:id#name`; `levels` is how many userset levels leaves may still expand. */
  function node(type: string, id: string, name: string, levels: number): ExpandNode {
    const expanded = { type, id, relation: name };
    const key = `${type}:${id}#${name}`;
    if (onPath.has(key)) return { kind: 'leaf', expanded, subjects: [], cycle: true };
    if (onPath.size >= maxDepth) throw engineErrors.create('AUTHZ_DEPTH_EXCEEDED', { maxDepth });
    const def = definition(type);
    onPath.add(key);
    try {
      const permission = def.permissions.get(name);
      if (permission) {
        const root = expression(def, id, expanded, permission.expr, levels);
        // SpiceDB reports `permission p = r` as a union of one child, so every permission node names itself.
        return permission.expr.kind === 'ref' || permission.expr.kind === 'arrow' ? { kind: 'union', expanded, children: [root] } : root;
      }
      if (def.relations.has(name)) return leaf(expanded, levels);
      throw engineErrors.create('AUTHZ_UNKNOWN_PERMISSION', { type, name });
    } finally {
      onPath.delete(key);
    }
  }

  function leaf(expanded: ExpandedRef, levels: number): ExpandNode {
    const subjects: ExpandSubject[] = [];
    const usersets: ExpandNode[] = [];
    for (const r of reader.forResource(expanded.type, expanded.id, expanded.relation)) {
      const g = gate(r);
      if (g.drop) continue;
      subjects.push({
        type: r.subjectType,
        id: r.subjectId,
        ...(r.subjectRelation !== undefined ? { relation: r.subjectRelation } : {}),
        ...(g.caveat ? { caveat: g.caveat } : {}),
        ...(g.missing ? { missing: g.missing } : {}),
        ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}),
      });
      if (levels > 1 && r.subjectRelation !== undefined && r.subjectId !== '*') {
        usersets.push(withCaveat(node(r.subjectType, r.subjectId, r.subjectRelation, levels - 1), g));
      }
    }
    return { kind: 'leaf', expanded, subjects, ...(levels > 1 ? { usersets } : {}) };
  }

  // The tree nests as deep as the walk: bounded, so neither the walk nor the tree's JSON
  // serialisation can exhaust the stack.
  function expression(def: Definition, id: string, expanded: ExpandedRef, expr: PermissionExpr, levels: number): ExpandNode {
    if (++nesting > MAX_NESTING) throw engineErrors.create('AUTHZ_NESTING_EXCEEDED', { max: MAX_NESTING });
    const tree = expressionOf(def, id, expanded, expr, levels);
    nesting--;
    return tree;
  }

  function expressionOf(def: Definition, id: string, expanded: ExpandedRef, expr: PermissionExpr, levels: number): ExpandNode {
    switch (expr.kind) {
      case 'nil':
        return { kind: 'leaf', expanded, subjects: [] };
      case 'self':
        // SpiceDB: `self` expands into the resource itself, as a direct subject.
        return { kind: 'leaf', expanded, subjects: [{ type: def.name, id }] };
      case 'arrow-chain':
        return unlowered();
      case 'ref':
        return node(def.name, id, expr.name, levels);
      case 'arrow': {
        const children: ExpandNode[] = [];
        for (const r of reader.forResource(def.name, id, expr.tupleset)) {
          if (r.subjectId === '*') continue;
          const target = schema.definitions.get(r.subjectType);
          // As in check: a target type without the computed relation contributes nothing.
          if (!target || !(target.relations.has(expr.computed) || target.permissions.has(expr.computed))) continue;
          const g = gate(r);
          if (g.drop) continue;
          children.push(withCaveat(node(r.subjectType, r.subjectId, expr.computed, levels), g));
        }
        return { kind: expr.mode === 'all' ? 'intersection' : 'union', expanded, children };
      }
      case 'union':
      case 'intersection':
        return { kind: expr.kind, expanded, children: expr.children.map((child) => expression(def, id, expanded, child, levels)) };
      case 'exclusion':
        return { kind: 'exclusion', expanded, children: [expression(def, id, expanded, expr.base, levels), expression(def, id, expanded, expr.subtract, levels)] };
    }
  }

  definition(request.resource.type);
  return node(request.resource.type, request.resource.id, request.permission, depth);
}

function withCaveat(n: ExpandNode, g: Gate): ExpandNode {
  return !g.drop && g.caveat ? { ...n, caveat: g.caveat } : n;
}
