import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import { migrate, type Dialect } from './migrations.js';
import { ensurePrivateDir, ensurePrivateFile, narrowToPrivate } from './private-files.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface DatabaseHandle {
  db: Db;
  dialect: Dialect;
  /** PostgreSQL only: the connection URL, for the change feed's dedicated LISTEN connection. */
  url?: string;
  /** SQLite only: the driver handle, for prepared-statement fast paths (used under Kysely's connection lock). */
  sqlite?: SQLite.Database;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL URL; SQLite under dataDir when absent. */
  databaseUrl?: string;
  dataDir: string;
  /** SQLite file name inside dataDir, or ':memory:'. */
  sqliteFile?: string;
  /** PostgreSQL: an idle pooled connection failed (it is replaced). */
  onIdleError?: (error: Error) => void;
}

// node-postgres returns int8 as strings to avoid precision loss; our int8 columns hold
// epoch milliseconds and counters far below 2^53, so numbers are exact and simpler.
const INT8_OID = 20;
const pgTypes = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text'),
};

/** Opens the configured database and brings its schema up to date. */
export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10, types: pgTypes as pg.CustomTypesConfig });
    // An idle connection the server drops (restart, failover, admin kill) is reported here;
    // without a listener node-postgres would crash the process. The pool replaces it.
    pool.on('error', (error) => options.onIdleError?.(error));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    await migrateOrClose(db, 'postgres');
    return { db, dialect: 'postgres', url: options.databaseUrl, close: () => db.destroy() };
  }
  const file = options.sqliteFile ?? 'gatehouse.db';
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
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: reusingStatements(sqlite) }) });
  await migrateOrClose(db, 'sqlite');
  return { db, dialect: 'sqlite', sqlite, close: () => db.destroy() };
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

/** A failed migration must not leave a pool open that keeps the process alive. */
async function migrateOrClose(db: Kysely<Database>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  try {
    await migrate(db as Kysely<unknown>, dialect);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw error;
  }
}
