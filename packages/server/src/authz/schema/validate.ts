/**
 * Semantic checks of a parsed schema, as SpiceDB makes them before it accepts a schema:
 * protovalidate name rules (proto/internal/core/v1/core.proto), the type system
 * (pkg/schema/typesystem_validation.go), caveat parameter types
 * (pkg/caveats/types) and permission cycles (internal/namespace/aliasing.go).
 */
import type { AllowedSubject, CaveatDefinition, Definition, Permission, PermissionExpr, Position, Relation, Schema } from '../types.js';
import { chainText } from './arrow-chains.js';
import { schemaErrors } from './errors.js';
import type { NodePositions, SourcePositions } from './parser.js';

// core.proto: NamespaceDefinition.name, Relation.name, CaveatDefinition.name.
const NAME_RULES = {
  definition: { pattern: /^(?:[a-z][a-z0-9_]{1,62}[a-z0-9]\/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$/, maxBytes: 128, rule: 'lowercase letters, digits and _, 3 to 64 characters per /-separated segment' },
  relation: { pattern: /^[a-z][a-z0-9_]{1,62}[a-z0-9]$/, maxBytes: 64, rule: 'lowercase letters, digits and _, 3 to 64 characters, starting with a letter' },
  permission: { pattern: /^[a-z][a-z0-9_]{1,62}[a-z0-9]$/, maxBytes: 64, rule: 'lowercase letters, digits and _, 3 to 64 characters, starting with a letter' },
  caveat: { pattern: /^[a-zA-Z0-9_][a-zA-Z0-9/_|-]{0,127}$/, maxBytes: 128, rule: 'letters, digits, _, /, | and -, at most 128 characters' },
} as const;

/** pkg/caveats/types/basic.go and ipaddress.go; `list` and `map` take one type parameter. */
const CAVEAT_BASIC_TYPES = new Set(['any', 'bool', 'string', 'int', 'uint', 'double', 'bytes', 'duration', 'timestamp', 'ipaddress']);
const CAVEAT_GENERIC_TYPES = new Map([
  ['list', 1],
  ['map', 1],
]);

interface Where {
  line: number;
  column: number;
  source?: string;
}

/**
 * Throws the first reason (a GatehouseError from `schemaErrors`) why SpiceDB would refuse
 * the schema. `positions` (from `parseSchemaWithPositions`) lets errors point at the exact
 * token; without it they point at the enclosing relation, permission or caveat.
 *
 * @example
 * const schema = parseSchema('definition doc {\n  relation viewer: user\n}');
 * validateSchema(schema); // throws AUTHZ_SCHEMA_UNKNOWN_TYPE: object type "user" is not defined
 */
export function validateSchema(schema: Schema, positions?: SourcePositions): void {
  const where = (object: object, fallback: Position, part?: Exclude<keyof NodePositions, 'source'>): Where => {
    const found = positions?.get(object);
    const position = (part === undefined ? undefined : found?.[part]) ?? found?.start ?? fallback;
    return { line: position.line, column: position.column, ...(found?.source === undefined ? {} : { source: found.source }) };
  };
  const context: Context = { schema, where, noWildcard: new Set() };

  checkTopLevelNames(context);
  for (const caveat of schema.caveats.values()) checkCaveat(context, caveat);
  for (const definition of schema.definitions.values()) {
    checkMembers(context, definition);
    for (const relation of definition.relations.values()) checkRelation(context, definition, relation);
    for (const permission of definition.permissions.values()) checkExpression(context, definition, permission, permission.expr);
    checkPermissionCycles(context, definition);
  }
}

interface Context {
  schema: Schema;
  where: (object: object, fallback: Position, part?: Exclude<keyof NodePositions, 'source'>) => Where;
  /** `type#relation` keys known to reach no wildcard: keeps the wildcard checks linear in the schema. */
  noWildcard: Set<string>;
}

function checkName(where: Where, kind: keyof typeof NAME_RULES, name: string): void {
  const { pattern, maxBytes, rule } = NAME_RULES[kind];
  if (!pattern.test(name) || Buffer.byteLength(name) > maxBytes) throw schemaErrors.create('AUTHZ_SCHEMA_INVALID_NAME', { ...where, kind, name, rule });
}

function checkTopLevelNames({ schema, where }: Context): void {
  for (const [key, definition] of schema.definitions) {
    checkKey(where(definition, definition.position), 'definition', key, definition.name);
    checkName(where(definition, definition.position), 'definition', definition.name);
  }
  for (const [key, caveat] of schema.caveats) {
    checkKey(where(caveat, caveat.position), 'caveat', key, caveat.name);
    checkName(where(caveat, caveat.position), 'caveat', caveat.name);
    // SpiceDB: "found name reused between multiple definitions and/or caveats".
    const definition = schema.definitions.get(caveat.name);
    if (definition !== undefined) {
      const later = isBefore(definition.position, caveat.position) ? caveat : definition;
      throw schemaErrors.create('AUTHZ_SCHEMA_DUPLICATE', { ...where(later, later.position), kind: 'definition or caveat', name: caveat.name, scope: '' });
    }
  }
}

/** A hand-built Schema whose map key and element name disagree would check one name and serve another. */
function checkKey(at: Where, kind: string, key: string, name: string): void {
  if (key !== name) throw schemaErrors.create('AUTHZ_SCHEMA_MALFORMED', { ...at, detail: `${kind} "${name}" is stored under the key "${key}"` });
}

function isBefore(a: Position, b: Position): boolean {
  return a.line < b.line || (a.line === b.line && a.column < b.column);
}

function checkCaveat({ where }: Context, caveat: CaveatDefinition): void {
  const at = where(caveat, caveat.position);
  if (caveat.parameters.length === 0) throw schemaErrors.create('AUTHZ_SCHEMA_MALFORMED', { ...at, detail: `caveat "${caveat.name}" must have at least one parameter` });
  if (caveat.expression.trim() === '') throw schemaErrors.create('AUTHZ_SCHEMA_MALFORMED', { ...at, detail: `caveat "${caveat.name}" has an empty expression` });
  const seen = new Set<string>();
  for (const parameter of caveat.parameters) {
    if (seen.has(parameter.name)) throw schemaErrors.create('AUTHZ_SCHEMA_DUPLICATE', { ...where(parameter, caveat.position), kind: 'parameter', name: parameter.name, scope: ` in caveat "${caveat.name}"` });
    seen.add(parameter.name);
    const problem = caveatTypeProblem(parameter.type);
    if (problem !== undefined) {
      throw schemaErrors.create('AUTHZ_SCHEMA_UNKNOWN_PARAMETER_TYPE', { ...where(parameter, caveat.position, 'type'), caveat: caveat.name, parameter: parameter.name, type: parameter.type, detail: problem });
    }
  }
}

/** Why a caveat parameter type is not one SpiceDB knows, or undefined when it is. */
export function caveatTypeProblem(type: string): string | undefined {
  const tokens = type.match(/[A-Za-z0-9_]+|[<>,]|\S/g) ?? [];
  let index = 0;
  const parse = (): string | undefined => {
    const name = tokens[index++];
    if (name === undefined || !/^[A-Za-z0-9_]+$/.test(name)) return `expected a type name, found ${name === undefined ? 'nothing' : `"${name}"`}`;
    const arity = CAVEAT_GENERIC_TYPES.get(name);
    if (tokens[index] !== '<') {
      if (CAVEAT_BASIC_TYPES.has(name)) return undefined;
      return arity === undefined ? `unknown type "${name}"` : `"${name}" needs ${arity} type parameter, as in ${name}<string>`;
    }
    if (arity === undefined) return CAVEAT_BASIC_TYPES.has(name) ? `"${name}" takes no type parameters` : `unknown type "${name}"`;
    index++;
    let count = 0;
    for (;;) {
      const problem = parse();
      if (problem !== undefined) return problem;
      count++;
      if (tokens[index] !== ',') break;
      index++;
    }
    if (tokens[index++] !== '>') return 'expected ">"';
    return count === arity ? undefined : `"${name}" takes ${arity} type parameter, found ${count}`;
  };
  const problem = parse();
  if (problem !== undefined) return problem;
  return index === tokens.length ? undefined : `unexpected "${tokens[index]}" after the type`;
}

/** Names of relations and permissions, and the clash between the two (SpiceDB keeps both in one namespace). */
function checkMembers({ where }: Context, definition: Definition): void {
  for (const [key, relation] of definition.relations) {
    checkKey(where(relation, relation.position), 'relation', key, relation.name);
    checkName(where(relation, relation.position), 'relation', relation.name);
  }
  for (const [key, permission] of definition.permissions) {
    checkKey(where(permission, permission.position), 'permission', key, permission.name);
    checkName(where(permission, permission.position), 'permission', permission.name);
    const relation = definition.relations.get(permission.name);
    if (relation !== undefined) {
      const later = isBefore(relation.position, permission.position) ? permission : relation;
      throw schemaErrors.create('AUTHZ_SCHEMA_DUPLICATE', { ...where(later, later.position), kind: 'relation or permission', name: permission.name, scope: ` in definition "${definition.name}"` });
    }
  }
}

const hasMember = (definition: Definition | undefined, name: string) => definition !== undefined && (definition.relations.has(name) || definition.permissions.has(name));

/** How SpiceDB prints an allowed subject (pkg/schema/definition.go SourceForAllowedRelation); two equal ones are duplicates. */
function subjectSource(subject: AllowedSubject): string {
  const base = subject.wildcard ? `${subject.type}:*` : subject.relation !== undefined ? `${subject.type}#${subject.relation}` : subject.type;
  const traits = [subject.caveat, subject.expiration ? 'expiration' : undefined].filter((t) => t !== undefined);
  return traits.length === 0 ? base : `${base} with ${traits.join(' and ')}`;
}

function checkRelation(context: Context, definition: Definition, relation: Relation): void {
  const { schema, where } = context;
  if (relation.allowed.length === 0) {
    throw schemaErrors.create('AUTHZ_SCHEMA_MALFORMED', { ...where(relation, relation.position), detail: `relation "${relation.name}" must allow at least one subject type` });
  }
  const seen = new Set<string>();
  for (const subject of relation.allowed) {
    const at = (part?: 'relation' | 'caveat' | 'expiration') => where(subject, relation.position, part);
    const source = subjectSource(subject);
    if (seen.has(source)) throw schemaErrors.create('AUTHZ_SCHEMA_DUPLICATE', { ...at(), kind: 'subject type', name: source, scope: ` on relation "${definition.name}#${relation.name}"` });
    seen.add(source);

    const subjectDefinition = schema.definitions.get(subject.type);
    if (subjectDefinition === undefined) throw schemaErrors.create('AUTHZ_SCHEMA_UNKNOWN_TYPE', { ...at(), type: subject.type, definition: definition.name, relation: relation.name });
    if (subject.wildcard && subject.relation !== undefined) {
      throw schemaErrors.create('AUTHZ_SCHEMA_MALFORMED', { ...at(), detail: `subject type "${subject.type}" cannot be both a wildcard and #${subject.relation}` });
    }
    if (subject.relation !== undefined) {
      if (!hasMember(subjectDefinition, subject.relation)) {
        throw schemaErrors.create('AUTHZ_SCHEMA_UNKNOWN_RELATION', {
          ...at('relation'),
          type: subject.type,
          name: subject.relation,
          detail: `"${subject.relation}" is neither a relation nor a permission of "${subject.type}"`,
        });
      }
      // SpiceDB: a subject set of another type may not bring in a wildcard ("wildcard
      // relations cannot be transitively included"); it skips the check on its own type.
      if (subject.type !== definition.name) {
        const wildcard = wildcardReachedBy(context, subject.type, subject.relation);
        if (wildcard !== undefined) {
          throw schemaErrors.create('AUTHZ_SCHEMA_WILDCARD_MISUSE', {
            ...at(),
            detail: `relation "${definition.name}#${relation.name}" allows ${subject.type}#${subject.relation}, which includes the wildcard ${wildcard.type}:* via ${wildcard.via}; wildcards cannot be included through a subject set`,
          });
        }
      }
    }
    if (subject.caveat !== undefined && !schema.caveats.has(subject.caveat)) {
      // Without `use expiration`, `with expiration` reads as a caveat named "expiration".
      if (subject.caveat === 'expiration' && !schema.useExpiration) throw schemaErrors.create('AUTHZ_SCHEMA_EXPIRATION_DISABLED', { ...at('caveat') });
      throw schemaErrors.create('AUTHZ_SCHEMA_UNKNOWN_CAVEAT', { ...at('caveat'), caveat: subject.caveat });
    }
    if (subject.expiration && !schema.useExpiration) throw schemaErrors.create('AUTHZ_SCHEMA_EXPIRATION_DISABLED', { ...at('expiration') });
  }
}

/**
 * The first wildcard `type:*` that relation `type#relation` admits, directly or through
 * the subject sets it allows (`group#member`); permissions are not followed, as in SpiceDB's
 * referencesWildcardType.
 */
function wildcardReachedBy({ schema, noWildcard }: Context, type: string, relationName: string): { type: string; via: string } | undefined {
  // Depth-first in the order the subjects are written, with an explicit stack: a chain of
  // subject sets across many types must not exhaust the call stack. A walk that finds no
  // wildcard proves it for every key it saw, so no later walk goes there again.
  const seen = new Set<string>();
  const stack: { key: string; allowed: readonly AllowedSubject[]; next: number }[] = [];
  const enter = (t: string, name: string) => {
    const key = `${t}#${name}`;
    if (seen.has(key) || noWildcard.has(key)) return;
    seen.add(key);
    stack.push({ key, allowed: schema.definitions.get(t)?.relations.get(name)?.allowed ?? [], next: 0 });
  };
  enter(type, relationName);
  while (stack.length > 0) {
    const top = stack.at(-1)!;
    const subject = top.allowed[top.next++];
    if (subject === undefined) stack.pop();
    else if (subject.wildcard) return { type: subject.type, via: top.key };
    else if (subject.relation !== undefined) enter(subject.type, subject.relation);
  }
  for (const key of seen) noWildcard.add(key);
  return undefined;
}

function checkExpression(context: Context, definition: Definition, permission: Permission, expr: PermissionExpr): void {
  const { where } = context;
  const at = (part?: 'computed') => where(expr, permission.position, part);
  switch (expr.kind) {
    case 'union':
    case 'intersection':
      if (expr.children.length === 0) throw schemaErrors.create('AUTHZ_SCHEMA_MALFORMED', { ...at(), detail: `an empty ${expr.kind} in permission "${permission.name}"` });
      for (const child of expr.children) checkExpression(context, definition, permission, child);
      return;
    case 'exclusion':
      checkExpression(context, definition, permission, expr.base);
      checkExpression(context, definition, permission, expr.subtract);
      return;
    case 'nil':
      return;
    case 'ref':
      if (!hasMember(definition, expr.name)) {
        throw schemaErrors.create('AUTHZ_SCHEMA_UNKNOWN_RELATION', {
          ...at(),
          type: definition.name,
          name: expr.name,
          permission: permission.name,
          detail: `permission "${permission.name}" refers to "${expr.name}", which is neither a relation nor a permission of "${definition.name}"`,
        });
      }
      return;
    case 'self':
      return;
    case 'arrow':
      checkArrowWalk(context, definition, permission, chainText([{ relation: expr.tupleset, mode: expr.mode }], expr.computed), [{ relation: expr.tupleset, where: at() }], expr.computed, at('computed'));
      return;
    case 'arrow-chain':
      checkArrowWalk(
        context,
        definition,
        permission,
        chainText(expr.hops, expr.computed),
        expr.hops.map((hop) => ({ relation: hop.relation, where: where(hop, permission.position) })),
        expr.computed,
        at('computed'),
      );
      return;
  }
}

/**
 * An arrow (one hop) or nested arrows (several): each hop must be a relation (not a
 * permission, not reaching a wildcard) of at least one type the previous hop reaches, and
 * the target must exist on at least one type the last hop reaches.
 */
function checkArrowWalk(
  context: Context,
  definition: Definition,
  permission: Permission,
  arrow: string,
  hops: { relation: string; where: Where }[],
  computed: string,
  computedWhere: Where,
): void {
  const { schema } = context;
  let types = [definition.name];
  for (const hop of hops) {
    const owners = types.map((type) => schema.definitions.get(type)).filter((d): d is Definition => hasMember(d, hop.relation));
    const permissionOwner = owners.find((d) => d.permissions.has(hop.relation));
    if (permissionOwner !== undefined) {
      throw schemaErrors.create('AUTHZ_SCHEMA_ARROW_OVER_PERMISSION', { ...hop.where, name: hop.relation, definition: permissionOwner.name, permission: permission.name });
    }
    if (owners.length === 0) {
      throw schemaErrors.create('AUTHZ_SCHEMA_UNKNOWN_RELATION', {
        ...hop.where,
        type: types.join(' | '),
        name: hop.relation,
        permission: permission.name,
        detail: `arrow \`${arrow}\` in permission "${permission.name}" walks "${hop.relation}", which is not a relation of ${types.map((t) => `"${t}"`).join(' or ')}`,
      });
    }
    for (const owner of owners) {
      const wildcard = wildcardReachedBy(context, owner.name, hop.relation);
      if (wildcard !== undefined) {
        throw schemaErrors.create('AUTHZ_SCHEMA_WILDCARD_MISUSE', {
          ...hop.where,
          detail: `arrow \`${arrow}\` in permission "${permission.name}" walks "${hop.relation}", which includes the wildcard ${wildcard.type}:* via ${wildcard.via}; wildcards cannot be on the left of an arrow`,
        });
      }
    }
    types = [...new Set(owners.flatMap((owner) => owner.relations.get(hop.relation)!.allowed.filter((s) => !s.wildcard).map((s) => s.type)))];
  }
  // SpiceDB only warns here (lint "arrow-references-unreachable-relation"); an arrow
  // whose target exists on none of the walked types can never match, so it is refused.
  if (!types.some((type) => hasMember(schema.definitions.get(type), computed))) {
    const walked = hops[hops.length - 1]!.relation;
    throw schemaErrors.create('AUTHZ_SCHEMA_UNKNOWN_RELATION', {
      ...computedWhere,
      type: types.join(' | '),
      name: computed,
      permission: permission.name,
      detail: `arrow \`${arrow}\` in permission "${permission.name}" targets "${computed}", which exists on none of the types of "${walked}" (${types.join(', ')})`,
    });
  }
}

/**
 * A permission that reaches itself through permissions of the same object only (no arrow,
 * no relation in between) would recurse forever on every check, whatever the data.
 * SpiceDB refuses the pure alias form (`a = b`, `b = a`) when the schema is written and
 * fails the others at check time; both are refused here. Cycles through arrows or
 * relations are legal: the data decides whether they end.
 */
function checkPermissionCycles({ where }: Context, definition: Definition): void {
  const refs = new Map<string, string[]>();
  for (const permission of definition.permissions.values()) {
    refs.set(permission.name, [...permissionRefs(permission.expr)].filter((name) => definition.permissions.has(name)));
  }
  const done = new Set<string>();
  for (const permission of definition.permissions.values()) {
    const path = findCycle(permission.name, refs, done, []);
    if (path !== undefined) {
      const first = definition.permissions.get(path[0]!)!;
      throw schemaErrors.create('AUTHZ_SCHEMA_CYCLE', {
        ...where(first, first.position),
        definition: definition.name,
        cycle: path,
        detail: `permissions of "${definition.name}" refer to each other in a cycle: ${path.join(' -> ')}`,
      });
    }
  }
}

function findCycle(name: string, refs: Map<string, string[]>, done: Set<string>, path: string[]): string[] | undefined {
  const seenAt = path.indexOf(name);
  if (seenAt >= 0) return [...path.slice(seenAt), name];
  if (done.has(name)) return undefined;
  for (const next of refs.get(name) ?? []) {
    const cycle = findCycle(next, refs, done, [...path, name]);
    if (cycle !== undefined) return cycle;
  }
  done.add(name);
  return undefined;
}

function* permissionRefs(expr: PermissionExpr): Generator<string> {
  switch (expr.kind) {
    case 'ref':
      yield expr.name;
      return;
    case 'union':
    case 'intersection':
      for (const child of expr.children) yield* permissionRefs(child);
      return;
    case 'exclusion':
      yield* permissionRefs(expr.base);
      yield* permissionRefs(expr.subtract);
      return;
    default:
      return;
  }
}
