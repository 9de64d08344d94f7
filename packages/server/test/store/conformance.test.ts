import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { AuditEvent, AuditQuery } from '../../src/audit/types.js';
import type { SigningKeyRecord } from '../../src/keys/types.js';
import type { ApiRecord, ClientRecord, ClientSecretRecord, OidcPayloadRecord } from '../../src/oauth/types.js';
import { openDatabase, type DatabaseHandle, type DatabaseOptions } from '../../src/store/database.js';
import { preparedQuery } from '../../src/store/prepared.js';
import { createRepositories, type Repositories } from '../../src/store/repositories.js';
import { currentRevision } from '../../src/store/revisions.js';
import type { TenantRecord } from '../../src/tenants/types.js';
import { dialects, freshPostgres, type DialectName } from '../helpers.js';

// Every time in this suite is fixed: nothing here reads the wall clock, so expiry and
// retirement are decided by the `now` each test passes in.
const T0 = Date.parse('2026-11-22T10:00:00Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** One throwaway database per dialect; `open()` may be called again for a second handle on it. */
async function throwawayDatabase(dialect: DialectName) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-store-'));
  const pgdb = dialect === 'postgres' ? await freshPostgres() : undefined;
  const options: DatabaseOptions = { dataDir, databaseUrl: pgdb?.url };
  return {
    options,
    open: () => openDatabase(options),
    async drop() {
      await pgdb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const tenant = (id: string, displayName = `Tenant ${id}`): TenantRecord => ({ id, displayName, logoType: null, createdAt: T0 });

const signingKey = (tenantId: string, kid: string, createdAt: number): SigningKeyRecord => ({
  tenantId,
  kid,
  alg: 'ES256',
  status: 'active',
  publicJwk: { kty: 'EC', crv: 'P-256', x: `x-${kid}`, y: `y-${kid}`, kid },
  privateJwkEnc: `v1.sealed-${kid}`,
  createdAt,
  deactivatedAt: null,
  retireAt: null,
});

const api = (tenantId: string, id: string, identifier: string, extra: Partial<ApiRecord> = {}): ApiRecord => ({
  tenantId,
  id,
  identifier,
  name: `API ${id}`,
  scopes: ['read', 'write'],
  accessTokenTtl: 600,
  builtin: false,
  createdAt: T0,
  resourceServers: [],
  ...extra,
});

const client = (tenantId: string, clientId: string, extra: Partial<ClientRecord> = {}): ClientRecord => ({
  tenantId,
  clientId,
  name: `client ${clientId}`,
  type: 'confidential',
  grantTypes: ['client_credentials'],
  redirectUris: ['https://app.example.com/callback'],
  apiScopes: { 'https://api.example.com': ['read'] },
  authMethod: 'client_secret_basic',
  postLogoutRedirectUris: ['https://app.example.com/'],
  firstParty: true,
  backchannelLogoutUri: 'https://app.example.com/backchannel',
  refreshTokenIdleTtl: 3600,
  refreshTokenAbsoluteTtl: null,
  tokensValidAfter: null,
  idTokenAlg: 'ES256',
  builtin: false,
  createdAt: T0,
  updatedAt: T0,
  ...extra,
});

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

const secret = (id: string, plaintext: string, createdAt: number): ClientSecretRecord => ({ id, hash: sha256(plaintext), createdAt, expiresAt: null });

// Payloads expire a day after T0 unless a test says otherwise, so that only the purge
// test's own rows are due when it purges at T0 (purgeExpired is not tenant-scoped).
const payload = (tenantId: string, model: string, id: string, extra: Partial<OidcPayloadRecord> = {}): OidcPayloadRecord => ({
  tenantId,
  model,
  id,
  payload: JSON.stringify({ jti: id, kind: model }),
  grantId: null,
  userCode: null,
  uid: null,
  accountId: null,
  expiresAt: T0 + DAY,
  consumedAt: null,
  ...extra,
});

/**
 * Another Gatehouse process on the same database, as with node:cluster workers or the CLI
 * beside a running server: it creates tenants in a loop until its stdin closes, then
 * reports how many writes it attempted and which failed.
 */
async function startWriterProcess(options: DatabaseOptions) {
  const module = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const source = `
    const { openDatabase } = await import(${module('../../src/store/database.ts')});
    const { createRepositories } = await import(${module('../../src/store/repositories.ts')});
    const handle = await openDatabase(${JSON.stringify(options)});
    const repos = createRepositories(handle);
    let stopped = false;
    process.stdin.on('end', () => { stopped = true; }).resume();
    console.log('ready');
    let attempts = 0;
    const failures = [];
    while (!stopped) {
      try {
        await repos.tenants.create({ id: 'writer-' + process.pid + '-' + attempts, displayName: 'writer', createdAt: 0 });
      } catch (error) {
        failures.push('tenants.create: ' + (error.code ?? String(error)));
      }
      attempts += 1;
      // SQLite calls never yield to the event loop on their own; let stdin's end through.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await handle.close();
    console.log(JSON.stringify({ attempts, failures }));
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', source], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, 'ready', 'the writer process started');
  return {
    async stop(): Promise<{ attempts: number; failures: string[] }> {
      child.stdin.end();
      const report = await lines.next();
      await exited;
      return JSON.parse(String(report.value));
    },
  };
}

/** `name: error code` → how often, so a failed assertion shows a short summary. */
function tally(failures: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const failure of failures) counts[failure] = (counts[failure] ?? 0) + 1;
  return counts;
}

for (const dialect of dialects) {
  describe(`storage conformance (${dialect})`, () => {
    let database: Awaited<ReturnType<typeof throwawayDatabase>>;
    let handle: DatabaseHandle;
    let repos: Repositories;

    before(async () => {
      database = await throwawayDatabase(dialect);
      handle = await database.open();
      repos = createRepositories(handle);
    });
    after(async () => {
      await handle?.close();
      await database?.drop();
    });

    const secretRows = (tenantId: string, clientId: string) =>
      handle.db.selectFrom('client_secrets').selectAll().where('tenant_id', '=', tenantId).where('client_id', '=', clientId).orderBy('id').execute();

    describe('migrations', () => {
      it('opens the same database a second time without re-running a migration and keeps its data', async () => {
        assert.equal(await repos.tenants.create(tenant('migrations')), true);
        const revision = await currentRevision(handle.db);
        const applied = async (db: DatabaseHandle['db']) =>
          (await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db)).rows.map((r) => r.name);
        const appliedBefore = await applied(handle.db);

        const second = await database.open();
        try {
          assert.deepEqual(await applied(second.db), appliedBefore);
          assert.deepEqual(await createRepositories(second).tenants.get('migrations'), tenant('migrations'));
          assert.equal(await currentRevision(second.db), revision);
        } finally {
          await second.close();
        }
      });
    });

    describe('tenants', () => {
      it('creates a tenant and reads it back by id and in the list', async () => {
        assert.equal(await repos.tenants.create(tenant('acme', 'Acme Corp')), true);
        assert.equal(await repos.tenants.create(tenant('globex', 'Globex')), true);

        assert.deepEqual(await repos.tenants.get('acme'), tenant('acme', 'Acme Corp'));
        const listed = (await repos.tenants.list()).filter((t) => t.id === 'acme' || t.id === 'globex');
        assert.deepEqual(listed.sort((a, b) => a.id.localeCompare(b.id)), [tenant('acme', 'Acme Corp'), tenant('globex', 'Globex')]);
      });

      it('renames a tenant and keeps, replaces and removes its logo, bumping the revision only when something changed', async () => {
        assert.equal(await repos.tenants.create(tenant('brand', 'Brand')), true);
        const before = await currentRevision(handle.db);
        assert.equal(await repos.tenants.update('brand', { displayName: 'Brand Inc' }), true);
        assert.equal((await repos.tenants.get('brand'))?.displayName, 'Brand Inc');
        const logo = { type: 'image/png', data: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]) };
        assert.equal(await repos.tenants.setLogo('brand', logo), true);
        assert.deepEqual(await repos.tenants.getLogo('brand'), logo);
        assert.equal((await repos.tenants.get('brand'))?.logoType, 'image/png');
        assert.ok((await currentRevision(handle.db)) > before);
        assert.equal(await repos.tenants.setLogo('brand', null), true);
        assert.equal(await repos.tenants.getLogo('brand'), undefined);
        assert.equal(await repos.tenants.update('nobody', { displayName: 'x' }), false);
        assert.equal(await repos.tenants.setLogo('nobody', logo), false);
      });

      it('refuses a duplicate tenant id and leaves the existing tenant and the revision unchanged', async () => {
        assert.equal(await repos.tenants.create(tenant('initech', 'Initech')), true);
        const revision = await currentRevision(handle.db);

        assert.equal(await repos.tenants.create({ id: 'initech', displayName: 'Impostor', createdAt: T0 + DAY }), false);

        assert.deepEqual(await repos.tenants.get('initech'), tenant('initech', 'Initech'));
        assert.equal((await repos.tenants.list()).filter((t) => t.id === 'initech').length, 1);
        assert.equal(await currentRevision(handle.db), revision);
      });

      it('returns undefined for a tenant that does not exist', async () => {
        assert.equal(await repos.tenants.get('no-such-tenant'), undefined);
      });
    });

    describe('signing keys', () => {
      it('activates the first key of a tenant as its only key', async () => {
        await repos.tenants.create(tenant('keys-first'));
        await repos.keys.activate('keys-first', [signingKey('keys-first', 'k1', T0)], T0 + DAY);

        assert.deepEqual(await repos.keys.list('keys-first'), [signingKey('keys-first', 'k1', T0)]);
      });

      it('demotes the active key to previous with retireAt when a new key is activated, newest first', async () => {
        await repos.tenants.create(tenant('keys-rotate'));
        await repos.tenants.create(tenant('keys-bystander'));
        await repos.keys.activate('keys-bystander', [signingKey('keys-bystander', 'b1', T0)], T0 + DAY);
        await repos.keys.activate('keys-rotate', [signingKey('keys-rotate', 'k1', T0)], T0 + DAY);

        await repos.keys.activate('keys-rotate', [signingKey('keys-rotate', 'k2', T0 + HOUR)], T0 + 2 * HOUR);

        assert.deepEqual(await repos.keys.list('keys-rotate'), [
          signingKey('keys-rotate', 'k2', T0 + HOUR),
          { ...signingKey('keys-rotate', 'k1', T0), status: 'previous', deactivatedAt: T0 + HOUR, retireAt: T0 + 2 * HOUR },
        ]);
        // Rotation is per tenant: another tenant's active key stays active.
        assert.deepEqual(await repos.keys.list('keys-bystander'), [signingKey('keys-bystander', 'b1', T0)]);
      });

      it('retires only previous keys whose retireAt has come, reports how many, and then finds nothing more to do', async () => {
        await repos.tenants.create(tenant('keys-retire'));
        await repos.tenants.create(tenant('keys-retire-other'));
        await repos.keys.activate('keys-retire', [signingKey('keys-retire', 'k1', T0)], 0);
        await repos.keys.activate('keys-retire', [signingKey('keys-retire', 'k2', T0 + HOUR)], T0 + 2 * HOUR); // k1 → previous until T0+2h
        await repos.keys.activate('keys-retire', [signingKey('keys-retire', 'k3', T0 + 2 * HOUR)], T0 + 5 * HOUR); // k2 → previous until T0+5h
        await repos.keys.activate('keys-retire-other', [signingKey('keys-retire-other', 'o1', T0)], 0);
        await repos.keys.activate('keys-retire-other', [signingKey('keys-retire-other', 'o2', T0 + HOUR)], T0); // o1 → previous, long due
        const statuses = async (tenantId: string) => Object.fromEntries((await repos.keys.list(tenantId)).map((k) => [k.kid, k.status]));

        assert.equal(await repos.keys.retireDue('keys-retire', T0 + 2 * HOUR - 1), 0);
        assert.deepEqual(await statuses('keys-retire'), { k3: 'active', k2: 'previous', k1: 'previous' });

        assert.equal(await repos.keys.retireDue('keys-retire', T0 + 2 * HOUR), 1, 'retireAt equal to now is due');
        assert.deepEqual(await statuses('keys-retire'), { k3: 'active', k2: 'previous', k1: 'retired' });
        assert.equal(await repos.keys.retireDue('keys-retire', T0 + 2 * HOUR), 0);

        // Far in the future the active key is still never retired, and other tenants are untouched.
        assert.equal(await repos.keys.retireDue('keys-retire', T0 + 365 * DAY), 1);
        assert.deepEqual(await statuses('keys-retire'), { k3: 'active', k2: 'retired', k1: 'retired' });
        assert.equal(await repos.keys.retireDue('keys-retire', T0 + 365 * DAY), 0);
        assert.deepEqual(await statuses('keys-retire-other'), { o2: 'active', o1: 'previous' });
      });

      it('activates a default key and the RS256 key beside it together, and demotes both together', async () => {
        await repos.tenants.create(tenant('keys-pair'));
        const rs = (kid: string, at: number): SigningKeyRecord => ({ ...signingKey('keys-pair', kid, at), alg: 'RS256' });
        await repos.keys.activate('keys-pair', [signingKey('keys-pair', 'e1', T0), rs('r1', T0)], T0 + DAY);
        await repos.keys.activate('keys-pair', [signingKey('keys-pair', 'e2', T0 + HOUR), rs('r2', T0 + HOUR)], T0 + 2 * HOUR);
        const byKid = Object.fromEntries((await repos.keys.list('keys-pair')).map((k) => [k.kid, [k.alg, k.status, k.retireAt]]));
        assert.deepEqual(byKid, { e2: ['ES256', 'active', null], r2: ['RS256', 'active', null], e1: ['ES256', 'previous', T0 + 2 * HOUR], r1: ['RS256', 'previous', T0 + 2 * HOUR] });
      });

      it('adds an active key of a missing algorithm once, however many ask at the same time', async () => {
        await repos.tenants.create(tenant('keys-add'));
        await repos.keys.activate('keys-add', [signingKey('keys-add', 'e1', T0)], T0 + DAY);
        const added = await Promise.all(Array.from({ length: 8 }, (_, i) => repos.keys.addActive({ ...signingKey('keys-add', `r${i}`, T0 + 1), alg: 'RS256' })));
        assert.equal(added.filter(Boolean).length, 1);
        const active = (await repos.keys.list('keys-add')).filter((k) => k.status === 'active').map((k) => k.alg).sort();
        assert.deepEqual(active, ['ES256', 'RS256']);
      });
    });

    describe('OAuth APIs', () => {
      before(async () => {
        await repos.tenants.create(tenant('apis-a'));
        await repos.tenants.create(tenant('apis-b'));
      });

      it('creates an API and lists it with every field intact', async () => {
        const orders = api('apis-a', 'orders', 'https://orders.example.com', { scopes: ['orders:read', 'orders:write'], accessTokenTtl: 300 });
        assert.equal(await repos.oauth.createApi(orders), true);

        assert.deepEqual(await repos.oauth.listApis('apis-a'), [orders]);
      });

      it('refuses a second API with an identifier already taken in the same tenant', async () => {
        assert.equal(await repos.oauth.createApi(api('apis-a', 'orders-again', 'https://orders.example.com')), false);

        assert.deepEqual((await repos.oauth.listApis('apis-a')).map((a) => a.id), ['orders']);
      });

      it('accepts the same identifier in another tenant and lists APIs per tenant only', async () => {
        const theirs = api('apis-b', 'orders', 'https://orders.example.com', { createdAt: T0 + MINUTE });
        assert.equal(await repos.oauth.createApi(theirs), true);

        assert.deepEqual(await repos.oauth.listApis('apis-b'), [theirs]);
        assert.deepEqual((await repos.oauth.listApis('apis-a')).map((a) => `${a.tenantId}/${a.id}`), ['apis-a/orders']);
        assert.deepEqual(await repos.oauth.listApis('apis-nobody'), []);
      });

      it('refuses to delete a built-in API', async () => {
        const admin = api('apis-a', 'admin', 'urn:gatehouse:admin', { builtin: true, createdAt: T0 + MINUTE });
        assert.equal(await repos.oauth.createApi(admin), true);

        assert.equal(await repos.oauth.deleteApi('apis-a', 'admin'), false);
        assert.deepEqual((await repos.oauth.listApis('apis-a')).find((a) => a.id === 'admin'), admin);
      });

      it('deletes an API that is not built in, once, and only in its own tenant', async () => {
        assert.equal(await repos.oauth.createApi(api('apis-a', 'billing', 'https://billing.example.com')), true);

        assert.equal(await repos.oauth.deleteApi('apis-b', 'billing'), false, 'another tenant cannot delete it');
        assert.equal(await repos.oauth.deleteApi('apis-a', 'billing'), true);
        assert.equal(await repos.oauth.deleteApi('apis-a', 'billing'), false, 'already gone');
        assert.deepEqual((await repos.oauth.listApis('apis-a')).map((a) => a.id).sort(), ['admin', 'orders']);
        assert.deepEqual((await repos.oauth.listApis('apis-b')).map((a) => a.id), ['orders']);
      });

      it('updates name, scopes and lifetime of an API in its own tenant only', async () => {
        const original = api('apis-a', 'inventory', 'https://inventory.example.com');
        assert.equal(await repos.oauth.createApi(original), true);
        const changed = { ...original, name: 'Inventory', scopes: ['items:read'], accessTokenTtl: 120 };
        assert.equal(await repos.oauth.updateApi({ ...changed, tenantId: 'apis-b' }), false, 'another tenant cannot change it');
        assert.equal(await repos.oauth.updateApi(changed), true);
        assert.deepEqual((await repos.oauth.listApis('apis-a')).find((a) => a.id === 'inventory'), changed);
        assert.equal(await repos.oauth.updateApi({ ...changed, id: 'missing' }), false);
        assert.equal(await repos.oauth.deleteApi('apis-a', 'inventory'), true);
      });
    });

    describe('clients', () => {
      before(async () => {
        await repos.tenants.create(tenant('clients-a'));
        await repos.tenants.create(tenant('clients-b'));
        // Client entries name APIs of their tenant (the store keeps only those: issue 9 part 12).
        for (const t of ['clients-a', 'clients-b']) {
          await repos.oauth.createApi(api(t, `${t}-api`, 'https://api.example.com', { scopes: ['read'] }));
          await repos.oauth.createApi(api(t, `${t}-orders`, 'https://orders.example.com', { scopes: ['orders:read', 'orders:write'] }));
          await repos.oauth.createApi(api(t, `${t}-billing`, 'https://billing.example.com', { scopes: [] }));
        }
      });

      it('keeps only the entries of APIs and scopes the tenant defines, at create and at update', async () => {
        await repos.oauth.createClient(client('clients-a', 'svc-clamp', { apiScopes: { 'https://orders.example.com': ['orders:read', 'orders:nope'], 'https://gone.example.com': ['read'] } }));
        assert.deepEqual((await repos.oauth.getClient('clients-a', 'svc-clamp'))!.client.apiScopes, { 'https://orders.example.com': ['orders:read'] });
        const stored = (await repos.oauth.getClient('clients-a', 'svc-clamp'))!.client;
        await repos.oauth.updateClient({ ...stored, apiScopes: { 'https://api.example.com': ['read', 'write'], 'https://gone.example.com': [] } });
        assert.deepEqual((await repos.oauth.getClient('clients-a', 'svc-clamp'))!.client.apiScopes, { 'https://api.example.com': ['read'] });
      });

      it('creates a client with a secret and returns both from getClient', async () => {
        const created = client('clients-a', 'svc-create', { apiScopes: { 'https://orders.example.com': ['orders:read'], 'https://billing.example.com': [] } });
        await repos.oauth.createClient(created, secret('s1', 'plaintext-create', T0));

        assert.deepEqual(await repos.oauth.getClient('clients-a', 'svc-create'), { client: created, secrets: [secret('s1', 'plaintext-create', T0)] });
        assert.ok((await repos.oauth.listClients('clients-a')).some((c) => c.clientId === 'svc-create'));
      });

      it('stores the secret as its SHA-256 hash and never the plaintext', async () => {
        const plaintext = 'gh_secret_4f1c9a0e7b2d4c58a6e3';
        await repos.oauth.createClient(client('clients-a', 'svc-hash'), secret('s1', plaintext, T0));

        const rows = await secretRows('clients-a', 'svc-hash');
        assert.equal(rows.length, 1);
        assert.equal(rows[0]!.hash, sha256(plaintext));
        assert.doesNotMatch(JSON.stringify(rows), new RegExp(plaintext));
      });

      it('creates a public client without any secret', async () => {
        const spa = client('clients-a', 'spa', { type: 'public', authMethod: 'none', grantTypes: ['authorization_code', 'refresh_token'] });
        await repos.oauth.createClient(spa);

        assert.deepEqual(await repos.oauth.getClient('clients-a', 'spa'), { client: spa, secrets: [] });
      });

      it('gives earlier secrets a grace deadline on rotation, keeps an earlier deadline, and adds the new secret as current', async () => {
        await repos.oauth.createClient(client('clients-a', 'svc-rotate'), secret('s1', 'one', T0));

        assert.equal(await repos.oauth.rotateSecret('clients-a', 'svc-rotate', secret('s2', 'two', T0 + HOUR), T0 + HOUR + DAY), true);
        assert.deepEqual((await repos.oauth.getClient('clients-a', 'svc-rotate'))?.secrets, [
          secret('s2', 'two', T0 + HOUR),
          { ...secret('s1', 'one', T0), expiresAt: T0 + HOUR + DAY },
        ]);

        assert.equal(await repos.oauth.rotateSecret('clients-a', 'svc-rotate', secret('s3', 'three', T0 + 2 * HOUR), T0 + 2 * HOUR + DAY), true);
        assert.deepEqual((await repos.oauth.getClient('clients-a', 'svc-rotate'))?.secrets, [
          secret('s3', 'three', T0 + 2 * HOUR),
          { ...secret('s2', 'two', T0 + HOUR), expiresAt: T0 + 2 * HOUR + DAY },
          { ...secret('s1', 'one', T0), expiresAt: T0 + HOUR + DAY },
        ]);
      });

      it('drops secrets whose grace period ended before the rotation', async () => {
        await repos.oauth.createClient(client('clients-a', 'svc-expired'), secret('s1', 'one', T0));
        await repos.oauth.rotateSecret('clients-a', 'svc-expired', secret('s2', 'two', T0 + HOUR), T0 + 2 * HOUR);

        assert.equal(await repos.oauth.rotateSecret('clients-a', 'svc-expired', secret('s3', 'three', T0 + DAY), T0 + DAY + HOUR), true);

        assert.deepEqual((await repos.oauth.getClient('clients-a', 'svc-expired'))?.secrets, [
          secret('s3', 'three', T0 + DAY),
          { ...secret('s2', 'two', T0 + HOUR), expiresAt: T0 + DAY + HOUR },
        ]);
      });

      it('refuses to rotate the secret of an unknown client and stores nothing', async () => {
        assert.equal(await repos.oauth.rotateSecret('clients-a', 'svc-ghost', secret('s1', 'ghost', T0), T0 + DAY), false);

        assert.equal(await repos.oauth.getClient('clients-a', 'svc-ghost'), undefined);
        assert.deepEqual(await secretRows('clients-a', 'svc-ghost'), []);
      });

      it('moves a client\'s tokens-valid-after time forward only, and keeps it through updates', async () => {
        const original = client('clients-a', 'svc-valid-after');
        await repos.oauth.createClient(original, secret('s1', 'one', T0));

        assert.equal(await repos.oauth.revokeClientTokens('clients-a', 'svc-valid-after', T0 + HOUR), true);
        assert.equal((await repos.oauth.getClient('clients-a', 'svc-valid-after'))?.client.tokensValidAfter, T0 + HOUR);
        assert.equal(await repos.oauth.revokeClientTokens('clients-a', 'svc-valid-after', T0), true);
        assert.equal((await repos.oauth.getClient('clients-a', 'svc-valid-after'))?.client.tokensValidAfter, T0 + HOUR, 'never moved back');
        // An update carries the record it read; it must not reset a revocation made meanwhile.
        assert.equal(await repos.oauth.updateClient({ ...original, name: 'renamed', tokensValidAfter: null }), true);
        assert.equal((await repos.oauth.getClient('clients-a', 'svc-valid-after'))?.client.tokensValidAfter, T0 + HOUR);
        // A rotation without grace moves it in the same transaction; one with grace leaves it.
        await repos.oauth.rotateSecret('clients-a', 'svc-valid-after', secret('s2', 'two', T0 + 2 * HOUR), T0 + 3 * HOUR);
        assert.equal((await repos.oauth.getClient('clients-a', 'svc-valid-after'))?.client.tokensValidAfter, T0 + HOUR);
        await repos.oauth.rotateSecret('clients-a', 'svc-valid-after', secret('s3', 'three', T0 + 4 * HOUR), T0 + 4 * HOUR, T0 + 4 * HOUR);
        assert.equal((await repos.oauth.getClient('clients-a', 'svc-valid-after'))?.client.tokensValidAfter, T0 + 4 * HOUR);
        assert.equal(await repos.oauth.revokeClientTokens('clients-a', 'svc-ghost', T0), false);
        assert.equal(await repos.oauth.revokeClientTokens('clients-b', 'svc-valid-after', T0 + DAY), false, 'another tenant\'s client of that id does not exist');
      });

      it('refuses to delete a built-in client and keeps its secrets', async () => {
        const admin = client('clients-a', 'gatehouse-admin', { builtin: true });
        await repos.oauth.createClient(admin, secret('s1', 'admin-secret', T0));

        assert.equal(await repos.oauth.deleteClient('clients-a', 'gatehouse-admin'), false);
        assert.deepEqual(await repos.oauth.getClient('clients-a', 'gatehouse-admin'), { client: admin, secrets: [secret('s1', 'admin-secret', T0)] });
      });

      it('deletes a client together with every one of its secrets', async () => {
        await repos.oauth.createClient(client('clients-a', 'svc-delete'), secret('s1', 'one', T0));
        await repos.oauth.rotateSecret('clients-a', 'svc-delete', secret('s2', 'two', T0 + HOUR), T0 + DAY);

        assert.equal(await repos.oauth.deleteClient('clients-a', 'svc-delete'), true);

        assert.equal(await repos.oauth.getClient('clients-a', 'svc-delete'), undefined);
        assert.deepEqual(await secretRows('clients-a', 'svc-delete'), []);
        assert.ok(!(await repos.oauth.listClients('clients-a')).some((c) => c.clientId === 'svc-delete'));
        assert.equal(await repos.oauth.deleteClient('clients-a', 'svc-delete'), false, 'already gone');
      });

      it('updates what a client may do in its own tenant only, but never its type, auth method or origin', async () => {
        const original = client('clients-a', 'svc-update');
        await repos.oauth.createClient(original, secret('s1', 'update', T0));
        const changed: ClientRecord = {
          ...original,
          name: 'renamed',
          apiScopes: { 'https://orders.example.com': ['orders:write'] },
          grantTypes: ['authorization_code', 'refresh_token'],
          redirectUris: ['https://app.example.com/v2/callback'],
          postLogoutRedirectUris: [],
          firstParty: false,
          backchannelLogoutUri: null,
          refreshTokenIdleTtl: null,
          refreshTokenAbsoluteTtl: 86400,
          updatedAt: T0 + HOUR,
        };
        // Fields an update cannot change are ignored if a caller passes them.
        assert.equal(await repos.oauth.updateClient({ ...changed, type: 'public', authMethod: 'none', builtin: true, createdAt: T0 + DAY }), true);
        assert.deepEqual((await repos.oauth.getClient('clients-a', 'svc-update'))?.client, changed);
        assert.equal(await repos.oauth.updateClient({ ...changed, tenantId: 'clients-b' }), false, 'another tenant cannot change it');
        assert.equal(await repos.oauth.updateClient(changed), true);
        assert.deepEqual((await repos.oauth.getClient('clients-a', 'svc-update'))?.client, changed);
        assert.equal(await repos.oauth.updateClient({ ...changed, clientId: 'missing' }), false);
      });

      it('keeps a client of one tenant invisible and untouchable from another tenant', async () => {
        const mine = client('clients-a', 'svc-isolated');
        await repos.oauth.createClient(mine, secret('s1', 'mine', T0));

        assert.equal(await repos.oauth.getClient('clients-b', 'svc-isolated'), undefined);
        assert.ok(!(await repos.oauth.listClients('clients-b')).some((c) => c.clientId === 'svc-isolated'));
        assert.equal(await repos.oauth.rotateSecret('clients-b', 'svc-isolated', secret('evil', 'attacker', T0 + HOUR), T0 + HOUR), false);
        assert.equal(await repos.oauth.deleteClient('clients-b', 'svc-isolated'), false);

        // The same client id in tenant B is a different client and leaves A's alone.
        const theirs = client('clients-b', 'svc-isolated', { name: 'someone else', builtin: false });
        await repos.oauth.createClient(theirs, secret('s1', 'theirs', T0));
        assert.equal(await repos.oauth.deleteClient('clients-b', 'svc-isolated'), true);

        assert.deepEqual(await repos.oauth.getClient('clients-a', 'svc-isolated'), { client: mine, secrets: [secret('s1', 'mine', T0)] });
        assert.equal(await repos.oauth.getClient('clients-b', 'svc-isolated'), undefined);
      });
    });

    describe('OIDC payloads', () => {
      it('upserts a payload and finds it by id, by uid and by user code', async () => {
        const session = payload('oidc-a', 'Session', 'sess-1', { uid: 'uid-1' });
        const device = payload('oidc-a', 'DeviceCode', 'dc-1', { userCode: 'WDJB-MJHT', grantId: 'grant-dc' });
        await repos.oauth.upsertPayload(session);
        await repos.oauth.upsertPayload(device);

        assert.deepEqual(await repos.oauth.findPayload('oidc-a', 'Session', 'id', 'sess-1'), session);
        assert.deepEqual(await repos.oauth.findPayload('oidc-a', 'Session', 'uid', 'uid-1'), session);
        assert.deepEqual(await repos.oauth.findPayload('oidc-a', 'DeviceCode', 'userCode', 'WDJB-MJHT'), device);
        assert.deepEqual(await repos.oauth.findPayload('oidc-a', 'DeviceCode', 'id', 'dc-1'), device);
      });

      it('finds nothing under another model or another tenant', async () => {
        await repos.oauth.upsertPayload(payload('oidc-a', 'AuthorizationCode', 'code-1', { uid: 'uid-code' }));

        assert.equal(await repos.oauth.findPayload('oidc-a', 'AccessToken', 'id', 'code-1'), undefined);
        assert.equal(await repos.oauth.findPayload('oidc-b', 'AuthorizationCode', 'id', 'code-1'), undefined);
        assert.equal(await repos.oauth.findPayload('oidc-b', 'AuthorizationCode', 'uid', 'uid-code'), undefined);
        assert.equal(await repos.oauth.findPayload('oidc-a', 'AuthorizationCode', 'id', 'code-unknown'), undefined);
      });

      it('replaces the stored payload when the same id is upserted again', async () => {
        await repos.oauth.upsertPayload(payload('oidc-a', 'Grant', 'grant-1', { grantId: 'g-old', uid: 'uid-old' }));
        const updated = payload('oidc-a', 'Grant', 'grant-1', { payload: JSON.stringify({ jti: 'grant-1', scope: 'openid profile' }), grantId: 'g-new', uid: 'uid-new', expiresAt: T0 + 2 * DAY });

        await repos.oauth.upsertPayload(updated);

        assert.deepEqual(await repos.oauth.findPayload('oidc-a', 'Grant', 'id', 'grant-1'), updated);
        assert.equal(await repos.oauth.findPayload('oidc-a', 'Grant', 'uid', 'uid-old'), undefined);
      });

      it('records when a payload was consumed', async () => {
        await repos.oauth.upsertPayload(payload('oidc-a', 'AuthorizationCode', 'code-consume'));
        const at = Math.floor((T0 + MINUTE) / 1000);

        assert.equal(await repos.oauth.consumePayload('oidc-a', 'AuthorizationCode', 'code-consume', at), true);

        assert.equal((await repos.oauth.findPayload('oidc-a', 'AuthorizationCode', 'id', 'code-consume'))?.consumedAt, at);
      });

      it('consumes a payload once: of parallel consumers exactly one wins, a later one loses and keeps the first time', async () => {
        await repos.oauth.upsertPayload(payload('oidc-a', 'RefreshToken', 'rt-race'));
        const at = Math.floor((T0 + MINUTE) / 1000);

        const won = await Promise.all(Array.from({ length: 8 }, (_, i) => repos.oauth.consumePayload('oidc-a', 'RefreshToken', 'rt-race', at + i)));

        assert.equal(won.filter(Boolean).length, 1);
        const first = (await repos.oauth.findPayload('oidc-a', 'RefreshToken', 'id', 'rt-race'))?.consumedAt;
        assert.equal(await repos.oauth.consumePayload('oidc-a', 'RefreshToken', 'rt-race', at + 100), false);
        assert.equal((await repos.oauth.findPayload('oidc-a', 'RefreshToken', 'id', 'rt-race'))?.consumedAt, first);
        assert.equal(await repos.oauth.consumePayload('oidc-a', 'RefreshToken', 'no-such-token', at), false);
      });

      it('destroys a payload', async () => {
        await repos.oauth.upsertPayload(payload('oidc-a', 'Interaction', 'int-1'));

        await repos.oauth.destroyPayload('oidc-a', 'Interaction', 'int-1');

        assert.equal(await repos.oauth.findPayload('oidc-a', 'Interaction', 'id', 'int-1'), undefined);
      });

      it('revokes a grant by removing every payload of that grant in that tenant only', async () => {
        const granted = [
          payload('oidc-grant', 'AccessToken', 'at-1', { grantId: 'g-1' }),
          payload('oidc-grant', 'RefreshToken', 'rt-1', { grantId: 'g-1' }),
          payload('oidc-grant', 'AuthorizationCode', 'code-1', { grantId: 'g-1' }),
        ];
        const otherGrant = payload('oidc-grant', 'AccessToken', 'at-2', { grantId: 'g-2' });
        const otherTenant = payload('oidc-grant-other', 'RefreshToken', 'rt-1', { grantId: 'g-1' });
        for (const record of [...granted, otherGrant, otherTenant]) await repos.oauth.upsertPayload(record);

        await repos.oauth.revokeGrant('oidc-grant', 'g-1');

        for (const record of granted) assert.equal(await repos.oauth.findPayload(record.tenantId, record.model, 'id', record.id), undefined, record.model);
        assert.deepEqual(await repos.oauth.findPayload('oidc-grant', 'AccessToken', 'id', 'at-2'), otherGrant);
        assert.deepEqual(await repos.oauth.findPayload('oidc-grant-other', 'RefreshToken', 'id', 'rt-1'), otherTenant);
      });

      it('finds and ends everything of one person in one tenant: sessions, grants, codes and refresh tokens', async () => {
        const hers = [
          payload('oidc-account', 'Session', 'sess-ann', { accountId: 'usr_ann', uid: 'uid-ann' }),
          payload('oidc-account', 'Grant', 'grant-ann', { accountId: 'usr_ann', grantId: 'g-ann' }),
          payload('oidc-account', 'RefreshToken', 'rt-ann', { accountId: 'usr_ann', grantId: 'g-ann' }),
          payload('oidc-account', 'AuthorizationCode', 'code-ann', { accountId: 'usr_ann', grantId: 'g-ann' }),
        ];
        const his = payload('oidc-account', 'Session', 'sess-bob', { accountId: 'usr_bob' });
        const sameIdElsewhere = payload('oidc-account-other', 'Session', 'sess-ann', { accountId: 'usr_ann' });
        const nobodys = payload('oidc-account', 'Interaction', 'int-1');
        for (const record of [...hers, his, sameIdElsewhere, nobodys]) await repos.oauth.upsertPayload(record);
        assert.deepEqual(await repos.oauth.findPayload('oidc-account', 'Session', 'id', 'sess-ann'), hers[0]);
        assert.deepEqual(await repos.oauth.listAccountPayloads('oidc-account', 'Session', 'usr_ann'), [hers[0]]);
        assert.deepEqual(await repos.oauth.listAccountPayloads('oidc-account', 'Grant', 'usr_bob'), []);

        assert.equal(await repos.oauth.revokeAccount('oidc-account', 'usr_ann'), hers.length);

        for (const record of hers) assert.equal(await repos.oauth.findPayload(record.tenantId, record.model, 'id', record.id), undefined, record.model);
        for (const record of [his, sameIdElsewhere, nobodys]) assert.deepEqual(await repos.oauth.findPayload(record.tenantId, record.model, 'id', record.id), record);
        assert.equal(await repos.oauth.revokeAccount('oidc-account', 'usr_ann'), 0);
      });

      it('purges expired payloads and expired revoked tokens and keeps everything else', async () => {
        const now = T0;
        const expired = payload('oidc-purge', 'AccessToken', 'at-expired', { expiresAt: now - 1 });
        const dueNow = payload('oidc-purge', 'AccessToken', 'at-due', { expiresAt: now });
        const alive = payload('oidc-purge', 'AccessToken', 'at-alive', { expiresAt: now + 1 });
        const forever = payload('oidc-purge', 'Session', 'sess-forever', { expiresAt: null });
        for (const record of [expired, dueNow, alive, forever]) await repos.oauth.upsertPayload(record);
        await repos.oauth.revokeToken('oidc-purge', 'jti-expired', now - 1);
        await repos.oauth.revokeToken('oidc-purge', 'jti-alive', now + 1);

        assert.equal(await repos.oauth.purgeExpired(now), 3);

        assert.equal(await repos.oauth.findPayload('oidc-purge', 'AccessToken', 'id', 'at-expired'), undefined);
        assert.equal(await repos.oauth.findPayload('oidc-purge', 'AccessToken', 'id', 'at-due'), undefined);
        assert.deepEqual(await repos.oauth.findPayload('oidc-purge', 'AccessToken', 'id', 'at-alive'), alive);
        assert.deepEqual(await repos.oauth.findPayload('oidc-purge', 'Session', 'id', 'sess-forever'), forever);
        assert.equal(await repos.oauth.isTokenRevoked('oidc-purge', 'jti-expired'), false);
        assert.equal(await repos.oauth.isTokenRevoked('oidc-purge', 'jti-alive'), true);
        assert.equal(await repos.oauth.purgeExpired(now), 0);
      });
    });

    describe('revoked tokens', () => {
      it('reports a revoked token as revoked in its own tenant only', async () => {
        assert.equal(await repos.oauth.isTokenRevoked('revoked-a', 'jti-1'), false);

        await repos.oauth.revokeToken('revoked-a', 'jti-1', T0 + DAY);

        assert.equal(await repos.oauth.isTokenRevoked('revoked-a', 'jti-1'), true);
        assert.equal(await repos.oauth.isTokenRevoked('revoked-b', 'jti-1'), false);
        assert.equal(await repos.oauth.isTokenRevoked('revoked-a', 'jti-2'), false);
      });

      const issued = (tenantId: string, jti: string, grantId: string, accountId: string | null, expiresAt = T0 + DAY) => ({ tenantId, jti, grantId, accountId, clientId: 'cl_app', expiresAt });

      it('revokes the JWT access tokens recorded under a grant when the grant is revoked, and only those', async () => {
        for (const g of ['g-1', 'g-2']) await repos.oauth.upsertPayload(payload('issued-a', 'Grant', g, { accountId: 'usr_ann' }));
        await repos.oauth.recordIssuedToken(issued('issued-a', 'at-1', 'g-1', 'usr_ann'));
        await repos.oauth.recordIssuedToken(issued('issued-a', 'at-1b', 'g-1', 'usr_ann'));
        await repos.oauth.recordIssuedToken(issued('issued-a', 'at-2', 'g-2', 'usr_ann'));
        assert.equal(await repos.oauth.isTokenRevoked('issued-a', 'at-1'), false);
        const before = await currentRevision(handle.db);

        await repos.oauth.revokeGrant('issued-a', 'g-1');

        assert.deepEqual(await Promise.all(['at-1', 'at-1b', 'at-2'].map((jti) => repos.oauth.isTokenRevoked('issued-a', jti))), [true, true, false]);
        // Every node's verifier forgets what it had verified for the tenant.
        assert.ok((await currentRevision(handle.db)) > before);
      });

      it('revokes the JWT access tokens of a grant when the grant row is destroyed', async () => {
        await repos.oauth.upsertPayload(payload('issued-e', 'Grant', 'g-e'));
        await repos.oauth.recordIssuedToken(issued('issued-e', 'at-e', 'g-e', null));

        await repos.oauth.destroyPayload('issued-e', 'Grant', 'g-e');

        assert.equal(await repos.oauth.isTokenRevoked('issued-e', 'at-e'), true);
        assert.equal(await repos.oauth.findPayload('issued-e', 'Grant', 'id', 'g-e'), undefined);
      });

      it('revokes every JWT access token of an account when the account is revoked', async () => {
        for (const g of ['g-ann', 'g-bob']) await repos.oauth.upsertPayload(payload('issued-b', 'Grant', g));
        await repos.oauth.recordIssuedToken(issued('issued-b', 'at-ann', 'g-ann', 'usr_ann'));
        await repos.oauth.recordIssuedToken(issued('issued-b', 'at-bob', 'g-bob', 'usr_bob'));

        await repos.oauth.revokeAccount('issued-b', 'usr_ann');

        assert.equal(await repos.oauth.isTokenRevoked('issued-b', 'at-ann'), true);
        assert.equal(await repos.oauth.isTokenRevoked('issued-b', 'at-bob'), false);
      });

      it('revokes at once a token recorded under a grant that is gone, and records one jti once', async () => {
        await repos.oauth.recordIssuedToken(issued('issued-c', 'at-late', 'g-revoked', 'usr_ann'));
        assert.equal(await repos.oauth.isTokenRevoked('issued-c', 'at-late'), true);

        await repos.oauth.upsertPayload(payload('issued-c', 'Grant', 'g-live'));
        await repos.oauth.recordIssuedToken(issued('issued-c', 'at-twice', 'g-live', null));
        await repos.oauth.recordIssuedToken(issued('issued-c', 'at-twice', 'g-live', null));
        assert.equal(await repos.oauth.isTokenRevoked('issued-c', 'at-twice'), false);
      });

      it('prunes the records of expired tokens', async () => {
        await repos.oauth.upsertPayload(payload('issued-d', 'Grant', 'g-d', { expiresAt: null }));
        await repos.oauth.recordIssuedToken(issued('issued-d', 'at-old', 'g-d', null, T0 - 1));
        await repos.oauth.recordIssuedToken(issued('issued-d', 'at-new', 'g-d', null, T0 + HOUR));
        const rows = () => handle.db.selectFrom('issued_tokens').select('jti').where('tenant_id', '=', 'issued-d').orderBy('jti').execute();

        await repos.oauth.purgeExpired(T0);

        assert.deepEqual((await rows()).map((r) => r.jti), ['at-new']);
      });

      it('accepts revoking the same token twice', async () => {
        await repos.oauth.revokeToken('revoked-a', 'jti-twice', T0 + DAY);
        await repos.oauth.revokeToken('revoked-a', 'jti-twice', T0 + 2 * DAY);

        assert.equal(await repos.oauth.isTokenRevoked('revoked-a', 'jti-twice'), true);
      });
    });

    describe('audit events', () => {
      // Identified by target so expectations read as e5, e4, … rather than numeric ids.
      const events: AuditEvent[] = [
        { tenantId: 'audit-a', time: T0, actor: 'svc-a', action: 'token.issued', target: 'e1', result: 'success', requestId: 'req-1', ip: '10.0.0.1', details: { scope: ['read'], grant: 'client_credentials' } },
        { tenantId: 'audit-a', time: T0 + MINUTE, actor: 'svc-b', action: 'token.denied', target: 'e2', result: 'failure', requestId: 'req-2', details: { error: 'invalid_scope', nested: { n: 1, ok: false, none: null } } },
        { tenantId: 'audit-a', time: T0 + 2 * MINUTE, actor: 'svc-a', action: 'client.authentication_failed', target: 'e3', result: 'failure', requestId: 'req-3' },
        { tenantId: 'audit-b', time: T0 + 2 * MINUTE, actor: 'svc-a', action: 'token.issued', target: 'other-tenant', result: 'success', requestId: 'req-1' },
        { tenantId: 'audit-a', time: T0 + 3 * MINUTE, actor: 'cli', action: 'client.created', target: 'e4', result: 'success', requestId: 'req-4' },
        { tenantId: 'audit-a', time: T0 + 4 * MINUTE, actor: 'svc-a', action: 'token.issued', target: 'e5', result: 'success', requestId: 'req-5' },
      ];
      const query = async (q: Omit<AuditQuery, 'tenantId' | 'limit'> & { limit?: number }) =>
        repos.audit.query({ tenantId: 'audit-a', limit: 100, ...q });
      const targets = async (q: Omit<AuditQuery, 'tenantId' | 'limit'> & { limit?: number }) => (await query(q)).map((e) => e.target);

      before(() => repos.audit.append(events));

      const filters: { name: string; query: Omit<AuditQuery, 'tenantId' | 'limit'>; expected: string[] }[] = [
        { name: 'no filter', query: {}, expected: ['e5', 'e4', 'e3', 'e2', 'e1'] },
        { name: 'action', query: { action: 'token.issued' }, expected: ['e5', 'e1'] },
        { name: 'actor', query: { actor: 'svc-a' }, expected: ['e5', 'e3', 'e1'] },
        { name: 'result', query: { result: 'failure' }, expected: ['e3', 'e2'] },
        { name: 'requestId', query: { requestId: 'req-1' }, expected: ['e1'] },
        { name: 'since (inclusive)', query: { since: T0 + 2 * MINUTE }, expected: ['e5', 'e4', 'e3'] },
        { name: 'until (exclusive)', query: { until: T0 + 2 * MINUTE }, expected: ['e2', 'e1'] },
        { name: 'since and until', query: { since: T0 + MINUTE, until: T0 + 3 * MINUTE }, expected: ['e3', 'e2'] },
        { name: 'actor and result', query: { actor: 'svc-a', result: 'success' }, expected: ['e5', 'e1'] },
        { name: 'an action nobody took', query: { action: 'key.retired' }, expected: [] },
      ];
      for (const { name, query: q, expected } of filters) {
        it(`returns the tenant's matching events newest first, filtered by ${name}`, async () => {
          assert.deepEqual(await targets(q), expected);
        });
      }

      it('pages backwards with limit and before', async () => {
        const first = await query({ limit: 2 });
        assert.deepEqual(first.map((e) => e.target), ['e5', 'e4']);
        const second = await query({ limit: 2, before: first.at(-1)!.id });
        assert.deepEqual(second.map((e) => e.target), ['e3', 'e2']);
        const third = await query({ limit: 2, before: second.at(-1)!.id });
        assert.deepEqual(third.map((e) => e.target), ['e1']);
        assert.deepEqual(await query({ limit: 2, before: third[0]!.id }), []);
      });

      it('round-trips details as JSON and stores absent optional fields as null', async () => {
        const [e1] = await query({ requestId: 'req-1' });
        const [e2] = await query({ requestId: 'req-2' });
        const [e3] = await query({ requestId: 'req-3' });

        assert.deepEqual({ ...e1!, id: 0 }, { ...events[0]!, id: 0 });
        assert.deepEqual(e2!.details, { error: 'invalid_scope', nested: { n: 1, ok: false, none: null } });
        assert.deepEqual({ ...e3!, id: 0 }, { ...events[2]!, id: 0, ip: null, details: null });
      });

      it('shows nothing of one tenant to another', async () => {
        assert.deepEqual((await repos.audit.query({ tenantId: 'audit-b', limit: 100 })).map((e) => e.target), ['other-tenant']);
        assert.deepEqual(await repos.audit.query({ tenantId: 'audit-nobody', limit: 100 }), []);
      });

      it('prunes the oldest events first, at most `limit` per call, and only those before the cutoff', async () => {
        const old = Array.from({ length: 5 }, (_, i): AuditEvent => ({ tenantId: 'audit-prune', time: T0 - (10 - i) * MINUTE, action: 'token.issued', target: `old-${i}`, result: 'success' }));
        await repos.audit.append([...old, { tenantId: 'audit-prune', time: T0 + 10 * MINUTE, action: 'token.issued', target: 'new', result: 'success' }]);
        const targets = async () => (await repos.audit.query({ tenantId: 'audit-prune', limit: 100 })).map((e) => e.target).reverse();
        // Events of other suites (T0 and later) are newer than the cutoff.
        assert.equal(await repos.audit.prune(T0 - MINUTE, 3), 3);
        assert.deepEqual(await targets(), ['old-3', 'old-4', 'new']);
        assert.equal(await repos.audit.prune(T0 - MINUTE, 3), 2);
        assert.equal(await repos.audit.prune(T0 - MINUTE, 3), 0);
        assert.deepEqual(await targets(), ['new']);
        assert.equal((await repos.audit.query({ tenantId: 'audit-a', limit: 100 })).length, 5);
      });
    });

    describe('concurrent processes', () => {
      it('keeps every repository write working while another process writes to the same database', { timeout: 60_000 }, async () => {
        const t = 'concurrent';
        await repos.tenants.create(tenant(t));
        await repos.oauth.createClient(client(t, 'svc'), secret('s0', 'zero', T0));
        const rounds = 200;
        const failures: string[] = [];

        const writer = await startWriterProcess(database.options);
        let other: Awaited<ReturnType<typeof writer.stop>>;
        try {
          for (let i = 1; i <= rounds; i++) {
            const at = T0 + i * MINUTE;
            const writes: [string, () => Promise<unknown>][] = [
              ['oauth.rotateSecret', () => repos.oauth.rotateSecret(t, 'svc', secret(`s${i}`, `secret-${i}`, at), at + HOUR)],
              ['keys.activate', () => repos.keys.activate(t, [signingKey(t, `k${i}`, at)], at + HOUR)],
              ['oauth.createApi', () => repos.oauth.createApi(api(t, `api-${i}`, `https://api-${i}.example.com`))],
            ];
            for (const [name, write] of writes) {
              try {
                await write();
              } catch (error) {
                failures.push(`${name}: ${(error as { code?: string }).code ?? String(error)}`);
              }
            }
          }
        } finally {
          other = await writer.stop();
        }

        assert.deepEqual(tally(failures), {}, `writes failed in this process (out of ${rounds} of each)`);
        assert.deepEqual(tally(other.failures), {}, 'writes failed in the other process');
        assert.ok(other.attempts > other.failures.length, 'the other process wrote meanwhile');
        assert.equal((await repos.oauth.getClient(t, 'svc'))?.secrets[0]?.id, `s${rounds}`);
        assert.equal((await repos.keys.list(t))[0]?.kid, `k${rounds}`);
      });
    });

    describe('revisions', () => {
      const change = (revision: number) =>
        handle.db.selectFrom('gh_changes').select(['tenant_id', 'kind']).where('revision', '=', revision).executeTakeFirst();

      it('bumps the revision exactly once per write and records the tenant and kind of each change', async () => {
        const t = 'rev-a';
        const writes: { name: string; tenantId: string; kind: string; write: () => Promise<unknown> }[] = [
          { name: 'tenant create', tenantId: t, kind: 'tenants', write: () => repos.tenants.create(tenant(t)) },
          { name: 'key activate', tenantId: t, kind: 'keys', write: () => repos.keys.activate(t, [signingKey(t, 'k1', T0)], 0) },
          { name: 'second key activate', tenantId: t, kind: 'keys', write: () => repos.keys.activate(t, [signingKey(t, 'k2', T0 + HOUR)], T0 + 2 * HOUR) },
          { name: 'retireDue with a key due', tenantId: t, kind: 'keys', write: () => repos.keys.retireDue(t, T0 + 2 * HOUR) },
          { name: 'api create', tenantId: t, kind: 'apis', write: () => repos.oauth.createApi(api(t, 'orders', 'https://orders.example.com')) },
          { name: 'api delete', tenantId: t, kind: 'apis', write: () => repos.oauth.deleteApi(t, 'orders') },
          { name: 'client create', tenantId: t, kind: 'clients', write: () => repos.oauth.createClient(client(t, 'svc'), secret('s1', 'one', T0)) },
          { name: 'rotateSecret', tenantId: t, kind: 'clients', write: () => repos.oauth.rotateSecret(t, 'svc', secret('s2', 'two', T0 + HOUR), T0 + DAY) },
          { name: 'revokeClientTokens', tenantId: t, kind: 'clients', write: () => repos.oauth.revokeClientTokens(t, 'svc', T0 + HOUR) },
          { name: 'deleteClient', tenantId: t, kind: 'clients', write: () => repos.oauth.deleteClient(t, 'svc') },
          { name: 'another tenant create', tenantId: 'rev-b', kind: 'tenants', write: () => repos.tenants.create(tenant('rev-b')) },
        ];

        let previous = await currentRevision(handle.db);
        for (const { name, tenantId, kind, write } of writes) {
          await write();
          const revision = await currentRevision(handle.db);
          assert.equal(revision, previous + 1, `${name} bumps the revision by one`);
          assert.deepEqual(await change(revision), { tenant_id: tenantId, kind }, `${name} records its change`);
          previous = revision;
        }
      });

      it('leaves the revision alone when a write changes nothing', async () => {
        const t = 'rev-noop';
        await repos.tenants.create(tenant(t));
        await repos.oauth.createApi(api(t, 'admin', 'urn:gatehouse:admin', { builtin: true }));
        await repos.oauth.createClient(client(t, 'admin', { builtin: true }), secret('s1', 'admin', T0));
        await repos.keys.activate(t, [signingKey(t, 'k1', T0)], 0);

        const refusals: { name: string; write: () => Promise<unknown>; returns: unknown }[] = [
          { name: 'duplicate tenant', write: () => repos.tenants.create(tenant(t)), returns: false },
          { name: 'duplicate API identifier', write: () => repos.oauth.createApi(api(t, 'admin-copy', 'urn:gatehouse:admin')), returns: false },
          { name: 'delete built-in API', write: () => repos.oauth.deleteApi(t, 'admin'), returns: false },
          { name: 'delete unknown API', write: () => repos.oauth.deleteApi(t, 'nope'), returns: false },
          { name: 'delete built-in client', write: () => repos.oauth.deleteClient(t, 'admin'), returns: false },
          { name: 'rotate secret of unknown client', write: () => repos.oauth.rotateSecret(t, 'nope', secret('s', 'x', T0), T0), returns: false },
          { name: 'revoke tokens of unknown client', write: () => repos.oauth.revokeClientTokens(t, 'nope', T0), returns: false },
          { name: 'retireDue with nothing due', write: () => repos.keys.retireDue(t, T0 + 365 * DAY), returns: 0 },
        ];

        for (const { name, write, returns } of refusals) {
          const revision = await currentRevision(handle.db);
          assert.equal(await write(), returns, name);
          assert.equal(await currentRevision(handle.db), revision, `${name} leaves the revision alone`);
          assert.equal(await change(revision + 1), undefined, `${name} records no change`);
        }
      });
    });

    describe('compiled queries', () => {
      it('runs a prepared query with each call\'s own values, in the places the builder put them, and keeps the literals it wrote', async () => {
        await repos.tenants.create(tenant('prep-a', 'A'));
        await repos.tenants.create(tenant('prep-b', 'B'));
        // The values are named in the opposite order to where the SQL uses them.
        const rename = preparedQuery(handle.db, (v: { name: string; id: string }) =>
          handle.db.updateTable('tenants').set({ display_name: v.name, logo_type: 'image/png' }).where('id', '=', v.id),
        );
        const find = preparedQuery(handle.db, (v: { id: string }) => handle.db.selectFrom('tenants').select(['id', 'display_name', 'logo_type']).where('id', '=', v.id));

        const updated = await rename({ id: 'prep-a', name: 'Alpha' });
        assert.equal(updated.numAffectedRows, 1n);
        await rename({ id: 'prep-b', name: 'Beta' });
        assert.deepEqual((await find({ id: 'prep-a' })).rows, [{ id: 'prep-a', display_name: 'Alpha', logo_type: 'image/png' }]);
        assert.deepEqual((await find({ id: 'prep-b' })).rows, [{ id: 'prep-b', display_name: 'Beta', logo_type: 'image/png' }]);
        assert.deepEqual((await find({ id: 'prep-none' })).rows, []);
      });

      it('sees a column added after a statement was first run (reused statements follow schema changes)', async () => {
        await handle.db.schema.createTable('prep_probe').addColumn('id', 'text', (c) => c.primaryKey()).execute();
        await sql`insert into prep_probe (id) values ('one')`.execute(handle.db);
        const all = () => sql<Record<string, unknown>>`select * from prep_probe`.execute(handle.db);
        assert.deepEqual((await all()).rows, [{ id: 'one' }]);
        await handle.db.schema.alterTable('prep_probe').addColumn('note', 'text').execute();
        await sql`update prep_probe set note = 'added'`.execute(handle.db);
        assert.deepEqual((await all()).rows, [{ id: 'one', note: 'added' }]);
        await handle.db.schema.dropTable('prep_probe').execute();
      });
    });
  });
}
