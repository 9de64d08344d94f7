import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadConfig } from '../../src/config/defaults.js';
import { createCore } from '../../src/core.js';
import { basic, dialects, freePort, freshPostgres } from '../helpers.js';

// kill -9 of the real server process while tokens are issued, permissions checked and clients
// created in parallel: every response the client received has its audit event after the crash,
// and every client the database holds has its client.created event (in either mode: an admin
// change and its event share one transaction).
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const schema = 'definition user {}\ndefinition document {\n  relation viewer: user\n  permission view = viewer\n}\n';

for (const dialect of dialects) {
  describe(`audit trail across kill -9 (${dialect})`, () => {
    let dataDir: string;
    let pgdb: Awaited<ReturnType<typeof freshPostgres>> | undefined;
    let env: Record<string, string>;
    let service: { clientId: string; clientSecret: string };
    let admin: { clientId: string; clientSecret: string };
    let child: ChildProcess | undefined;

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-kill-'));
      pgdb = dialect === 'postgres' ? await freshPostgres() : undefined;
      const port = await freePort();
      env = {
        GATEHOUSE_DATA_DIR: dataDir,
        GATEHOUSE_PORT: String(port),
        GATEHOUSE_HOST: '127.0.0.1',
        GATEHOUSE_PUBLIC_URL: `http://127.0.0.1:${port}`,
        GATEHOUSE_LOG_LEVEL: 'silent',
        ...(pgdb ? { DATABASE_URL: pgdb.url } : {}),
      };
      // The clients exist before the server starts (the same database and master key).
      const core = await createCore(loadConfig(env), { logger: pino({ level: 'silent' }) });
      await core.ensureDefaults();
      admin = (await core.bootstrapAdminClient())!;
      await core.catalog.createApi('default', { identifier: 'https://api.example.com', scopes: ['read'] });
      const created = await core.catalog.createClient('default', { name: 'svc', grantTypes: ['client_credentials'], apis: { 'https://api.example.com': ['read'] } });
      service = { clientId: created.client.clientId, clientSecret: created.clientSecret! };
      await core.close();
    });
    after(async () => {
      child?.kill('SIGKILL');
      await pgdb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    /**
     * Starts `gatehouse serve` and waits for its own "gatehouse ready" line: a /readyz poll
     * could be answered by another test's server that took the port between freePort() and the
     * child's listen. A port taken that way is replaced by another one.
     */
    async function startServerProcess(extraEnv: Record<string, string>): Promise<ChildProcess> {
      for (let attempt = 0; ; attempt++) {
        const started = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
          env: { ...process.env, ...env, ...extraEnv, GATEHOUSE_LOG_LEVEL: 'info', NODE_ENV: 'test' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        started.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const ready = await new Promise<boolean>((resolve) => {
          let out = '';
          const timer = setTimeout(() => resolve(false), 60_000);
          const onData = (chunk: Buffer) => {
            out += chunk.toString();
            if (!out.includes('"msg":"gatehouse ready"')) return;
            started.stdout!.off('data', onData);
            clearTimeout(timer);
            resolve(true);
          };
          started.stdout!.on('data', onData);
          started.once('exit', () => {
            clearTimeout(timer);
            resolve(false);
          });
        });
        // Keep draining the log so the child never blocks on a full pipe.
        started.stdout!.resume();
        if (ready) return started;
        started.kill('SIGKILL');
        if (attempt < 3 && /EADDRINUSE/.test(stderr)) {
          const port = await freePort();
          Object.assign(env, { GATEHOUSE_PORT: String(port), GATEHOUSE_PUBLIC_URL: `http://127.0.0.1:${port}` });
          continue;
        }
        assert.fail(`the server did not start: ${stderr.slice(-2000)}`);
      }
    }

    /** Requests in parallel until the process dies; returns the request ids of the successes the client received. */
    async function load(): Promise<{ received: string[]; kill: () => void; done: Promise<void> }> {
      const base = env.GATEHOUSE_PUBLIC_URL!;
      const token = async (id: string, clientId: string, secret: string, resource?: string) =>
        fetch(`${base}/t/default/token`, {
          method: 'POST',
          headers: { authorization: basic(clientId, secret), 'x-request-id': id },
          body: new URLSearchParams({ grant_type: 'client_credentials', ...(resource ? { resource } : {}) }),
        });
      const issued = await token(randomUUID(), admin.clientId, admin.clientSecret, 'urn:gatehouse:admin');
      const issuedBody = (await issued.json()) as { access_token?: string };
      assert.equal(issued.status, 200, `admin token: ${JSON.stringify(issuedBody)}`);
      const adminToken = issuedBody.access_token!;
      const api = (path: string, id: string, body: unknown, method = 'POST') =>
        fetch(`${base}/api/v1${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', 'x-request-id': id }, body: JSON.stringify(body) });
      const schemaWritten = await api('/tenants/default/authz/schema', randomUUID(), { schema }, 'PUT');
      assert.equal(schemaWritten.status, 200, `schema: ${await schemaWritten.text()}`);

      const received: string[] = [];
      let dead = false;
      const calls = [
        (id: string) => token(id, service.clientId, service.clientSecret),
        (id: string) => api('/tenants/default/authz/check', id, { resource: 'document:1', permission: 'view', subject: 'user:ann' }),
        (id: string) => api('/tenants/default/clients', id, { name: `c-${id}`, grant_types: ['client_credentials'] }),
      ];
      const worker = async (call: (id: string) => Promise<Response>) => {
        while (!dead) {
          const id = `kill-${randomUUID()}`;
          try {
            const response = await call(id);
            await response.arrayBuffer();
            if (response.ok) received.push(id);
          } catch {
            // The connection died with the process: this response was never received.
          }
        }
      };
      const done = Promise.all(Array.from({ length: 12 }, (_, i) => worker(calls[i % calls.length]!))).then(() => undefined);
      return {
        received,
        kill: () => {
          child!.kill('SIGKILL');
          dead = true;
        },
        done,
      };
    }

    async function missingAfterCrash(mode: 'durable' | 'async', extra: Record<string, string> = {}): Promise<{ received: number; missing: string[]; clients: number; unaudited: string[] }> {
      child = await startServerProcess({ GATEHOUSE_AUDIT_MODE: mode, ...extra });
      // A failure before the crash must not leave this server running into the next test.
      const run = await load().catch((error: unknown) => {
        child?.kill('SIGKILL');
        child = undefined;
        throw error;
      });
      // Warmed up (the engine is built on first use), then a second of full load, then the crash.
      const deadline = Date.now() + 60_000;
      while (run.received.length < 50 && Date.now() < deadline) await delay(50);
      await delay(1000);
      run.kill();
      await run.done;
      await new Promise((resolve) => (child!.exitCode !== null || child!.signalCode !== null ? resolve(undefined) : child!.once('exit', resolve)));
      child = undefined;
      // After the crash: what is in the database (the next start would serve it as is).
      const core = await createCore(loadConfig(env), { logger: pino({ level: 'silent' }) });
      try {
        const ids = new Set<string>();
        for (let i = 0; i < run.received.length; i += 500) {
          const rows = await core.handle.db.selectFrom('audit_events').select('request_id').where('request_id', 'in', run.received.slice(i, i + 500)).execute();
          for (const row of rows) ids.add(row.request_id!);
        }
        const clients = (await core.handle.db.selectFrom('clients').select('client_id').where('tenant_id', '=', 'default').where('name', 'like', 'c-kill-%').execute()).map((r) => r.client_id);
        const created = new Set((await core.handle.db.selectFrom('audit_events').select('target').where('action', '=', 'client.created').execute()).map((r) => r.target));
        return { received: run.received.length, missing: run.received.filter((id) => !ids.has(id)), clients: clients.length, unaudited: clients.filter((id) => !created.has(id)) };
      } finally {
        await core.close();
      }
    }

    it('loses no audit event of a response the client received (GATEHOUSE_AUDIT_MODE=durable)', { timeout: 120_000 }, async () => {
      const { received, missing, clients, unaudited } = await missingAfterCrash('durable');
      assert.ok(received > 50, `enough traffic to mean something: ${received} responses`);
      assert.deepEqual(missing, []);
      assert.ok(clients > 5, `clients were created: ${clients}`);
      assert.deepEqual(unaudited, [], 'a client the database holds without its client.created event');
    });

    it('can lose the last events of tokens and decisions in async mode, which is why durable is the default', { timeout: 120_000 }, async () => {
      const { received, missing, clients, unaudited } = await missingAfterCrash('async', { GATEHOUSE_AUDIT_FLUSH_MS: '2000' });
      assert.ok(received > 50);
      assert.ok(missing.length > 0, 'the fire-and-forget writer had events in memory when the process died');
      assert.ok(clients > 5);
      assert.deepEqual(unaudited, [], 'admin changes commit with their event in async mode too');
    });
  });
}
