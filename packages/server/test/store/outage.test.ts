import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import pino from 'pino';
import { adminToken, basic, freePort, freshPostgres, seedClient, startServer, type TestServer } from '../helpers.js';

// A PostgreSQL outage while requests run: the server's connections are killed by the database
// (pg_terminate_backend: 57P01, then "Connection terminated unexpectedly" on the client) and
// the database goes away altogether (a TCP proxy between Gatehouse and PostgreSQL that we stop
// and start: connection refused and reset). The machine's PostgreSQL itself is never stopped:
// only this suite's own database and connections are touched. SQLite has no connection to lose,
// so the suite runs where a PostgreSQL is configured.
const base = process.env.GATEHOUSE_TEST_DATABASE_URL;
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

/** A TCP proxy to PostgreSQL that can be taken down (every connection cut, new ones refused) and brought back. */
async function databaseProxy(target: URL) {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  // Idempotent: bringing up a proxy that is up would listen twice on one port and never resolve.
  const up = () =>
    new Promise<void>((resolve, reject) => {
      if (server?.listening) return resolve();
      server = createServer((client) => {
        const upstream = connect(Number(target.port || 5432), target.hostname);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
  await up();
  return {
    port,
    up,
    async down() {
      await new Promise<void>((resolve) => {
        server!.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}

/** Log lines the server wrote, parsed. */
function captureLogs() {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(100);
  }
}

if (base) {
  describe('PostgreSQL outage under load (postgres)', () => {
    let database: Awaited<ReturnType<typeof freshPostgres>>;
    let proxy: Awaited<ReturnType<typeof databaseProxy>>;
    let server: TestServer;
    let sql: pg.Client;
    let token: string;
    let service: { clientId: string; clientSecret: string };
    let deviceClient: string;
    const logs = captureLogs();
    let apiCounter = 0;
    // The test runner turns an uncaught exception into a failed test of its choosing; a real
    // process would have ended. Collect them, to say which test caused one.
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);

    const adminWrite = () =>
      fetch(`${server.url}/api/v1/tenants/default/apis`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ identifier: `https://api-${process.pid}-${apiCounter++}.example.com`, scopes: ['read'] }),
      });
    const adminRead = () => fetch(`${server.url}/api/v1/tenants/default/clients`, { headers: { authorization: `Bearer ${token}` } });
    const deviceStart = () => fetch(`${server.url}/t/default/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: deviceClient, scope: 'openid' }) });
    const serviceToken = () =>
      fetch(`${server.url}/t/default/token`, {
        method: 'POST',
        headers: { authorization: basic(service.clientId, service.clientSecret) },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
    /** Kills every connection Gatehouse holds to this suite's database, as an administrator would. */
    const terminateBackends = async () => {
      const { rows } = await sql.query<{ killed: number }>(
        'select count(*)::int as killed from (select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()) t',
        [new URL(database.url).pathname.slice(1)],
      );
      return rows[0]!.killed;
    };

    before(async () => {
      database = await freshPostgres();
      const target = new URL(database.url);
      proxy = await databaseProxy(target);
      const proxied = new URL(database.url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      server = await startServer({ listen: true, logger: logs.logger, env: { DATABASE_URL: proxied.toString(), GATEHOUSE_LOG_LEVEL: 'info' } });
      process.on('uncaughtException', onUncaught);
      sql = new pg.Client({ connectionString: base });
      await sql.connect();
      token = await adminToken(server);
      service = await seedClient(server);
      deviceClient = (await server.core.catalog.createClient('default', { name: 'cli', type: 'public', grantTypes: [DEVICE_CODE], firstParty: true })).client.clientId;
    });
    after(async () => {
      process.off('uncaughtException', onUncaught);
      await proxy?.up().catch(() => undefined);
      await server?.close();
      await sql?.end();
      await database?.drop();
      await proxy?.down();
    });

    it('survives its connections being terminated mid-request, answers 503 meanwhile, and carries on', async () => {
      const statuses: number[] = [];
      const missingRetryAfter: string[] = [];
      let stop = false;
      const worker = async (call: () => Promise<Response>) => {
        while (!stop) {
          const response = await call();
          statuses.push(response.status);
          if (response.status === 503 && !response.headers.get('retry-after')) missingRetryAfter.push(response.url);
          await response.arrayBuffer();
        }
      };
      const workers = [adminWrite, adminWrite, adminRead, adminRead, deviceStart, deviceStart, serviceToken, serviceToken].map(worker);
      let killed = 0;
      for (let round = 0; round < 8; round++) {
        await delay(150);
        killed += await terminateBackends();
      }
      stop = true;
      await Promise.all(workers);
      assert.ok(killed > 0, 'the database had connections of the server to terminate');
      const unexpected = statuses.filter((s) => ![200, 201, 503].includes(s));
      assert.deepEqual(unexpected, [], 'every answer is a success or a 503');
      assert.deepEqual(missingRetryAfter, [], 'every 503 says when to retry');
      // The same server, without a restart: every kind of request works again.
      assert.equal((await until('an admin write to succeed', async () => ((await adminWrite()).status === 201 ? true : undefined))), true);
      assert.equal((await adminRead()).status, 200);
      assert.equal((await deviceStart()).status, 200);
      await until('the audit writer to catch up', async () => (await server.core.audit.flush(), server.core.audit.pending === 0 ? true : undefined));
      assert.deepEqual(uncaught.map(String), [], 'no error escaped: the process would have survived');
    });

    it('answers 503 with Retry-After while the database is down, logs the outage once, and recovers by itself', async () => {
      const before = logs.lines.length;
      await proxy.down();

      const write = await adminWrite();
      assert.equal(write.status, 503);
      assert.ok(Number(write.headers.get('retry-after')) > 0);
      assert.equal(((await write.json()) as { code: string }).code, 'STORE_UNAVAILABLE');

      const device = await deviceStart();
      assert.equal(device.status, 503);
      assert.ok(Number(device.headers.get('retry-after')) > 0);
      assert.equal(((await device.json()) as { error: string }).error, 'temporarily_unavailable');

      assert.equal((await fetch(`${server.url}/readyz`)).status, 503);

      // A token is issued only when its event can be written (GATEHOUSE_AUDIT_MODE=durable):
      // with the database gone the answer is 503, never a token missing from the trail.
      const issued = await Promise.all(Array.from({ length: 40 }, () => serviceToken().then(async (r) => (await r.arrayBuffer(), r.status))));
      assert.deepEqual([...new Set(issued)], [503]);
      // Events that need no database to happen (here: written by the server's own writer)
      // keep arriving while it is away; they wait in memory.
      for (let i = 0; i < 10; i++) {
        for (let j = 0; j < 20; j++) server.core.audit.record({ tenantId: 'default', time: Date.now(), actor: 'outage-test', action: 'key.retired', target: `k${i}-${j}`, result: 'success' });
        await Promise.all(Array.from({ length: 4 }, () => adminWrite().then((r) => r.arrayBuffer())));
        await delay(100);
      }
      await until('the change feed to notice its LISTEN connection is gone', async () => (server.core.feed.listening ? undefined : true), 5_000);

      const during = logs.lines.slice(before);
      const auditLines = during.filter((l) => l.msg.startsWith('audit writes failing'));
      const outageLines = during.filter((l) => l.msg.startsWith('database unreachable'));
      assert.equal(auditLines.length, 1, 'the audit writer says once that it is failing, not once per event or attempt');
      assert.equal(outageLines.length, 1, 'the store logs the outage once');
      assert.ok(during.filter((l) => l.level >= 50).length <= 3, `a handful of error lines, not one per request: ${JSON.stringify(during.map((l) => l.msg))}`);

      await proxy.up();
      await until('an admin write to succeed again', async () => ((await adminWrite()).status === 201 ? true : undefined));
      assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
      assert.equal((await deviceStart()).status, 200);
      await until('the change feed to listen again', async () => (server.core.feed.listening ? true : undefined));
      const listeners = await sql.query('select 1 from pg_stat_activity where datname = $1 and query = $2', [new URL(database.url).pathname.slice(1), 'LISTEN gatehouse_changes']);
      assert.equal(listeners.rowCount, 1, 'one LISTEN connection again');
      // The audit events buffered during the outage reach the database.
      await until('the buffered audit events to be written', async () => (server.core.audit.pending === 0 ? true : undefined));
      const rows = await server.core.handle.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('actor', '=', 'outage-test')
        .execute();
      assert.equal(Number(rows[0]!.n), 200, 'every event recorded during the outage is in the audit trail');
      assert.equal((await serviceToken()).status, 200);
      assert.ok(logs.lines.some((l) => l.msg === 'audit writes resumed'));
      assert.ok(logs.lines.some((l) => l.msg === 'database reachable again'));
      assert.deepEqual(uncaught.map(String), [], 'no error escaped: the process would have survived');
    });
  });
}
