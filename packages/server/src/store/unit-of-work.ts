import { AsyncLocalStorage } from 'node:async_hooks';
import {
  CompiledQuery,
  SelectQueryNode,
  type DatabaseConnection,
  type Dialect as KyselyDialect,
  type Driver,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import type { Dialect } from './migrations.js';

/** What a unit of work wrote, by tenant and kind (the rows it added to `gh_changes`). */
export interface UnitChange {
  tenantId: string;
  kind: string;
}

interface Unit {
  driver: UnitDriver;
  /** False once the unit has committed or rolled back: work it left running uses the pool again. */
  open: boolean;
  /** The unit's own connection, begun at its first write (see UnitConnection). */
  begun?: Promise<DatabaseConnection>;
  connection: UnitConnection;
  /** Savepoints of the transactions opened inside the unit, innermost last. */
  savepoints: string[];
  afterCommit: (() => void | Promise<void>)[];
  changes: UnitChange[];
}

const units = new AsyncLocalStorage<Unit>();

function openUnit(): Unit | undefined {
  const unit = units.getStore();
  return unit?.open ? unit : undefined;
}

/**
 * Runs `fn` outside any unit of work, with its own connections: for work that serves
 * several requests at once (a batch of audit events), which must not commit or roll back
 * with whichever request happened to start it.
 */
export function outsideUnitOfWork<T>(fn: () => T): T {
  return units.exit(fn);
}

/**
 * Inside a unit of work: `fn` runs once the unit has committed (before its caller answers),
 * and never if it rolls back. Elsewhere: now. For what must not see uncommitted changes:
 * in-memory state other requests read (a permission snapshot patched in place, the change
 * feed's position). `fn` must not throw: the change it follows is committed.
 */
export async function afterCommit(fn: () => void | Promise<void>): Promise<void> {
  const unit = openUnit();
  if (unit) unit.afterCommit.push(fn);
  else await fn();
}

/** Whether the caller runs inside a unit of work, whose writes are not visible to anyone else yet. */
export function inUnitOfWork(): boolean {
  return openUnit() !== undefined;
}

/** `bumpRevision` reports each change here: a unit that rolls back tells the caches what it had touched. */
export function noteChange(change: UnitChange): void {
  openUnit()?.changes.push(change);
}

/**
 * Before the unit's first write its reads run on any connection, as outside it, so work that
 * only reads (a password hash, a key generation between two queries) takes no lock; the
 * first write, transaction or locking read begins the unit's transaction, and from then on
 * every query of the unit runs in it.
 */
class UnitConnection implements DatabaseConnection {
  constructor(private readonly unit: Unit) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (!this.unit.begun && isPlainRead(query)) return this.unit.driver.onItsOwn((connection) => connection.executeQuery<R>(query));
    return (await this.unit.driver.begin(this.unit)).executeQuery<R>(query);
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    yield* (await this.unit.driver.begin(this.unit)).streamQuery<R>(query, chunkSize);
  }
}

/** A SELECT without FOR UPDATE: it neither writes nor locks, so it may run before the transaction. */
function isPlainRead(query: CompiledQuery): boolean {
  return SelectQueryNode.is(query.query) && !query.query.endModifiers?.length;
}

/**
 * The driver Kysely sees, around the dialect's own. Outside a unit of work it is that
 * driver, except that SQLite write transactions begin IMMEDIATE: a deferred BEGIN takes the
 * write lock only at its first write, and if another process committed in between, SQLite
 * answers SQLITE_BUSY_SNAPSHOT at once instead of waiting out the busy timeout; taking the
 * lock up front makes concurrent writers (a server and the CLI, several processes) queue.
 *
 * Inside a unit of work every query of the unit shares one transaction, and a transaction
 * opened inside it (a repository's own) becomes a savepoint: it commits or rolls back with
 * the unit, and its own failure (a unique violation the repository answers) undoes only it.
 */
class UnitDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly dialect: Dialect,
    private readonly onRollback: (changes: UnitChange[]) => void,
  ) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  private unitOf(connection?: DatabaseConnection): Unit | undefined {
    const unit = openUnit();
    if (!unit || unit.driver !== this) return undefined;
    return connection === undefined || connection === unit.connection ? unit : undefined;
  }

  acquireConnection(): Promise<DatabaseConnection> {
    const unit = this.unitOf();
    return unit ? Promise.resolve(unit.connection) : this.inner.acquireConnection();
  }

  async onItsOwn<T>(work: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    const connection = await this.inner.acquireConnection();
    try {
      return await work(connection);
    } finally {
      await this.inner.releaseConnection(connection);
    }
  }

  /** The unit's transaction, begun on first use. */
  begin(unit: Unit): Promise<DatabaseConnection> {
    unit.begun ??= (async () => {
      const connection = await this.inner.acquireConnection();
      try {
        await this.beginOn(connection, {});
      } catch (error) {
        await this.inner.releaseConnection(connection);
        throw error;
      }
      return connection;
    })();
    return unit.begun;
  }

  private beginOn(connection: DatabaseConnection, settings: TransactionSettings): Promise<unknown> {
    if (this.dialect === 'sqlite') return connection.executeQuery(CompiledQuery.raw('begin immediate'));
    return this.inner.beginTransaction(connection, settings);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const unit = this.unitOf(connection);
    if (!unit) {
      await this.beginOn(connection, settings);
      return;
    }
    const name = `gh_unit_${unit.savepoints.length + 1}`;
    unit.savepoints.push(name);
    await unit.connection.executeQuery(CompiledQuery.raw(`savepoint ${name}`));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const unit = this.unitOf(connection);
    if (!unit) return this.inner.commitTransaction(connection);
    await unit.connection.executeQuery(CompiledQuery.raw(`release savepoint ${unit.savepoints.pop()!}`));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const unit = this.unitOf(connection);
    if (!unit) return this.inner.rollbackTransaction(connection);
    const name = unit.savepoints.pop()!;
    await unit.connection.executeQuery(CompiledQuery.raw(`rollback to savepoint ${name}`));
    await unit.connection.executeQuery(CompiledQuery.raw(`release savepoint ${name}`));
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    if (this.unitOf(connection)) return;
    await this.inner.releaseConnection(connection);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }

  /** See `UnitOfWork.atomically`. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.unitOf()) return work();
    const unit = { driver: this, open: true, savepoints: [], afterCommit: [], changes: [] } as unknown as Unit;
    unit.connection = new UnitConnection(unit);
    let result: T;
    try {
      result = await units.run(unit, work);
    } catch (error) {
      unit.open = false;
      await this.end(unit, 'rollback');
      throw error;
    }
    unit.open = false;
    await this.end(unit, 'commit');
    for (const fn of unit.afterCommit) await outsideUnitOfWork(fn);
    return result;
  }

  private async end(unit: Unit, how: 'commit' | 'rollback'): Promise<void> {
    if (!unit.begun) return;
    const connection = await unit.begun.catch(() => undefined);
    if (!connection) return;
    try {
      if (how === 'commit') {
        try {
          await this.inner.commitTransaction(connection);
        } catch (error) {
          await this.inner.rollbackTransaction(connection).catch(() => undefined);
          this.onRollback(unit.changes);
          throw error;
        }
      } else {
        await this.inner.rollbackTransaction(connection).catch(() => undefined);
        this.onRollback(unit.changes);
      }
    } finally {
      await this.inner.releaseConnection(connection);
    }
  }
}

export interface UnitOfWork {
  /**
   * Runs `work` as one transaction: every query it makes through this database, in any
   * repository, commits together or not at all (a unit inside a unit joins it). Its caller
   * answers only after the commit. Caches that read the unit's uncommitted rows are told
   * to forget the changed tenants when it rolls back.
   */
  atomically<T>(work: () => Promise<T>): Promise<T>;
  /** Who is told what a rolled-back unit had changed (the core: its caches). */
  onRollback(listener: (changes: UnitChange[]) => void): void;
}

/** The dialect Kysely is given, with its driver wrapped; and the units of work on it. */
export function withUnitsOfWork(inner: KyselyDialect, dialect: Dialect): { dialect: KyselyDialect; units: UnitOfWork } {
  const listeners: ((changes: UnitChange[]) => void)[] = [];
  const driver = new UnitDriver(inner.createDriver(), dialect, (changes) => {
    for (const listener of listeners) listener(changes);
  });
  return {
    dialect: {
      createAdapter: () => inner.createAdapter(),
      createDriver: () => driver,
      createIntrospector: (db) => inner.createIntrospector(db),
      createQueryCompiler: () => inner.createQueryCompiler(),
    },
    units: {
      atomically: (work) => driver.run(work),
      onRollback: (listener) => void listeners.push(listener),
    },
  };
}
