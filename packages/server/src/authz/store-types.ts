import type { Relationship } from './types.js';

/** Which relationships a read, delete or precondition means; absent fields match anything. */
export interface RelationshipFilter {
  resourceType: string;
  resourceId?: string;
  relation?: string;
  subjectType?: string;
  subjectId?: string;
  /** `...` (or absent with subjectId set) for direct subjects. */
  subjectRelation?: string;
}

export type RelationshipUpdate =
  /** Fails the whole write when the relationship exists already. */
  | { operation: 'create'; relationship: Relationship }
  /** Creates or replaces (caveat, expiration). */
  | { operation: 'touch'; relationship: Relationship }
  /** Removes it if present. */
  | { operation: 'delete'; relationship: Relationship };

export interface Precondition {
  operation: 'must_match' | 'must_not_match';
  filter: RelationshipFilter;
}

/** How many stored relationships have one shape: what a schema change must keep valid. */
export interface RelationshipShape {
  resourceType: string;
  relation: string;
  subjectType: string;
  /** `...` for direct subjects, `*` never (wildcards are subjectId '*'). */
  subjectRelation: string;
  wildcard: boolean;
  caveatName: string | null;
  expiring: boolean;
  count: number;
}

export type WriteOutcome =
  | { ok: true; revision: number }
  | { ok: false; reason: 'precondition'; precondition: Precondition }
  | { ok: false; reason: 'exists'; relationship: Relationship };

/** Permission data of a tenant; the engine reads it only through materialised indexes. */
export interface AuthzStore {
  readSchema(tenantId: string): Promise<{ text: string; revision: number } | undefined>;
  /** Stores the schema text (already validated by the caller) and bumps the revision. */
  writeSchema(tenantId: string, text: string, now: number): Promise<number>;
  readPolicies(tenantId: string): Promise<{ text: string; revision: number } | undefined>;
  /** Stores the Cedar policy text (already validated by the caller) and bumps the revision. */
  writePolicies(tenantId: string, text: string, now: number): Promise<number>;
  /** All updates and preconditions in one transaction: all or nothing. */
  write(tenantId: string, updates: RelationshipUpdate[], preconditions: Precondition[]): Promise<WriteOutcome>;
  /** Deletes every relationship matching the filter (with preconditions); the count and revision. */
  /** Deletes what any of the filters matches, in one transaction. */
  deleteMatching(tenantId: string, filters: RelationshipFilter[], preconditions: Precondition[]): Promise<WriteOutcome & { deleted?: number }>;
  read(tenantId: string, filter: RelationshipFilter, options?: { limit?: number; after?: string }): Promise<Relationship[]>;
  /** Every relationship of the tenant (index builds), streamed in pages. */
  scan(tenantId: string, pageSize?: number): AsyncIterable<Relationship[]>;
  shapes(tenantId: string): Promise<RelationshipShape[]>;
}
