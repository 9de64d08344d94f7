import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../src/store/database.js';
import { bumpRevision } from '../../src/store/revisions.js';
import { afterCommit, type UnitChange } from '../../src/store/unit-of-work.js';
import { dialects, freshPostgres } from '../helpers.js';

for (const dialect of dialects) {
  describe(`units of work (${dialect})`, () => {
    let handle: DatabaseHandle;
    let dataDir: string;
    let pgdb: Awaited<ReturnType<typeof freshPostgres>> | undefined;
    const rolledBack: UnitChange[][] = [];

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-uow-'));
      pgdb = dialect === 'postgres' ? await freshPostgres() : undefined;
      handle = await openDatabase({ dataDir, databaseUrl: pgdb?.url });
      handle.units.onRollback((changes) => rolledBack.push(changes));
    });
    after(async () => {
      await handle.close();
      await pgdb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    const tenant = (id: string) => handle.db.insertInto('tenants').values({ id, display_name: id, created_at: 0 }).execute();
    const exists = async (id: string) => (await handle.db.selectFrom('tenants').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;

    it('commits every write of the unit together, transactions inside it included', async () => {
      await handle.units.atomically(async () => {
        await tenant('u1');
        await handle.db.transaction().execute(async (trx) => {
          await trx.insertInto('tenants').values({ id: 'u2', display_name: 'u2', created_at: 0 }).execute();
        });
        assert.ok(await exists('u2'), 'the unit reads its own writes');
      });
      assert.ok((await exists('u1')) && (await exists('u2')));
    });

    it('rolls back every write of the unit, a committed inner transaction included, and reports what it had changed', async () => {
      rolledBack.length = 0;
      await assert.rejects(
        handle.units.atomically(async () => {
          await handle.db.transaction().execute(async (trx) => {
            await trx.insertInto('tenants').values({ id: 'r1', display_name: 'r1', created_at: 0 }).execute();
            await bumpRevision(trx, 'r1', 'tenants', dialect);
          });
          await tenant('r2');
          throw new Error('the change fails after its writes');
        }),
        /the change fails/,
      );
      assert.equal(await exists('r1'), false);
      assert.equal(await exists('r2'), false);
      assert.deepEqual(rolledBack, [[{ tenantId: 'r1', kind: 'tenants' }]]);
    });

    it('an inner transaction that fails undoes only itself (a savepoint): the unit goes on and commits', async () => {
      await handle.units.atomically(async () => {
        await tenant('s1');
        // A unique violation the caller answers (as the repositories do for "already exists").
        await assert.rejects(handle.db.transaction().execute(async (trx) => {
          await trx.insertInto('tenants').values({ id: 's2', display_name: 's2', created_at: 0 }).execute();
          await trx.insertInto('tenants').values({ id: 's1', display_name: 'again', created_at: 0 }).execute();
        }));
        await tenant('s3');
      });
      assert.deepEqual([await exists('s1'), await exists('s2'), await exists('s3')], [true, false, true]);
    });

    it('runs afterCommit work once committed, outside the unit, and never after a rollback', async () => {
      const ran: string[] = [];
      await handle.units.atomically(async () => {
        await tenant('a1');
        await afterCommit(async () => {
          // Outside the unit: a fresh read sees the committed row through the pool.
          ran.push(`committed:${await exists('a1')}`);
        });
        ran.push('work done');
      });
      assert.deepEqual(ran, ['work done', 'committed:true']);
      await assert.rejects(
        handle.units.atomically(async () => {
          await tenant('a2');
          await afterCommit(() => void ran.push('must not run'));
          throw new Error('rolled back');
        }),
      );
      assert.deepEqual(ran, ['work done', 'committed:true']);
    });

    it('takes no lock before its first write: others write meanwhile, then the unit queues behind nobody', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let readDone!: () => void;
      const read = new Promise<void>((resolve) => (readDone = resolve));
      const unit = handle.units.atomically(async () => {
        assert.equal(await exists('w1'), false, 'a read before the first write');
        readDone();
        await gate;
        await tenant('w2');
      });
      await read;
      // While the unit has only read, a write from outside it goes through at once (on SQLite,
      // a unit holding the only connection would make this wait for ever).
      await tenant('w1');
      release();
      await unit;
      assert.ok((await exists('w1')) && (await exists('w2')));
    });

    it('parallel units each commit whole', async () => {
      await Promise.all(Array.from({ length: 20 }, (_, i) => handle.units.atomically(async () => {
        await tenant(`p${i}a`);
        await handle.db.transaction().execute((trx) => bumpRevision(trx, `p${i}a`, 'tenants', dialect));
        await tenant(`p${i}b`);
      })));
      const rows = await handle.db.selectFrom('tenants').select('id').where('id', 'like', 'p%').execute();
      assert.equal(rows.length, 40);
    });
  });
}
