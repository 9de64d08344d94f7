import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type PostgresPool, type PostgresPoolClient, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { migrate, type Dialect } from './migrations.js';
import { ensurePrivateDir, ensurePrivateFile, narrowToPrivate } from './private-files.js';
import type { Database } from './schema.js';
import { ConfigError } from '../config/defaults.js';
import { createStoreHealth, isConnectionError, storeUnavailable, type StoreHealth } from './unavailable.js';
import { withUnitsOfWork, type UnitOfWork } from './unit-of-work.js';

export type Db = Kysely<Database>;

export interface DatabaseHandle {
  db: Db;
  dialect: Dialect;
  /** PostgreSQL only: the connection URL, for the change feed's dedicated LISTEN connection. */
  url?: string;
  /** SQLite only: the driver handle, for prepared-statement fast paths (used under Kysely's connection lock). */
  sqlite?: SQLite.Database;
  /** Whether the database answered last time (an outage is logged once, at its start and end). */
  health: StoreHealth;
  /** Transactions that span repositories: an admin change and its audit event commit together. */
  units: UnitOfWork;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL URL; SQLite under dataDir when absent. */
  databaseUrl?: string;
  dataDir: string;
  /** SQLite file name inside dataDir, or ':memory:'. */
  sqliteFile?: string;
  /** Where an outage's start and end are logged. */
  logger?: Logger;
}

/** How long a new PostgreSQL connection may take before the attempt fails (and the request answers 503). */
export const PG_CONNECTION_TIMEOUT_MS = 10_000;

// node-postgres returns int8 as strings to avoid precision loss; our int8 columns hold
// epoch milliseconds and counters far below 2^53, so numbers are exact and simpler.
const INT8_OID = 20;
const pgTypes = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text'),
};

/** The SQLite database's file name in the data directory. */
export const SQLITE_FILE = 'gatehouse.db';

/** Opens the configured database and brings its schema up to date. */
export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const health = createStoreHealth(options.logger);
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      types: pgTypes as pg.CustomTypesConfig,
      // Without a bound a connection attempt to a host that drops packets waits for the OS (minutes).
      connectionTimeoutMillis: PG_CONNECTION_TIMEOUT_MS,
    });
    // node-postgres emits 'error' on a client whose connection dies (server restart, failover,
    // pg_terminate_backend: 57P01, "Connection terminated unexpectedly"). An EventEmitter
    // 'error' without a listener throws and ends the process. The pool listens only while a
    // client is idle ('error' on the pool); a checked-out client, mid-query or mid-transaction,
    // has no listener of the pool's, so every client gets one of ours for its whole life. The
    // failing query itself rejects, and the pool discards the client on release (it is no
    // longer queryable).
    pool.on('error', (error) => health.failed(error));
    pool.on('connect', (client) => client.on('error', (error) => health.failed(error)));
    const { dialect, units } = withUnitsOfWork(new PostgresDialect({ pool: classifyingPool(pool, health) }), 'postgres');
    const db = new Kysely<Database>({ dialect });
    await migrateOrClose(db, 'postgres').catch((error: unknown) => {
      throw unreachablePostgres(error, options.databaseUrl!) ?? error;
    });
    return { db, dialect: 'postgres', url: options.databaseUrl, health, units, close: () => db.destroy() };
  }
  const file = options.sqliteFile ?? SQLITE_FILE;
  let path = file;
  if (file !== ':memory:') {
    ensurePrivateDir(options.dataDir);
    path = join(options.dataDir, file);
    // SQLite creates the -wal and -shm files with the database file's mode; older versions
    // of Gatehouse left all three readable by every local user.
    ensurePrivateFile(path);
    narrowToPrivate(`${path}-wal`);
    narrowToPrivate(`${path}-shm`);
  }
  const sqlite = new SQLite(path);
  // WAL lets readers run beside the single writer; NORMAL sync is durable across process
  // crashes in WAL mode; the busy timeout covers several processes sharing the file.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const { dialect, units } = withUnitsOfWork(new SqliteDialect({ database: reusingStatements(sqlite) }), 'sqlite');
  const db = new Kysely<Database>({ dialect });
  await migrateOrClose(db, 'sqlite');
  return { db, dialect: 'sqlite', sqlite, health: createStoreHealth(options.logger), units, close: () => db.destroy() };
}

/**
 * The pool Kysely sees: driver errors that mean "the database cannot be reached" become the
 * typed STORE_UNAVAILABLE error (503 with Retry-After at every edge) at the one place every
 * query passes, and the outage is tracked for logging. Other errors pass through unchanged.
 */
function classifyingPool(pool: pg.Pool, health: StoreHealth): PostgresPool {
  const fail = (error: unknown): never => {
    if (!isConnectionError(error)) throw error;
    health.failed(error);
    throw storeUnavailable(error);
  };
  // One wrapper per driver client: Kysely keys its connection objects by client.
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      const client = await pool.connect().catch(fail);
      let wrapper = wrappers.get(client);
      if (!wrapper) {
        wrapper = {
          // Kysely calls query(sql, parameters) only: we never stream with cursors.
          query: ((text: string, parameters: readonly unknown[]) =>
            client.query(text, parameters as unknown[]).then((result) => {
              health.succeeded();
              return result;
            }, fail)) as unknown as PostgresPoolClient['query'],
          release: () => client.release(),
        };
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
    end: () => pool.end(),
  };
}

/**
 * better-sqlite3 compiles the SQL text on every `prepare` (about as long as running a
 * simple query), and Kysely prepares for every query it runs. Our queries are a small set
 * of texts, so each compiled statement is kept and reused; the bound keeps texts that vary
 * (IN lists of different lengths) from growing it without end. Reuse is safe: Kysely runs
 * one query at a time on the connection, and SQLite re-prepares a statement whose schema
 * changed.
 */
function reusingStatements(sqlite: SQLite.Database, max = 512): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    prepare(sql) {
      let statement = statements.get(sql);
      if (!statement) {
        if (statements.size >= max) statements.delete(statements.keys().next().value!);
        statement = sqlite.prepare(sql);
        statements.set(sql, statement);
      }
      return statement;
    },
    close() {
      statements.clear();
      sqlite.close();
    },
  };
}

/** Where a PostgreSQL URL points, without its credentials (for messages and logs). */
export function postgresTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}/${decodeURIComponent(parsed.pathname.slice(1)) || '(default database)'}`;
  } catch {
    return '(an unparsable DATABASE_URL)';
  }
}

/**
 * A start that fails because PostgreSQL cannot be used, as one line naming DATABASE_URL and
 * the fix (the CLI prints it and exits 1); undefined for any other failure. The driver's
 * error is somewhere in the cause chain of the migration's.
 */
function unreachablePostgres(error: unknown, url: string): ConfigError | undefined {
  const target = postgresTarget(url);
  for (const e of causesOf(error)) {
    const code = typeof e.code === 'string' ? e.code : '';
    // PostgreSQL's SQLSTATE: 3D000 invalid_catalog_name, 28P01 invalid_password, 28000 invalid_authorization_specification.
    if (code === '3D000') return new ConfigError('DATABASE_URL', `the database of ${target} does not exist`, `create it (createdb ${target.split('/')[1]}) or point DATABASE_URL at an existing database`);
    if (code === '28P01' || code === '28000') return new ConfigError('DATABASE_URL', `PostgreSQL at ${target} refused the credentials (${e.message})`, 'correct the user and password in DATABASE_URL');
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || /timeout/i.test(e.message ?? '')) {
      return new ConfigError('DATABASE_URL', `cannot reach PostgreSQL at ${target} (${code || e.message})`, 'start PostgreSQL, or correct the host and port in DATABASE_URL');
    }
  }
  return undefined;
}

/** An error, its causes, and the errors an AggregateError gathers (one per address tried), depth first. */
function* causesOf(error: unknown, depth = 0): Generator<{ code?: unknown; message?: string }> {
  if (typeof error !== 'object' || error === null || depth > 8) return;
  yield error as { code?: unknown; message?: string };
  if (error instanceof AggregateError) for (const inner of error.errors) yield* causesOf(inner, depth + 1);
  yield* causesOf((error as { cause?: unknown }).cause, depth + 1);
}

/** A failed migration must not leave a pool open that keeps the process alive. */
async function migrateOrClose(db: Kysely<Database>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  try {
    await migrate(db as Kysely<unknown>, dialect);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw error;
  }
}
