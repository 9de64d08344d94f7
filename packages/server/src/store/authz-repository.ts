import { sql, type Selectable } from 'kysely';
import type { AuthzStore, Precondition, RelationshipFilter, RelationshipShape, WriteOutcome } from '../authz/store-types.js';
import type { Relationship } from '../authz/types.js';
import type { DatabaseHandle, Db } from './database.js';
import { bumpRevision } from './revisions.js';
import type { Database } from './schema.js';

type Row = Selectable<Database['relationships']>;
const DIRECT = '...';
/**
 * Rows per multi-row upsert: 11 bound values each, well under SQLite's 32,766 and
 * PostgreSQL's 65,535 parameters per statement.
 */
const TOUCH_BATCH = 500;

const toRelationship = (row: Row): Relationship => ({
  resourceType: row.resource_type,
  resourceId: row.resource_id,
  relation: row.relation,
  subjectType: row.subject_type,
  subjectId: row.subject_id,
  ...(row.subject_relation !== DIRECT ? { subjectRelation: row.subject_relation } : {}),
  ...(row.caveat_name !== null ? { caveat: { name: row.caveat_name, ...(row.caveat_context ? { context: JSON.parse(row.caveat_context) as Record<string, unknown> } : {}) } } : {}),
  ...(row.expires_at !== null ? { expiresAt: Number(row.expires_at) } : {}),
});

const keyOf = (tenantId: string, r: Relationship) => ({
  tenant_id: tenantId,
  resource_type: r.resourceType,
  resource_id: r.resourceId,
  relation: r.relation,
  subject_type: r.subjectType,
  subject_id: r.subjectId,
  subject_relation: r.subjectRelation ?? DIRECT,
});

/**
 * The column conditions of a filter, the same for reads and deletes: a subject id without a
 * subject relation means the direct subject (`user:ann`), not also its sets (`group:x#member`).
 */
function conditions(filter: RelationshipFilter): [FilterColumn, string][] {
  const out: [FilterColumn, string][] = [['resource_type', filter.resourceType]];
  if (filter.resourceId !== undefined) out.push(['resource_id', filter.resourceId]);
  if (filter.relation !== undefined) out.push(['relation', filter.relation]);
  if (filter.subjectType !== undefined) out.push(['subject_type', filter.subjectType]);
  if (filter.subjectId !== undefined) out.push(['subject_id', filter.subjectId]);
  if (filter.subjectRelation !== undefined) out.push(['subject_relation', filter.subjectRelation]);
  else if (filter.subjectId !== undefined) out.push(['subject_relation', DIRECT]);
  return out;
}
type FilterColumn = 'resource_type' | 'resource_id' | 'relation' | 'subject_type' | 'subject_id' | 'subject_relation';

/** Thrown inside a transaction to roll it back with an outcome for the caller. */
class Abort {
  constructor(readonly outcome: WriteOutcome) {}
}

/** Kysely implementation of the permission service's store (both dialects). */
export function createAuthzRepository({ db, dialect }: Pick<DatabaseHandle, 'db' | 'dialect'>): AuthzStore {
  function matching(q: Db, tenantId: string, filter: RelationshipFilter) {
    let query = q.selectFrom('relationships').where('tenant_id', '=', tenantId);
    for (const [column, value] of conditions(filter)) query = query.where(column, '=', value);
    return query;
  }

  async function checkPreconditions(trx: Db, tenantId: string, preconditions: Precondition[]) {
    for (const precondition of preconditions) {
      const found = await matching(trx, tenantId, precondition.filter).select('resource_id').limit(1).executeTakeFirst();
      if ((found !== undefined) !== (precondition.operation === 'must_match')) throw new Abort({ ok: false, reason: 'precondition', precondition });
    }
  }

  async function run<T extends WriteOutcome>(work: (trx: Db) => Promise<T>): Promise<T | WriteOutcome> {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      if (error instanceof Abort) return error.outcome;
      throw error;
    }
  }

  /** The schema and the policies: one text document per tenant, versioned by revision. */
  async function readDocument(table: 'authz_schemas' | 'authz_policies', tenantId: string) {
    const row = await db.selectFrom(table).select(['text', 'revision']).where('tenant_id', '=', tenantId).executeTakeFirst();
    return row ? { text: row.text, revision: Number(row.revision) } : undefined;
  }

  function writeDocument(table: 'authz_schemas' | 'authz_policies', kind: string, tenantId: string, text: string, now: number) {
    return db.transaction().execute(async (trx) => {
      const revision = await bumpRevision(trx, tenantId, kind, dialect);
      await trx
        .insertInto(table)
        .values({ tenant_id: tenantId, text, revision, updated_at: now })
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet({ text, revision, updated_at: now }))
        .execute();
      return revision;
    });
  }

  return {
    readSchema: (tenantId) => readDocument('authz_schemas', tenantId),
    writeSchema: (tenantId, text, now) => writeDocument('authz_schemas', 'authz_schema', tenantId, text, now),
    readPolicies: (tenantId) => readDocument('authz_policies', tenantId),
    writePolicies: (tenantId, text, now) => writeDocument('authz_policies', 'authz_policies', tenantId, text, now),

    async write(tenantId, updates, preconditions) {
      return run(async (trx) => {
        await checkPreconditions(trx, tenantId, preconditions);
        const revision = await bumpRevision(trx, tenantId, 'relationships', dialect);
        const rowOf = (r: Relationship) => ({
          ...keyOf(tenantId, r),
          caveat_name: r.caveat?.name ?? null,
          caveat_context: r.caveat?.context ? JSON.stringify(r.caveat.context) : null,
          expires_at: r.expiresAt ?? null,
          revision,
        });
        for (let i = 0; i < updates.length; ) {
          const update = updates[i]!;
          if (update.operation === 'touch') {
            // A run of touches is one multi-row upsert per TOUCH_BATCH rows (a bulk import is
            // nothing but touches): the same rows as one statement each, a fraction of the round
            // trips. A key touched twice in the run keeps its last values, as in sequence.
            const batch = new Map<string, ReturnType<typeof rowOf>>();
            for (; i < updates.length && updates[i]!.operation === 'touch' && batch.size < TOUCH_BATCH; i++) {
              const row = rowOf(updates[i]!.relationship);
              // NUL never occurs in a type, id or relation (the relationship syntax forbids it).
              batch.set(`${row.resource_type}\u0000${row.resource_id}\u0000${row.relation}\u0000${row.subject_type}\u0000${row.subject_id}\u0000${row.subject_relation}`, row);
            }
            await trx
              .insertInto('relationships')
              .values([...batch.values()])
              .onConflict((oc) =>
                oc.columns(['tenant_id', 'resource_type', 'resource_id', 'relation', 'subject_type', 'subject_id', 'subject_relation']).doUpdateSet((eb) => ({
                  caveat_name: eb.ref('excluded.caveat_name'),
                  caveat_context: eb.ref('excluded.caveat_context'),
                  expires_at: eb.ref('excluded.expires_at'),
                  revision: eb.ref('excluded.revision'),
                })),
              )
              .execute();
            continue;
          }
          i += 1;
          const key = keyOf(tenantId, update.relationship);
          const r = update.relationship;
          if (update.operation === 'delete') {
            await trx
              .deleteFrom('relationships')
              .where((eb) => eb.and(Object.entries(key).map(([column, value]) => eb(column as keyof typeof key, '=', value))))
              .execute();
          } else {
            // Checked first: a failed INSERT would abort a PostgreSQL transaction.
            const exists = await matching(trx, tenantId, { ...r, subjectRelation: r.subjectRelation ?? DIRECT }).select('resource_id').executeTakeFirst();
            if (exists) throw new Abort({ ok: false, reason: 'exists', relationship: r });
            await trx.insertInto('relationships').values(rowOf(r)).execute();
          }
        }
        return { ok: true as const, revision };
      });
    },

    async deleteMatching(tenantId, filters, preconditions) {
      return run(async (trx) => {
        await checkPreconditions(trx, tenantId, preconditions);
        const revision = await bumpRevision(trx, tenantId, 'relationships', dialect);
        let deleted = 0;
        for (const filter of filters) {
          let query = trx.deleteFrom('relationships').where('tenant_id', '=', tenantId);
          for (const [column, value] of conditions(filter)) query = query.where(column, '=', value);
          deleted += Number((await query.executeTakeFirst()).numDeletedRows);
        }
        return { ok: true as const, revision, deleted };
      });
    },

    async read(tenantId, filter, options = {}) {
      let query = matching(db, tenantId, filter).selectAll();
      if (options.after) {
        const [resourceId, relation, subjectType, subjectId, subjectRelation] = JSON.parse(options.after) as string[];
        query = query.where(
          sql<boolean>`(resource_id, relation, subject_type, subject_id, subject_relation) > (${resourceId}, ${relation}, ${subjectType}, ${subjectId}, ${subjectRelation})`,
        );
      }
      const rows = await query
        .orderBy('resource_id')
        .orderBy('relation')
        .orderBy('subject_type')
        .orderBy('subject_id')
        .orderBy('subject_relation')
        .limit(options.limit ?? 1000)
        .execute();
      return rows.map(toRelationship);
    },

    async *scan(tenantId, pageSize = 10_000) {
      let after: Row | undefined;
      for (;;) {
        let query = db.selectFrom('relationships').selectAll().where('tenant_id', '=', tenantId);
        if (after) {
          const a = after;
          query = query.where(
            sql<boolean>`(resource_type, resource_id, relation, subject_type, subject_id, subject_relation) > (${a.resource_type}, ${a.resource_id}, ${a.relation}, ${a.subject_type}, ${a.subject_id}, ${a.subject_relation})`,
          );
        }
        const rows = await query
          .orderBy('resource_type')
          .orderBy('resource_id')
          .orderBy('relation')
          .orderBy('subject_type')
          .orderBy('subject_id')
          .orderBy('subject_relation')
          .limit(pageSize)
          .execute();
        if (rows.length === 0) return;
        yield rows.map(toRelationship);
        if (rows.length < pageSize) return;
        after = rows[rows.length - 1];
      }
    },

    async shapes(tenantId) {
      const rows = await db
        .selectFrom('relationships')
        .select((eb) => [
          'resource_type',
          'relation',
          'subject_type',
          'subject_relation',
          'caveat_name',
          sql<number>`case when subject_id = '*' then 1 else 0 end`.as('wildcard'),
          sql<number>`case when expires_at is null then 0 else 1 end`.as('expiring'),
          eb.fn.countAll<number>().as('count'),
        ])
        .where('tenant_id', '=', tenantId)
        .groupBy(['resource_type', 'relation', 'subject_type', 'subject_relation', 'caveat_name', sql`case when subject_id = '*' then 1 else 0 end`, sql`case when expires_at is null then 0 else 1 end`])
        .execute();
      return rows.map(
        (r): RelationshipShape => ({
          resourceType: r.resource_type,
          relation: r.relation,
          subjectType: r.subject_type,
          subjectRelation: r.subject_relation,
          wildcard: Number(r.wildcard) === 1,
          caveatName: r.caveat_name,
          expiring: Number(r.expiring) === 1,
          count: Number(r.count),
        }),
      );
    },
  };
}
