import { unlowered } from '../schema/arrow-chains.js';
import type { PermissionExpr, Schema } from '../types.js';

export interface ReverseEdges {
  /** Permissions of the same object that mention `type#name` directly. */
  refs: Map<string, string[]>;
  /** `D#P = ts->name` where ts may point at objects of `type`: D:d reaches P when D:d#ts@type:id. */
  arrows: Map<string, { resourceType: string; tupleset: string; permission: string }[]>;
  /** By type: the permissions that mention `self`, which an object of the type has on itself. */
  selfs: Map<string, string[]>;
}

const key = (type: string, name: string) => `${type}#${name}`;

export interface Mentions {
  /** Relations and permissions of the same object. */
  refs: Set<string>;
  arrows: { tupleset: string; computed: string }[];
  /** `self`: the object itself is a subject. */
  self: boolean;
}

/**
 * The relations/permissions, arrows and `self` an expression mentions where they can grant:
 * everywhere but the subtracted side of an exclusion (which only removes).
 */
export function collectMentions(expr: PermissionExpr, into: Mentions = { refs: new Set(), arrows: [], self: false }): Mentions {
  switch (expr.kind) {
    case 'ref':
      into.refs.add(expr.name);
      break;
    case 'arrow':
      into.arrows.push({ tupleset: expr.tupleset, computed: expr.computed });
      break;
    case 'self':
      into.self = true;
      break;
    case 'union':
    case 'intersection':
      for (const child of expr.children) collectMentions(child, into);
      break;
    case 'exclusion':
      // Only the base can make something reachable; the subtracted side only removes.
      collectMentions(expr.base, into);
      break;
    case 'arrow-chain':
      unlowered();
      break;
    case 'nil':
      break;
  }
  return into;
}

/**
 * For reverse walks (lookup-resources): which permissions can become true when a subject
 * reaches `type#name`. An over-approximation through intersections; callers confirm each
 * candidate with a check.
 */
export function reverseEdges(schema: Schema): ReverseEdges {
  const refs = new Map<string, string[]>();
  const arrows = new Map<string, { resourceType: string; tupleset: string; permission: string }[]>();
  const selfs = new Map<string, string[]>();
  const push = <T>(map: Map<string, T[]>, k: string, value: T) => {
    const list = map.get(k);
    if (list) list.push(value);
    else map.set(k, [value]);
  };
  for (const def of schema.definitions.values()) {
    for (const permission of def.permissions.values()) {
      const mentions = collectMentions(permission.expr);
      for (const name of mentions.refs) push(refs, key(def.name, name), permission.name);
      if (mentions.self) push(selfs, def.name, permission.name);
      for (const walk of mentions.arrows) {
        const relation = def.relations.get(walk.tupleset);
        if (!relation) continue;
        for (const targetType of new Set(relation.allowed.map((a) => a.type))) {
          push(arrows, key(targetType, walk.computed), { resourceType: def.name, tupleset: walk.tupleset, permission: permission.name });
        }
      }
    }
  }
  return { refs, arrows, selfs };
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
      case 'self':
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
