import { compileCaveats } from './caveats/index.js';
import { combine, compilePolicies, decide, type CedarEntity, type PolicySet } from './cedar/index.js';
import { createEngine, type CheckRequest, type Engine, type Permissionship } from './engine/engine.js';
import { createRelationshipIndex, type RelationshipIndex } from './engine/relationship-index.js';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { formatRelationship, relationshipChunks, relationshipKey } from './relationships/index.js';
import { compileSchema } from './schema/index.js';
import { authzServiceErrors } from './service-errors.js';
import { afterCommit } from '../store/unit-of-work.js';
import type { AuthzStore, Precondition, RelationshipFilter, RelationshipShape, RelationshipUpdate } from './store-types.js';
import type { Relationship, Schema } from './types.js';

/** How fresh the data behind an answer must be (SpiceDB's consistency modes). */
export type Consistency = { mode: 'minimize_latency' } | { mode: 'at_least_as_fresh'; token: string } | { mode: 'fully_consistent' };

export interface AuthzServiceDeps {
  store: AuthzStore;
  /** The current global revision (a cheap read). */
  currentRevision(): Promise<number>;
  /** The highest revision the change feed has delivered to `invalidate`. */
  seenRevision(): number;
  /** Makes the change feed deliver everything written so far. */
  catchUp(): Promise<void>;
  /** Runs work as one transaction (the store's unit of work): each chunk of an import and its audit event. */
  atomically<T>(work: () => Promise<T>): Promise<T>;
  clock?: () => number;
  maxDepth?: number;
}

export interface DecisionRequest extends CheckRequest {
  /** Entities (attributes, parents) Cedar policies may read about principal and resource. */
  entities?: CedarEntity[];
}

export interface Decision {
  permissionship: Permissionship;
  missing?: string[];
  explanation?: unknown;
  /** With policies: which rule decided (a forbid, a permit, an evaluation error, the graph). */
  policy?: string;
}

/**
 * Relationships per transaction of a bulk import. Between chunks the import yields to the
 * event loop, so other requests (health probes, checks, writes) are served throughout; a
 * chunk is a few tens of milliseconds of work.
 */
const IMPORT_CHUNK = 2000;

/** Consistency tokens are revisions, opaque to callers. */
export const tokenFor = (revision: number) => `gh1_${revision.toString(36)}`;
export function revisionOf(token: string): number {
  const match = /^gh1_([0-9a-z]{1,12})$/.exec(token);
  if (!match) throw authzServiceErrors.create('AUTHZ_CONSISTENCY_TOKEN_INVALID', { token: token.slice(0, 40) });
  return parseInt(match[1]!, 36);
}

interface Snapshot {
  engine: Engine;
  /** The engine's relationships, updated in place by this process's own writes. */
  index: RelationshipIndex;
  schema: Schema;
  /** The tenant's Cedar policies, parsed once; absent when it has none. */
  policies?: PolicySet;
  /** Every write at or below this revision is in the snapshot. */
  revision: number;
  /** The revision the index was read at (before any in-place patch). */
  built: number;
}

/**
 * The permission service of every tenant: schema and relationship writes (validated against
 * the schema), and engines over in-memory indexes built per revision. The change feed calls
 * `invalidate` for writes from other processes.
 */
export function createAuthzService({ store, currentRevision, seenRevision, catchUp, atomically, clock = Date.now, maxDepth }: AuthzServiceDeps) {
  const snapshots = new Map<string, Snapshot>();
  const building = new Map<string, Promise<Snapshot>>();
  /** Latest revision at which each tenant's permission data changed, as far as we know. */
  const changedAt = new Map<string, number>();
  /** Recent revisions that changed each tenant (pruned below the snapshot's revision). */
  const changes = new Map<string, number[]>();

  async function build(tenantId: string): Promise<Snapshot> {
    // Read the revision first: anything written later is newer than the snapshot claims.
    const revision = await currentRevision();
    const stored = await store.readSchema(tenantId);
    if (!stored) throw authzServiceErrors.create('AUTHZ_NO_SCHEMA', { tenant: tenantId });
    const schema = compileSchema(stored.text);
    const relationships: Relationship[] = [];
    for await (const page of store.scan(tenantId)) {
      for (const r of page) relationships.push(r);
      // A large tenant's pages are read back to back (synchronously on SQLite): let other requests in between.
      await yieldToEventLoop();
    }
    const index = createRelationshipIndex(relationships);
    const engine = createEngine({ schema, caveats: compileCaveats(schema.caveats.values()), reader: index, clock, maxDepth });
    const policyText = (await store.readPolicies(tenantId))?.text ?? '';
    return { engine, index, schema, revision, built: revision, ...(policyText.trim() ? { policies: compilePolicies(policyText) } : {}) };
  }

  async function snapshot(tenantId: string, minRevision: number): Promise<Snapshot> {
    const cached = snapshots.get(tenantId);
    if (cached && cached.revision >= minRevision) return cached;
    if (cached) {
      // Learn of every write up to the requested revision (other processes included) …
      if (seenRevision() < minRevision) await catchUp();
      const seen = seenRevision();
      if (seen >= minRevision && (changedAt.get(tenantId) ?? 0) <= cached.revision) {
        // … and if none touched this tenant, the snapshot is as fresh as the request needs.
        cached.revision = Math.max(cached.revision, seen);
        return cached;
      }
    }
    let pending = building.get(tenantId);
    if (!pending) {
      pending = build(tenantId).finally(() => building.delete(tenantId));
      building.set(tenantId, pending);
    }
    const fresh = await pending;
    const current = snapshots.get(tenantId);
    if (!current || current.revision < fresh.revision) snapshots.set(tenantId, fresh);
    return fresh;
  }

  /**
   * The snapshot a request may use right now, without waiting: `minimize_latency` or a token
   * the snapshot already covers, and no newer change of the tenant known. Otherwise undefined.
   */
  function snapshotNow(tenantId: string, consistency?: Consistency): Snapshot | undefined {
    const snap = snapshots.get(tenantId);
    if (!snap || (changedAt.get(tenantId) ?? 0) > snap.revision) return undefined;
    if (consistency === undefined || consistency.mode === 'minimize_latency') return snap;
    if (consistency.mode === 'at_least_as_fresh' && revisionOf(consistency.token) <= snap.revision) return snap;
    return undefined;
  }

  async function snapshotFor(tenantId: string, consistency: Consistency = { mode: 'minimize_latency' }): Promise<{ snap: Snapshot; token: string }> {
    let minRevision = 0;
    if (consistency.mode === 'at_least_as_fresh') minRevision = revisionOf(consistency.token);
    else if (consistency.mode === 'fully_consistent') minRevision = await currentRevision();
    else {
      const cached = snapshots.get(tenantId);
      const changed = changedAt.get(tenantId) ?? 0;
      if (cached && changed > cached.revision) {
        // minimize_latency answers from the snapshot at hand while a newer one is built: a write
        // from another process must not stall every check for the length of a rebuild. (A
        // failed build surfaces on the next request that has to wait for one.)
        snapshot(tenantId, changed).catch(() => undefined);
        return { snap: cached, token: tokenFor(cached.revision) };
      }
      if (!cached) minRevision = changed;
    }
    const snap = await snapshot(tenantId, minRevision);
    return { snap, token: tokenFor(snap.revision) };
  }

  async function engineFor(tenantId: string, consistency?: Consistency): Promise<{ engine: Engine; token: string }> {
    const { snap, token } = await snapshotFor(tenantId, consistency);
    return { engine: snap.engine, token };
  }

  /** The relationship graph's answer combined with the tenant's Cedar policies. */
  function decideOn(snap: Snapshot, request: DecisionRequest): Decision {
    const graph = snap.engine.check(request);
    if (!snap.policies) return graph;
    const cedar = decide(snap.policies, {
      principal: { type: request.subject.type, id: request.subject.id },
      action: request.permission,
      resource: request.resource,
      context: request.context,
      entities: request.entities,
    });
    const combined = combine(graph.permissionship, cedar);
    return {
      permissionship: combined.permissionship,
      ...(combined.permissionship === 'conditional' && graph.missing ? { missing: graph.missing } : {}),
      ...(graph.explanation ? { explanation: graph.explanation } : {}),
      policy: combined.reason,
    };
  }

  /** The last compiled schema of each tenant, by its revision: writes and RBAC read it per call. */
  const compiled = new Map<string, { revision: number; schema: Schema }>();

  /** The tenant's stored schema, compiled (once per schema revision); undefined without one. */
  async function storedSchema(tenantId: string): Promise<Schema | undefined> {
    const stored = await store.readSchema(tenantId);
    if (!stored) return undefined;
    const cached = compiled.get(tenantId);
    if (cached?.revision === stored.revision) return cached.schema;
    const schema = compileSchema(stored.text);
    compiled.set(tenantId, { revision: stored.revision, schema });
    return schema;
  }

  async function currentSchema(tenantId: string): Promise<Schema> {
    const schema = await storedSchema(tenantId);
    if (!schema) throw authzServiceErrors.create('AUTHZ_NO_SCHEMA', { tenant: tenantId });
    return schema;
  }

  /** Creates, touches and deletes in one transaction: the generic API and RBAC alike. */
  async function write(tenantId: string, updates: RelationshipUpdate[], preconditions: Precondition[]): Promise<{ token: string }> {
    const schema = await currentSchema(tenantId);
    for (const update of updates) {
      if (update.operation === 'delete') continue;
      const problem = misfitRelationship(schema, update.relationship);
      if (problem) throw authzServiceErrors.create('AUTHZ_RELATIONSHIP_INVALID', { relationship: formatRelationship(update.relationship), at: '', detail: problem });
    }
    const outcome = await store.write(tenantId, updates, preconditions);
    if (!outcome.ok) {
      if (outcome.reason === 'exists') throw authzServiceErrors.create('AUTHZ_RELATIONSHIP_EXISTS', { relationship: formatRelationship(outcome.relationship) });
      throw authzServiceErrors.create('AUTHZ_PRECONDITION_FAILED', { detail: describePrecondition(outcome.precondition) });
    }
    await applyHere(tenantId, outcome.revision, updates);
    return { token: tokenFor(outcome.revision) };
  }

  async function remove(tenantId: string, filters: RelationshipFilter[], preconditions: Precondition[]): Promise<{ token: string; deleted: number }> {
    const outcome = await store.deleteMatching(tenantId, filters, preconditions);
    if (!outcome.ok) {
      throw authzServiceErrors.create('AUTHZ_PRECONDITION_FAILED', { detail: outcome.reason === 'precondition' ? describePrecondition(outcome.precondition) : 'conflict' });
    }
    await afterCommit(() => markChanged(tenantId, outcome.revision));
    return { token: tokenFor(outcome.revision), deleted: outcome.deleted ?? 0 };
  }

  function markChanged(tenantId: string, revision: number) {
    changedAt.set(tenantId, Math.max(changedAt.get(tenantId) ?? 0, revision));
    const list = changes.get(tenantId) ?? [];
    list.push(revision);
    const floor = snapshots.get(tenantId)?.revision ?? 0;
    changes.set(tenantId, list.length > 1000 ? list.filter((r) => r > floor) : list);
  }

  /**
   * Our own write, applied to the current snapshot in place instead of rebuilding the whole
   * index — but only when the snapshot already held everything before this write: the change
   * feed is caught up first, and any other write to the tenant since the snapshot forces a
   * rebuild instead.
   */
  function applyHere(tenantId: string, revision: number, updates: RelationshipUpdate[]): Promise<void> {
    // Inside a unit of work (an admin change) only once it has committed: checks of other
    // requests read the snapshot, and must never see a write that may still roll back.
    return afterCommit(async () => {
      const snap = snapshots.get(tenantId);
      markChanged(tenantId, revision);
      // A snapshot read after this write committed holds it already.
      if (!snap || revision <= snap.built) return;
      // Without the feed caught up the snapshot cannot be vouched for: it is rebuilt instead.
      if (!(await catchUp().then(() => true, () => false))) {
        if (snapshots.get(tenantId) === snap) snapshots.delete(tenantId);
        return;
      }
      // Any other change of the tenant between the snapshot and this write (another process,
      // or a later write of ours applied first) means the snapshot cannot be patched.
      const foreign = (changes.get(tenantId) ?? []).some((r) => r > snap.revision && r !== revision);
      if (foreign || snapshots.get(tenantId) !== snap || revision <= snap.revision) {
        if (snapshots.get(tenantId) === snap) snapshots.delete(tenantId);
        return;
      }
      snap.index.apply(updates);
      snap.revision = revision;
    });
  }

  const service = {
    engineFor,

    /** One decision: the graph, then the policies (a forbid wins, any policy error denies). */
    async check(tenantId: string, request: DecisionRequest, consistency?: Consistency): Promise<Decision & { token: string }> {
      const { snap, token } = await snapshotFor(tenantId, consistency);
      return { ...decideOn(snap, request), token };
    },

    /**
     * `check` answered synchronously when the snapshot it needs is at hand (the usual case);
     * `undefined` when the caller has to wait for `check`. Same answer, no promise.
     */
    checkNow(tenantId: string, request: DecisionRequest, consistency?: Consistency): (Decision & { token: string }) | undefined {
      const snap = snapshotNow(tenantId, consistency);
      if (!snap) return undefined;
      return { ...decideOn(snap, request), token: tokenFor(snap.revision) };
    },

    /** Many decisions on one snapshot (one consistency token for all). */
    async checkBulk(tenantId: string, requests: DecisionRequest[], consistency?: Consistency): Promise<{ results: Decision[]; token: string }> {
      const { snap, token } = await snapshotFor(tenantId, consistency);
      return { results: requests.map((request) => decideOn(snap, request)), token };
    },

    /** Graph lookups with policy forbids applied (a policy permit alone cannot be enumerated). */
    async lookupResources(tenantId: string, request: Parameters<Engine['lookupResources']>[0] & { entities?: CedarEntity[] }, consistency?: Consistency) {
      const { snap, token } = await snapshotFor(tenantId, consistency);
      const found = snap.engine.lookupResources(request);
      if (!snap.policies) return { ...found, token };
      const keep = (id: string) =>
        decideOn(snap, { resource: { type: request.resourceType, id }, permission: request.permission, subject: request.subject, context: request.context, entities: request.entities }).permissionship;
      return { allowed: found.allowed.filter((id) => keep(id) === 'allowed'), conditional: found.conditional.filter((id) => keep(id) === 'conditional'), token };
    },

    async lookupSubjects(tenantId: string, request: Parameters<Engine['lookupSubjects']>[0] & { entities?: CedarEntity[] }, consistency?: Consistency) {
      const { snap, token } = await snapshotFor(tenantId, consistency);
      const found = snap.engine.lookupSubjects(request);
      if (!snap.policies) return { ...found, token };
      const keep = (id: string) =>
        decideOn(snap, { resource: request.resource, permission: request.permission, subject: { type: request.subjectType, id, ...(request.subjectRelation ? { relation: request.subjectRelation } : {}) }, context: request.context, entities: request.entities }).permissionship;
      return { allowed: found.allowed.filter((id) => keep(id) === 'allowed'), conditional: found.conditional.filter((id) => keep(id) === 'conditional'), token };
    },

    readPolicies: (tenantId: string) => store.readPolicies(tenantId),

    /** Replaces the tenant's Cedar policies (empty text removes them); refused when they do not parse. */
    async writePolicies(tenantId: string, text: string): Promise<{ token: string }> {
      if (text.trim()) compilePolicies(text);
      const revision = await store.writePolicies(tenantId, text, clock());
      await afterCommit(() => markChanged(tenantId, revision));
      return { token: tokenFor(revision) };
    },

    async readSchema(tenantId: string) {
      return store.readSchema(tenantId);
    },

    /**
     * Replaces the tenant's schema. Refused (nothing changes) when it does not compile, or
     * when stored relationships would no longer fit it: the error says how many.
     */
    async writeSchema(tenantId: string, text: string): Promise<{ token: string }> {
      const schema = compileSchema(text);
      // Build the engine now, over no relationships: a schema it cannot compile (nested
      // arrows, caveats) is refused here instead of failing every later check on the tenant.
      createEngine({ schema, caveats: compileCaveats(schema.caveats.values()), reader: createRelationshipIndex([]), clock, maxDepth });
      const orphans = (await store.shapes(tenantId)).filter((shape) => misfit(schema, shape) !== undefined);
      if (orphans.length > 0) {
        const count = orphans.reduce((sum, s) => sum + s.count, 0);
        const shapes = orphans
          .slice(0, 5)
          .map((s) => `${s.resourceType}#${s.relation}@${s.subjectType}${s.wildcard ? ':*' : ''}${s.subjectRelation === '...' ? '' : `#${s.subjectRelation}`}: ${misfit(schema, s)}`)
          .join('; ');
        throw authzServiceErrors.create('AUTHZ_SCHEMA_ORPHANS', { count, shapes, orphans: orphans.map((o) => ({ ...o, problem: misfit(schema, o) })) });
      }
      const revision = await store.writeSchema(tenantId, text, clock());
      await afterCommit(() => markChanged(tenantId, revision));
      return { token: tokenFor(revision) };
    },

    /**
     * Bulk import of relationship text, one per line (blank, `//` and `#` lines skipped), in two
     * passes over the text, a chunk at a time with a yield to the event loop after each: first
     * every line is parsed and checked (syntax, duplicates, reserved types, the schema) before
     * anything is written, then the lines are parsed again and touched in transactions of
     * IMPORT_CHUNK. Memory holds the text, one chunk and the keys seen (for duplicates), never
     * the whole import parsed. Not one transaction: on SQLite it would hold the only writer
     * (every tenant's writes, token issuance, the audit trail) for the length of the import,
     * on PostgreSQL the global revision row. A failure midway (database outage, a concurrent
     * schema change) leaves earlier chunks written; a retry with the same text is idempotent.
     * `onChunk` runs inside each chunk's transaction (its audit event): what a crash leaves
     * written is exactly what the trail says was.
     */
    async importRelationships(
      tenantId: string,
      text: string,
      onChunk?: (chunk: { index: number; written: number; token: string }) => Promise<void>,
    ): Promise<{ imported: number; token: string }> {
      const schema = await currentSchema(tenantId);
      const seen = new Map<string, number>();
      let imported = 0;
      for (const chunk of relationshipChunks(text, IMPORT_CHUNK, seen)) {
        for (const relationship of chunk) {
          refuseReserved(relationship);
          const problem = misfitRelationship(schema, relationship);
          // The first pass recorded each relationship's line (for duplicates): the error names it, as a syntax error does.
          const line = seen.get(relationshipKey(relationship));
          if (problem) throw authzServiceErrors.create('AUTHZ_RELATIONSHIP_INVALID', { relationship: formatRelationship(relationship), at: ` (line ${line})`, line, detail: problem });
        }
        imported += chunk.length;
        await yieldToEventLoop();
      }
      seen.clear();
      let token = tokenFor(await currentRevision());
      let index = 0;
      for (const chunk of relationshipChunks(text, IMPORT_CHUNK)) {
        token = await atomically(async () => {
          const written = await write(tenantId, chunk.map((relationship): RelationshipUpdate => ({ operation: 'touch', relationship })), []);
          await onChunk?.({ index: index++, written: chunk.length, token: written.token });
          return written.token;
        });
        await yieldToEventLoop();
      }
      return { imported, token };
    },

    /** Throws AUTHZ_RELATIONSHIP_INVALID for the first relationship the schema does not allow. */
    async validateRelationships(tenantId: string, relationships: Relationship[]): Promise<void> {
      const schema = await currentSchema(tenantId);
      for (const relationship of relationships) {
        const problem = misfitRelationship(schema, relationship);
        if (problem) throw authzServiceErrors.create('AUTHZ_RELATIONSHIP_INVALID', { relationship: formatRelationship(relationship), at: '', detail: problem });
      }
    },

    /**
     * Creates, touches and deletes relationships in one transaction, after the preconditions
     * hold. Refuses the reserved `gatehouse/*` types: RBAC owns them (see `rbacStore`).
     */
    async writeRelationships(tenantId: string, updates: RelationshipUpdate[], preconditions: Precondition[] = []): Promise<{ token: string }> {
      for (const update of updates) refuseReserved(update.relationship);
      return write(tenantId, updates, preconditions);
    },

    /** Deletes every relationship a filter matches (several filters: one transaction); not of the reserved types. */
    async deleteRelationships(tenantId: string, filter: RelationshipFilter | RelationshipFilter[], preconditions: Precondition[] = []): Promise<{ token: string; deleted: number }> {
      const filters = Array.isArray(filter) ? filter : [filter];
      for (const f of filters) refuseReserved(f);
      return remove(tenantId, filters, preconditions);
    },

    /**
     * Writes of the reserved `gatehouse/*` types, for the RBAC module only (rbac.ts): it keeps
     * their invariants (a role has a permission, assignments name a role that exists) and its
     * routes carry their own scopes. Nothing else may reach these.
     */
    rbacStore: {
      writeRelationships: (tenantId: string, updates: RelationshipUpdate[]) => write(tenantId, updates, []),
      deleteRelationships: (tenantId: string, filters: RelationshipFilter[]) => remove(tenantId, filters, []),
    },

    /** The tenant's schema, parsed and compiled (undefined when it has none). */
    schemaOf: storedSchema,

    /** A consistency token for everything committed so far (any tenant). */
    currentToken: async (): Promise<string> => tokenFor(await currentRevision()),

    readRelationships: (tenantId: string, filter: RelationshipFilter, options?: { limit?: number; after?: string }) => store.read(tenantId, filter, options),

    /** A write elsewhere (another process, the CLI) changed this tenant's permission data. */
    invalidate(tenantId: string, revision: number): void {
      markChanged(tenantId, revision);
    },

    /** Drops everything held of the tenant (a unit of work that read its own writes rolled back). */
    forget(tenantId: string): void {
      snapshots.delete(tenantId);
      compiled.delete(tenantId);
      changes.delete(tenantId);
      changedAt.delete(tenantId);
    },
  };
  return service;
}

export type AuthzService = ReturnType<typeof createAuthzService>;

/**
 * The RBAC types (rbac.ts). A generic write of `gatehouse/capability:x#granted@gatehouse/role:r#member`
 * would widen a role (or create one) with only `authz:write`; a subject of these types outside
 * RBAC would make RBAC groups reachable from data RBAC does not manage. Both sides are refused.
 */
const RESERVED_PREFIX = 'gatehouse/';

function refuseReserved(r: { resourceType: string; subjectType?: string }): void {
  for (const type of [r.resourceType, r.subjectType]) {
    if (type?.startsWith(RESERVED_PREFIX)) throw authzServiceErrors.create('AUTHZ_RESERVED_TYPE', { type });
  }
}

function describePrecondition(p: Precondition): string {
  const f = p.filter;
  const text = `${f.resourceType}:${f.resourceId ?? '*'}#${f.relation ?? '*'}@${f.subjectType ?? '*'}:${f.subjectId ?? '*'}${f.subjectRelation ? `#${f.subjectRelation}` : ''}`;
  return `${p.operation === 'must_match' ? 'no relationship matches' : 'a relationship matches'} ${text}`;
}

/** Why a stored shape no longer fits the schema, or undefined when it does. */
function misfit(schema: Schema, shape: RelationshipShape): string | undefined {
  return misfitParts(schema, shape.resourceType, shape.relation, shape.subjectType, shape.subjectRelation === '...' ? undefined : shape.subjectRelation, shape.wildcard, shape.caveatName, shape.expiring);
}

function misfitRelationship(schema: Schema, r: Relationship): string | undefined {
  return misfitParts(schema, r.resourceType, r.relation, r.subjectType, r.subjectRelation, r.subjectId === '*', r.caveat?.name ?? null, r.expiresAt !== undefined);
}

function misfitParts(
  schema: Schema,
  resourceType: string,
  relationName: string,
  subjectType: string,
  subjectRelation: string | undefined,
  wildcard: boolean,
  caveat: string | null,
  expiring: boolean,
): string | undefined {
  const def = schema.definitions.get(resourceType);
  if (!def) return `type "${resourceType}" is not defined`;
  const relation = def.relations.get(relationName);
  if (!relation) return def.permissions.has(relationName) ? `"${relationName}" is a permission; relationships are written to relations` : `"${resourceType}" has no relation "${relationName}"`;
  const fits = relation.allowed.some(
    (a) =>
      a.type === subjectType &&
      (a.relation ?? undefined) === subjectRelation &&
      Boolean(a.wildcard) === wildcard &&
      (a.caveat ?? null) === caveat &&
      Boolean(a.expiration) === expiring,
  );
  if (fits) return undefined;
  const shown = `${subjectType}${wildcard ? ':*' : ''}${subjectRelation ? `#${subjectRelation}` : ''}${caveat ? ` with ${caveat}` : ''}${expiring ? ' with expiration' : ''}`;
  return `relation ${resourceType}#${relationName} does not allow ${shown}`;
}
