/**
 * The permission model shared by the schema parser, the caveat compiler and the engine.
 * Nothing here knows about storage, HTTP or SQL.
 */

/** 1-based line and column in the schema text. */
export interface Position {
  line: number;
  column: number;
}

/** A parsed and validated schema: SpiceDB schema language semantics. */
export interface Schema {
  /** By full type name, slash-qualified names kept as written (`example/user`). */
  definitions: Map<string, Definition>;
  /** By full caveat name (`foo/bar/only_on_tuesday` allowed). */
  caveats: Map<string, CaveatDefinition>;
  /** `use expiration` present: relations may allow `with expiration`. */
  useExpiration: boolean;
}

export interface Definition {
  name: string;
  relations: Map<string, Relation>;
  permissions: Map<string, Permission>;
  position: Position;
}

export interface Relation {
  name: string;
  /** Every subject type the relation accepts, in declaration order. */
  allowed: AllowedSubject[];
  position: Position;
}

export interface AllowedSubject {
  /** Subject type, e.g. `user`, `group`. */
  type: string;
  /** `group#member`: the subject is a set (userset); absent for a direct object subject. */
  relation?: string;
  /** `user:*`: the public wildcard. */
  wildcard?: boolean;
  /** `with some_caveat`: relationships of this shape must (or, with a plain twin, may) carry the caveat. */
  caveat?: string;
  /** `with expiration` (or `with some_caveat and expiration`). */
  expiration?: boolean;
}

export interface Permission {
  name: string;
  expr: PermissionExpr;
  position: Position;
}

export type PermissionExpr =
  | { kind: 'union'; children: PermissionExpr[] }
  | { kind: 'intersection'; children: PermissionExpr[] }
  /** `base - subtract` */
  | { kind: 'exclusion'; base: PermissionExpr; subtract: PermissionExpr }
  /** A relation or permission of the same object. */
  | { kind: 'ref'; name: string }
  /** `tupleset->computed` (mode any) or `tupleset.any(computed)` / `tupleset.all(computed)`. */
  | { kind: 'arrow'; tupleset: string; computed: string; mode: 'any' | 'all' }
  /**
   * Nested arrows, `a->b->c` or `a.any(b).all(c)->d`: walk each hop in turn (each quantified
   * by its own mode: any or all of the objects it reaches), then `computed` on the objects the
   * last hop reaches. Always two hops or more; `compileSchema` turns it into plain arrows.
   */
  | { kind: 'arrow-chain'; hops: ArrowHop[]; computed: string }
  /** `self` (`use self`): the resource itself, as a direct subject of its own type. */
  | { kind: 'self' }
  | { kind: 'nil' };

export interface ArrowHop {
  /** A relation of the objects the previous hop reached (of the resource, for the first hop). */
  relation: string;
  mode: 'any' | 'all';
}

export interface CaveatParameter {
  name: string;
  /** The declared type as written, normalised: `int`, `uint`, `double`, `bool`, `string`, `bytes`, `duration`, `timestamp`, `ipaddress`, `any`, `list<T>`, `map<T>`. */
  type: string;
}

export interface CaveatDefinition {
  name: string;
  parameters: CaveatParameter[];
  /** The CEL expression text. */
  expression: string;
  position: Position;
}

/** `type:id#relation@subjectType:subjectId[#subjectRelation][caveat[:{context}]][expiration:RFC3339]` */
export interface Relationship {
  resourceType: string;
  resourceId: string;
  relation: string;
  subjectType: string;
  /** `*` for the public wildcard. */
  subjectId: string;
  /** A userset subject (`group:eng#member`); absent for a direct subject (`...` in the text). */
  subjectRelation?: string;
  caveat?: { name: string; context?: Record<string, unknown> };
  /** Epoch milliseconds; an expired relationship is ignored. */
  expiresAt?: number;
}

export interface ObjectRef {
  type: string;
  id: string;
}

export interface SubjectRef extends ObjectRef {
  /** Absent (or `...`) for a direct subject. */
  relation?: string;
}

/** The outcome of a caveat evaluation. */
export type CaveatResult = { result: 'true' } | { result: 'false' } | { result: 'missing'; missing: string[] };
