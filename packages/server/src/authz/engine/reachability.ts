import type { PermissionExpr, Schema } from '../types.js';

export interface ReverseEdges {
  /** Permissions of the same object that mention `type#name` directly. */
  refs: Map<string, string[]>;
  /** `D#P = ts->name` where ts may point at objects of `type`: D:d reaches P when D:d#ts@type:id. */
  arrows: Map<string, { resourceType: string; tupleset: string; permission: string }[]>;
}

const key = (type: string, name: string) => `${type}#${name}`;

/**
 * The relations/permissions and arrows an expression mentions where they can grant:
 * everywhere but the subtracted side of an exclusion (which only removes).
 */
export function collectMentions(expr: PermissionExpr, refs: Set<string>, arrows: { tupleset: string; computed: string }[]): void {
  switch (expr.kind) {
    case 'ref':
      refs.add(expr.name);
      return;
    case 'arrow':
      arrows.push({ tupleset: expr.tupleset, computed: expr.computed });
      return;
    case 'union':
    case 'intersection':
      for (const child of expr.children) collectMentions(child, refs, arrows);
      return;
    case 'exclusion':
      // Only the base can make something reachable; the subtracted side only removes.
      collectMentions(expr.base, refs, arrows);
      return;
    case 'nil':
      return;
  }
}

/**
 * For reverse walks (lookup-resources): which permissions can become true when a subject
 * reaches `type#name`. An over-approximation through intersections; callers confirm each
 * candidate with a check.
 */
export function reverseEdges(schema: Schema): ReverseEdges {
  const refs = new Map<string, string[]>();
  const arrows = new Map<string, { resourceType: string; tupleset: string; permission: string }[]>();
  const push = <T>(map: Map<string, T[]>, k: string, value: T) => {
    const list = map.get(k);
    if (list) list.push(value);
    else map.set(k, [value]);
  };
  for (const def of schema.definitions.values()) {
    for (const permission of def.permissions.values()) {
      const direct = new Set<string>();
      const walks: { tupleset: string; computed: string }[] = [];
      collectMentions(permission.expr, direct, walks);
      for (const name of direct) push(refs, key(def.name, name), permission.name);
      for (const walk of walks) {
        const relation = def.relations.get(walk.tupleset);
        if (!relation) continue;
        for (const targetType of new Set(relation.allowed.map((a) => a.type))) {
          push(arrows, key(targetType, walk.computed), { resourceType: def.name, tupleset: walk.tupleset, permission: permission.name });
        }
      }
    }
  }
  return { refs, arrows };
}

/**
 * `type#permission` keys whose expression only unions relations, permissions and `->` /
 * `.any()` arrows: reaching any part proves the whole, so a reverse walk through them needs
 * no confirming check (intersections, exclusions and `.all()` do).
 */
export function monotonePermissions(schema: Schema): Set<string> {
  const plain = (expr: PermissionExpr): boolean => {
    switch (expr.kind) {
      case 'ref':
      case 'nil':
        return true;
      case 'arrow':
        return expr.mode === 'any';
      case 'union':
        return expr.children.every(plain);
      default:
        return false;
    }
  };
  const out = new Set<string>();
  for (const def of schema.definitions.values()) {
    for (const permission of def.permissions.values()) if (plain(permission.expr)) out.add(key(def.name, permission.name));
  }
  return out;
}
