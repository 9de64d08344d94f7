import { EventEmitter } from 'node:events';
import { sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { PG_CONNECTION_TIMEOUT_MS, type DatabaseHandle, type Db } from './database.js';
import { afterCommit, inUnitOfWork, noteChange } from './unit-of-work.js';

export interface Change {
  revision: number;
  tenantId: string;
  /** What changed: `keys`, `clients`, `apis`, `tenants`, … */
  kind: string;
}

const CHANNEL = 'gatehouse_changes';
// A lost LISTEN connection is retried after 250 ms, doubling up to 30 s while the database stays away.
const LISTEN_RETRY_MIN_MS = 250;
const LISTEN_RETRY_MAX_MS = 30_000;

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
  noteChange({ tenantId, kind });
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
  /** PostgreSQL: whether the LISTEN connection is up (it reconnects by itself); always true on SQLite. */
  readonly listening: boolean;
  close(): Promise<void>;
}

/**
 * Follows the revision counter: PostgreSQL LISTEN/NOTIFY, SQLite polling of the revision
 * row. Either way the changes themselves are read from `gh_changes`, so a missed
 * notification only delays, never loses, an invalidation.
 */
export async function createChangeFeed(handle: DatabaseHandle, options: { pollMs: number; logger?: Logger }): Promise<ChangeFeed> {
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
    if (inUnitOfWork()) {
      // A unit's own changes are not committed yet: read after the commit, or never (a
      // rollback leaves the revision to be used again, which the feed must not have passed).
      return afterCommit(() => catchUp().catch(() => undefined));
    }
    // Serialise reads so listeners see each change once and in order.
    const next = (running ?? Promise.resolve()).then(read, read);
    running = next.catch(() => undefined);
    return next;
  }

  let listener: pg.Client | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let reconnectDelay = LISTEN_RETRY_MIN_MS;
  let lostSince: number | undefined;

  /** Opens the dedicated LISTEN connection; rejects (and leaves nothing open) when it cannot. */
  async function listen(url: string): Promise<void> {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PG_CONNECTION_TIMEOUT_MS });
    // node-postgres emits 'error' when the connection dies (57P01, "Connection terminated
    // unexpectedly"); without a listener that ends the process. Either way we reconnect.
    client.on('error', (error) => lost(client, error));
    client.on('end', () => lost(client));
    client.on('notification', () => void catchUp().catch(() => undefined));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    listener = client;
  }

  /** A LISTEN connection died: reconnect with backoff, logging the outage once. */
  function lost(client: pg.Client, error?: Error): void {
    if (closed || listener !== client) return;
    listener = undefined;
    client.removeAllListeners('end');
    void client.end().catch(() => undefined);
    lostSince = Date.now();
    options.logger?.warn({ err: error }, 'change feed lost its LISTEN connection; reconnecting (polling meanwhile)');
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (closed || reconnectTimer) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      listen(handle.url!).then(
        () => {
          reconnectDelay = LISTEN_RETRY_MIN_MS;
          options.logger?.info({ outageMs: Date.now() - (lostSince ?? Date.now()) }, 'change feed listening again');
          lostSince = undefined;
          // Notifications sent while we were away are gone: read what changed meanwhile.
          void catchUp().catch(() => undefined);
        },
        () => {
          reconnectDelay = Math.min(reconnectDelay * 2, LISTEN_RETRY_MAX_MS);
          scheduleReconnect();
        },
      );
    }, reconnectDelay);
    reconnectTimer.unref();
  }

  if (handle.dialect === 'postgres' && handle.url) await listen(handle.url);
  let timer: NodeJS.Timeout | undefined;
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
    get listening() {
      return handle.dialect !== 'postgres' || listener !== undefined;
    },
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      await running?.catch(() => undefined);
      const client = listener;
      listener = undefined;
      client?.removeAllListeners('end');
      await client?.end().catch(() => undefined);
    },
  };
}
