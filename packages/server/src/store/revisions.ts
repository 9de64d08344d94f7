import { EventEmitter } from 'node:events';
import { sql } from 'kysely';
import pg from 'pg';
import type { DatabaseHandle, Db } from './database.js';

export interface Change {
  revision: number;
  tenantId: string;
  /** What changed: `keys`, `clients`, `apis`, `tenants`, … */
  kind: string;
}

const CHANNEL = 'gatehouse_changes';

/**
 * Bumps the global revision inside the caller's transaction and records what changed.
 * Every write that can make a cache stale goes through here, so the revision doubles
 * as a consistency token. On PostgreSQL, NOTIFY is delivered at commit.
 */
export async function bumpRevision(trx: Db, tenantId: string, kind: string, dialect: 'sqlite' | 'postgres'): Promise<number> {
  const row = await trx
    .updateTable('gh_revision')
    .set({ value: sql<number>`value + 1` })
    .where('id', '=', 1)
    .returning('value')
    .executeTakeFirstOrThrow();
  const revision = Number(row.value);
  await trx.insertInto('gh_changes').values({ revision, tenant_id: tenantId, kind, created_at: Date.now() }).execute();
  if (dialect === 'postgres') await sql`select pg_notify(${CHANNEL}, ${String(revision)})`.execute(trx);
  return revision;
}

export async function currentRevision(db: Db): Promise<number> {
  const row = await db.selectFrom('gh_revision').select('value').where('id', '=', 1).executeTakeFirstOrThrow();
  return Number(row.value);
}

export interface ChangeFeed {
  /** Called for every change seen, in revision order, local or from another node. */
  on(listener: (change: Change) => void): () => void;
  /** Reads changes newer than the last seen one now (writers call it after commit). */
  catchUp(): Promise<void>;
  readonly revision: number;
  close(): Promise<void>;
}

/**
 * Follows the revision counter: PostgreSQL LISTEN/NOTIFY, SQLite polling of the revision
 * row. Either way the changes themselves are read from `gh_changes`, so a missed
 * notification only delays, never loses, an invalidation.
 */
export async function createChangeFeed(handle: DatabaseHandle, options: { pollMs: number }): Promise<ChangeFeed> {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let last = await currentRevision(handle.db);
  let running: Promise<void> | undefined;
  let closed = false;

  async function read(): Promise<void> {
    if (closed) return;
    const rows = await handle.db
      .selectFrom('gh_changes')
      .select(['revision', 'tenant_id', 'kind'])
      .where('revision', '>', last)
      .orderBy('revision')
      .execute();
    for (const row of rows) {
      // A read that was in flight when close() was called delivers nothing.
      if (closed) return;
      last = Math.max(last, Number(row.revision));
      events.emit('change', { revision: Number(row.revision), tenantId: row.tenant_id, kind: row.kind } satisfies Change);
    }
  }

  function catchUp(): Promise<void> {
    // Serialise reads so listeners see each change once and in order.
    const next = (running ?? Promise.resolve()).then(read, read);
    running = next.catch(() => undefined);
    return next;
  }

  let listener: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (handle.dialect === 'postgres' && handle.url) {
    listener = new pg.Client({ connectionString: handle.url });
    await listener.connect();
    listener.on('notification', () => void catchUp().catch(() => undefined));
    // A dropped LISTEN connection must not crash the process; polling below keeps caches correct.
    listener.on('error', () => undefined);
    await listener.query(`LISTEN ${CHANNEL}`);
  }
  // Polling on SQLite; on PostgreSQL a slow safety net in case a notification was lost.
  const interval = handle.dialect === 'postgres' ? Math.max(options.pollMs, 5000) : options.pollMs;
  timer = setInterval(() => {
    if (closed) return;
    handle.db
      .selectFrom('gh_revision')
      .select('value')
      .where('id', '=', 1)
      .executeTakeFirst()
      .then((row) => (row && Number(row.value) > last ? catchUp() : undefined))
      .catch(() => undefined);
  }, interval);
  timer.unref();

  return {
    on(fn) {
      events.on('change', fn);
      return () => events.off('change', fn);
    },
    catchUp,
    get revision() {
      return last;
    },
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
      await listener?.end().catch(() => undefined);
    },
  };
}
