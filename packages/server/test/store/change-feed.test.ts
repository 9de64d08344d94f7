import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { sql } from 'kysely';
import type { SigningKeyRecord } from '../../src/keys/types.js';
import { openDatabase, type DatabaseHandle } from '../../src/store/database.js';
import { createRepositories, type Repositories } from '../../src/store/repositories.js';
import { createChangeFeed, currentRevision, type Change, type ChangeFeed } from '../../src/store/revisions.js';
import { dialects, freshPostgres, type DialectName } from '../helpers.js';

const T0 = Date.parse('2026-11-22T10:00:00Z');

// Deliveries are asynchronous, so tests wait for them — bounded, never a fixed sleep. The
// bound stays under the feed's 5 s PostgreSQL safety-net poll, so on PostgreSQL only
// LISTEN/NOTIFY can deliver in time and a broken notification path fails the test.
const DELIVERY_TIMEOUT_MS = 3000;

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${DELIVERY_TIMEOUT_MS} ms waiting for ${what}`);
    await delay(20);
  }
}

/** One throwaway database per dialect; every `open()` is another handle (SQLite: connection) on it. */
async function throwawayDatabase(dialect: DialectName) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-feed-'));
  const pgdb = dialect === 'postgres' ? await freshPostgres() : undefined;
  return {
    open: () => openDatabase({ dataDir, databaseUrl: pgdb?.url }),
    async drop() {
      await pgdb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const signingKey = (tenantId: string, kid: string): SigningKeyRecord => ({
  tenantId,
  kid,
  alg: 'ES256',
  status: 'active',
  publicJwk: { kty: 'EC', crv: 'P-256', x: `x-${kid}`, y: `y-${kid}` },
  privateJwkEnc: `v1.sealed-${kid}`,
  createdAt: T0,
  deactivatedAt: null,
  retireAt: null,
});

/** Collects what a feed delivers to one listener. */
function record(feed: ChangeFeed) {
  const seen: Change[] = [];
  const off = feed.on((change) => seen.push(change));
  return { seen, off };
}

for (const dialect of dialects) {
  describe(`change feed (${dialect})`, () => {
    let database: Awaited<ReturnType<typeof throwawayDatabase>>;
    // The feed follows `reader`; every write goes through `writer`, a separate handle on the
    // same database, as another Gatehouse process or the CLI would.
    let reader: DatabaseHandle;
    let writer: DatabaseHandle;
    let writes: Repositories;

    before(async () => {
      database = await throwawayDatabase(dialect);
      reader = await database.open();
      writer = await database.open();
      writes = createRepositories(writer);
    });
    after(async () => {
      await reader?.close();
      await writer?.close();
      await database?.drop();
    });

    /** A change committed without NOTIFY, as if the notification had been lost. */
    const commitSilently = (tenantId: string, kind: string) =>
      writer.db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ value: number }>`update gh_revision set value = value + 1 where id = 1 returning value`.execute(trx);
        const revision = Number(rows[0]!.value);
        await trx.insertInto('gh_changes').values({ revision, tenant_id: tenantId, kind, created_at: T0 }).execute();
        return revision;
      });

    it('delivers changes written through another handle, in revision order, with their tenant and kind', async () => {
      const feed = await createChangeFeed(reader, { pollMs: 50 });
      try {
        const { seen } = record(feed);
        const start = await currentRevision(writer.db);
        assert.equal(feed.revision, start);

        await writes.tenants.create({ id: 'feed-a', displayName: 'A', createdAt: T0 });
        await writes.keys.activate('feed-a', [signingKey('feed-a', 'k1')], T0);
        await writes.oauth.createApi({ tenantId: 'feed-a', id: 'orders', identifier: 'https://orders.example.com', name: 'Orders', scopes: ['read'], accessTokenTtl: 600, builtin: false, createdAt: T0, resourceServers: [] });
        await writes.tenants.create({ id: 'feed-b', displayName: 'B', createdAt: T0 });
        await waitFor(() => seen.length >= 4, 'four changes');

        assert.deepEqual(seen, [
          { revision: start + 1, tenantId: 'feed-a', kind: 'tenants' },
          { revision: start + 2, tenantId: 'feed-a', kind: 'keys' },
          { revision: start + 3, tenantId: 'feed-a', kind: 'apis' },
          { revision: start + 4, tenantId: 'feed-b', kind: 'tenants' },
        ]);
        assert.equal(feed.revision, start + 4);
      } finally {
        await feed.close();
      }
    });

    it('does not replay changes made before the feed was created', async () => {
      await writes.tenants.create({ id: 'feed-history', displayName: 'History', createdAt: T0 });
      const feed = await createChangeFeed(reader, { pollMs: 60_000 });
      try {
        const { seen } = record(feed);

        await feed.catchUp();

        assert.deepEqual(seen, []);
        assert.equal(feed.revision, await currentRevision(writer.db));
      } finally {
        await feed.close();
      }
    });

    it('delivers a change whose notification was lost as soon as catchUp() is called', async () => {
      // Polling an hour apart: nothing but catchUp() can deliver within this test.
      const feed = await createChangeFeed(reader, { pollMs: 3_600_000 });
      try {
        const { seen } = record(feed);
        const first = await commitSilently('feed-silent', 'clients');
        const second = await commitSilently('feed-silent', 'keys');

        await feed.catchUp();

        assert.deepEqual(seen, [
          { revision: first, tenantId: 'feed-silent', kind: 'clients' },
          { revision: second, tenantId: 'feed-silent', kind: 'keys' },
        ]);
        await feed.catchUp();
        assert.equal(seen.length, 2, 'a second catchUp() delivers nothing twice');
      } finally {
        await feed.close();
      }
    });

    it('stops calling a listener once it unsubscribes, while others keep receiving', async () => {
      const feed = await createChangeFeed(reader, { pollMs: 3_600_000 });
      try {
        const leaving = record(feed);
        const staying = record(feed);
        const first = await commitSilently('feed-off', 'apis');
        await feed.catchUp();

        leaving.off();
        const second = await commitSilently('feed-off', 'apis');
        await feed.catchUp();

        assert.deepEqual(leaving.seen.map((c) => c.revision), [first]);
        assert.deepEqual(staying.seen.map((c) => c.revision), [first, second]);
      } finally {
        await feed.close();
      }
    });

    it('delivers nothing after close(), while a feed still open on the same database sees the later changes', async () => {
      const closing = await createChangeFeed(reader, { pollMs: 50 });
      const open = await createChangeFeed(reader, { pollMs: 50 });
      let closingClosed = false;
      try {
        const closed = record(closing);
        const witness = record(open);
        await writes.tenants.create({ id: 'feed-close-1', displayName: 'Before close', createdAt: T0 });
        await waitFor(() => closed.seen.length === 1 && witness.seen.length === 1, 'the change before close() on both feeds');

        await closing.close();
        closingClosed = true;
        // Two more round trips through the open feed: had the closed one kept polling or
        // listening, it would have picked the first of these up by the time the second lands.
        await writes.tenants.create({ id: 'feed-close-2', displayName: 'After close', createdAt: T0 });
        await waitFor(() => witness.seen.length === 2, 'the first change after close() on the open feed');
        await writes.tenants.create({ id: 'feed-close-3', displayName: 'After close', createdAt: T0 });
        await waitFor(() => witness.seen.length === 3, 'the second change after close() on the open feed');

        assert.deepEqual(closed.seen.map((c) => c.tenantId), ['feed-close-1']);
        assert.deepEqual(witness.seen.map((c) => c.tenantId), ['feed-close-1', 'feed-close-2', 'feed-close-3']);
      } finally {
        if (!closingClosed) await closing.close();
        await open.close();
      }
    });
  });
}
