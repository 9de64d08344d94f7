import { sql } from 'kysely';
import type { Dialect } from './migrations.js';
import type { Db } from './database.js';

/**
 * A write transaction. On SQLite it starts with BEGIN IMMEDIATE: a deferred BEGIN takes the
 * write lock only at its first write, and if another process committed in between, SQLite
 * answers SQLITE_BUSY_SNAPSHOT at once instead of waiting out the busy timeout. Taking the
 * lock up front makes concurrent writers (a server and the CLI, several processes) queue.
 */
export function writeTransaction<T>(db: Db, dialect: Dialect, work: (trx: Db) => Promise<T>): Promise<T> {
  if (dialect === 'postgres') return db.transaction().execute(work);
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await work(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      throw error;
    }
  });
}
