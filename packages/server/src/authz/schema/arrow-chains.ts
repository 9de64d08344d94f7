/**
 * Nested arrows (`a->b->c`, `a.any(b).all(c)->d`) as plain arrows: each hop after the first
 * becomes a permission on the types the hop before it reaches, named by the rest of the
 * chain as it is written (`b->c`). Such a name can never clash with a declared one (it is
 * not an identifier), and explanations read naturally: `folder:f1#parent->view`.
 */
import type { ArrowHop, Definition, PermissionExpr, Schema } from '../types.js';

/** How the schema language writes the chain: `a->b`, `a.all(b)`, `a.all(b)->c`. */
export function chainText(hops: readonly ArrowHop[], computed: string): string {
  let text = hops[0]!.relation;
  const targets = [...hops.slice(1).map((hop) => hop.relation), computed];
  hops.forEach((hop, i) => {
    text = hop.mode === 'all' ? `${text}.all(${targets[i]})` : `${text}->${targets[i]}`;
  });
  return text;
}

const hasChain = (expr: PermissionExpr): boolean => {
  switch (expr.kind) {
    case 'arrow-chain':
      return true;
    case 'union':
    case 'intersection':
      return expr.children.some(hasChain);
    case 'exclusion':
      return hasChain(expr.base) || hasChain(expr.subtract);
    default:
      return false;
  }
};

/**
 * The same schema with every `arrow-chain` replaced by plain arrows over added permissions.
 * Returns the schema itself when it has no nested arrows. Expects a validated schema.
 *
 * @example
 * // folder { relation parent: folder  relation viewer: user }, document { relation folder: folder
 * //   permission grand_view = folder->parent->viewer }
 * lowerArrowChains(schema).definitions.get('folder')?.permissions.get('parent->viewer')?.expr;
 * // { kind: 'arrow', tupleset: 'parent', computed: 'viewer', mode: 'any' }
 */
export function lowerArrowChains(schema: Schema): Schema {
  const all = [...schema.definitions.values()];
  if (!all.some((d) => [...d.permissions.values()].some((p) => hasChain(p.expr)))) return schema;
  const definitions = new Map<string, Definition>(all.map((d) => [d.name, { ...d, permissions: new Map(d.permissions) }]));

  // Without recursion: a queue of (type, hop) to define the rest of the chain on. Each type
  // gets each rest-of-chain permission once, so the queue ends even when types form a cycle.
  const arrowFor = (owner: Definition, hops: readonly ArrowHop[], computed: string): PermissionExpr => {
    const rest = (i: number) => (i === hops.length - 1 ? computed : chainText(hops.slice(i + 1), computed));
    const arrowAt = (i: number): PermissionExpr => ({ kind: 'arrow', tupleset: hops[i]!.relation, computed: rest(i), mode: hops[i]!.mode });
    const queue: [Definition, number][] = [[owner, 0]];
    for (let q = 0; q < queue.length; q++) {
      const [from, i] = queue[q]!;
      if (i === hops.length - 1) continue;
      const name = rest(i);
      const relation = from.relations.get(hops[i]!.relation);
      for (const type of new Set(relation?.allowed.filter((s) => !s.wildcard).map((s) => s.type))) {
        const target = definitions.get(type);
        // A type without the next hop's relation contributes nothing, as with any arrow.
        if (target === undefined || !target.relations.has(hops[i + 1]!.relation) || target.permissions.has(name)) continue;
        target.permissions.set(name, { name, expr: arrowAt(i + 1), position: from.position });
        queue.push([target, i + 1]);
      }
    }
    return arrowAt(0);
  };

  const lower = (owner: Definition, expr: PermissionExpr): PermissionExpr => {
    switch (expr.kind) {
      case 'arrow-chain':
        return arrowFor(owner, expr.hops, expr.computed);
      case 'union':
      case 'intersection':
        return { kind: expr.kind, children: expr.children.map((child) => lower(owner, child)) };
      case 'exclusion':
        return { kind: 'exclusion', base: lower(owner, expr.base), subtract: lower(owner, expr.subtract) };
      default:
        return expr;
    }
  };

  for (const original of all) {
    const owner = definitions.get(original.name)!;
    for (const permission of original.permissions.values()) {
      if (hasChain(permission.expr)) owner.permissions.set(permission.name, { ...permission, expr: lower(owner, permission.expr) });
    }
  }
  return { ...schema, definitions };
}

/** For the engine's walks, which only ever see schemas `lowerArrowChains` has been through. */
export function unlowered(): never {
  throw new Error('nested arrows must be lowered (lowerArrowChains) before the engine walks them');
}
