import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, it } from 'node:test';
import { sql } from 'kysely';
import { adminCaller, adminToken, dialects, startServer, type DialectName, type TestServer } from '../helpers.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function gatehouse(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', main, ...args], { env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'silent', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end('');
  });
}

/**
 * The database refuses audit rows matching `when` (a SQL condition on `new`), the way a full
 * disk or a lost connection would refuse them at that moment. On PostgreSQL `atCommit` makes
 * the refusal a deferred constraint trigger: the row is accepted and the commit fails.
 */
async function refuseAudit(server: TestServer, dialect: DialectName, when: string, options: { atCommit?: boolean } = {}): Promise<void> {
  const db = server.core.handle.db;
  if (dialect === 'sqlite') {
    await sql.raw(`create trigger refuse_audit before insert on audit_events when ${when} begin select raise(abort, 'audit refused'); end`).execute(db);
    return;
  }
  await sql.raw(`create or replace function refuse_audit() returns trigger language plpgsql as $$ begin raise exception 'audit refused'; end $$`).execute(db);
  const timing = options.atCommit ? 'after insert on audit_events deferrable initially deferred' : 'before insert on audit_events';
  await sql.raw(`create ${options.atCommit ? 'constraint ' : ''}trigger refuse_audit ${timing} for each row when (${when}) execute function refuse_audit()`).execute(db);
}

async function allowAudit(server: TestServer, dialect: DialectName): Promise<void> {
  await sql.raw(dialect === 'sqlite' ? 'drop trigger if exists refuse_audit' : 'drop trigger if exists refuse_audit on audit_events').execute(server.core.handle.db);
}

for (const dialect of dialects) {
  describe(`admin and CLI changes commit with their audit event (${dialect})`, () => {
    let server: TestServer;
    let token: string;
    const call = adminCaller(() => server, () => token);
    const events = async (action: string, tenantId = 'acme') => {
      await server.core.audit.flush();
      return server.core.repos.audit.query({ tenantId, action, limit: 100 });
    };

    before(async () => {
      server = await startServer({ dialect });
      token = await adminToken(server);
      assert.equal((await call('POST', '/tenants', { id: 'acme' })).statusCode, 201);
      await call('PUT', '/tenants/acme/authz/schema', { schema: 'definition user {}\ndefinition document {\n  relation viewer: user\n  permission view = viewer\n}' });
    });
    after(() => server.close());
    beforeEach(() => allowAudit(server, dialect));

    it('a client whose event cannot be written is not created, and the answer says so', async () => {
      const before = (await call('GET', '/tenants/acme/clients')).json().clients.length;
      await refuseAudit(server, dialect, "new.action = 'client.created'");
      const refused = await call('POST', '/tenants/acme/clients', { name: 'ci', grant_types: ['client_credentials'] });
      assert.ok(refused.statusCode >= 500, `expected an error, got ${refused.statusCode} ${refused.body}`);
      assert.equal(refused.json().client_id, undefined, 'no credentials handed out for a client that does not exist');
      assert.equal((await call('GET', '/tenants/acme/clients')).json().clients.length, before, 'the client was rolled back with its event');
      assert.equal((await events('client.created')).length, 0);

      await allowAudit(server, dialect);
      const created = await call('POST', '/tenants/acme/clients', { name: 'ci', grant_types: ['client_credentials'] });
      assert.equal(created.statusCode, 201);
      assert.equal((await call('GET', '/tenants/acme/clients')).json().clients.length, before + 1);
      assert.deepEqual((await events('client.created')).map((e) => e.target), [created.json().client_id]);
    });

    it('a tenant whose event cannot be written does not exist afterwards, not even in a cache', async () => {
      await refuseAudit(server, dialect, "new.action = 'tenant.created'");
      assert.ok((await call('POST', '/tenants', { id: 'ghost' })).statusCode >= 500);
      assert.equal((await call('GET', '/tenants/ghost')).statusCode, 404, 'no tenant, and none remembered from inside the rolled-back transaction');
      assert.equal((await server.inject({ method: 'GET', url: '/t/ghost/.well-known/openid-configuration' })).statusCode, 404);
      assert.deepEqual(await server.core.keys.list('ghost'), [], 'its first signing key went with it');

      await allowAudit(server, dialect);
      assert.equal((await call('POST', '/tenants', { id: 'ghost' })).statusCode, 201, 'the id is free: nothing of the first attempt remains');
      assert.equal((await server.inject({ method: 'GET', url: '/t/ghost/.well-known/openid-configuration' })).statusCode, 200);
      assert.equal((await events('tenant.created', 'ghost')).length, 1);
    });

    it('a relationship write whose event cannot be written grants nothing, even to checks served from memory', async () => {
      const check = async () =>
        (await call('POST', '/tenants/acme/authz/check', { resource: 'document:plan', permission: 'view', subject: 'user:mallory' })).json().permissionship;
      // The snapshot exists before the write: a write that patched it in place before its commit would show here.
      assert.equal(await check(), 'denied');
      await refuseAudit(server, dialect, "new.action = 'authz.relationships_written'");
      const refused = await call('POST', '/tenants/acme/authz/relationships/write', { updates: [{ operation: 'touch', relationship: 'document:plan#viewer@user:mallory' }] });
      assert.ok(refused.statusCode >= 500, `expected an error, got ${refused.statusCode}`);
      assert.equal(await check(), 'denied');
      assert.equal((await call('POST', '/tenants/acme/authz/relationships/read', { filter: { resource_type: 'document', resource_id: 'plan' } })).json().relationships.length, 0);

      await allowAudit(server, dialect);
      assert.equal((await call('POST', '/tenants/acme/authz/relationships/write', { updates: [{ operation: 'touch', relationship: 'document:plan#viewer@user:mallory' }] })).statusCode, 200);
      assert.equal(await check(), 'allowed');
    });

    it('a user whose event cannot be written is not created', async () => {
      await refuseAudit(server, dialect, "new.action = 'user.created'");
      assert.ok((await call('POST', '/tenants/acme/users', { email: 'eve@acme.test', password: 'correct horse battery staple' })).statusCode >= 500);
      assert.equal((await call('GET', '/tenants/acme/users?email_prefix=eve')).json().users.length, 0);
      await allowAudit(server, dialect);
      assert.equal((await call('POST', '/tenants/acme/users', { email: 'eve@acme.test', password: 'correct horse battery staple' })).statusCode, 201);
    });

    it('an import commits chunk by chunk, each with its event: what is stored is what the trail says', async () => {
      const lines = Array.from({ length: 4500 }, (_, i) => `document:imp${i}#viewer@user:ann`).join('\n');
      // The third chunk (index 2) cannot be audited: the first two stay, with their events.
      await refuseAudit(server, dialect, `new.action = 'authz.relationships_written' and new.details like '%"import_chunk":2,%'`);
      assert.ok((await call('POST', '/tenants/acme/authz/relationships/import', { relationships: lines })).statusCode >= 500);
      const audited = (await events('authz.relationships_written')).filter((e) => e.details?.import_chunk !== undefined);
      assert.deepEqual(audited.map((e) => e.details!.imported).sort(), [2000, 2000]);
      const stored = await server.core.authz.readRelationships('acme', { resourceType: 'document' }, { limit: 5000 });
      assert.equal(stored.filter((r) => r.resourceId.startsWith('imp')).length, 4000);
    });

    if (dialect === 'postgres') {
      it('the answer leaves after the commit: a commit that fails answers with an error, not with the created tenant', async () => {
        await refuseAudit(server, dialect, "new.action = 'tenant.created'", { atCommit: true });
        const refused = await call('POST', '/tenants', { id: 'latecomer' });
        assert.ok(refused.statusCode >= 500, `expected an error, got ${refused.statusCode} ${refused.body}`);
        assert.equal((await call('GET', '/tenants/latecomer')).statusCode, 404);
      });
    }

    it('the CLI: a change whose event cannot be written fails, prints nothing and leaves nothing', async () => {
      const env = {
        GATEHOUSE_DATA_DIR: server.config.dataDir,
        GATEHOUSE_PUBLIC_URL: server.url,
        ...(server.config.databaseUrl ? { DATABASE_URL: server.config.databaseUrl } : {}),
      };
      await refuseAudit(server, dialect, "new.action = 'tenant.created' and new.actor = 'cli'");
      const refused = await gatehouse(['tenants', 'create', 'clitenant'], env);
      assert.notEqual(refused.code, 0);
      assert.equal(refused.stdout, '', 'nothing reported as created');
      assert.equal(await server.core.repos.tenants.get('clitenant'), undefined);

      await allowAudit(server, dialect);
      const created = await gatehouse(['tenants', 'create', 'clitenant'], env);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /created tenant clitenant/);
      assert.equal((await events('tenant.created', 'clitenant')).length, 1);
    });
  });
}
