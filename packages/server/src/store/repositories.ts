import { sql, type Insertable } from 'kysely';
import type { DatabaseHandle, Db } from './database.js';
import type { Database } from './schema.js';
import { preparedQuery } from './prepared.js';
import { bumpRevision } from './revisions.js';
import { inUnitOfWork } from './unit-of-work.js';
import type { TenantStore, TenantRecord } from '../tenants/types.js';
import type { KeyStore, SigningKeyRecord } from '../keys/types.js';
import type { ApiRecord, ClientRecord, ClientSecretRecord, OAuthStore, OidcPayloadRecord } from '../oauth/types.js';
import type { AuditEvent, AuditQuery, AuditStore, StoredAuditEvent } from '../audit/types.js';

/**
 * Kysely implementations of the small interfaces the deciding code owns. Every query
 * names its tenant; nothing here decides anything.
 */
export function createRepositories({ db, dialect, sqlite }: Pick<DatabaseHandle, 'db' | 'dialect' | 'sqlite'>) {
  const bump = (trx: Db, tenantId: string, kind: string) => bumpRevision(trx, tenantId, kind, dialect);
  const tx = <T>(work: (trx: Db) => Promise<T>) => db.transaction().execute(work);
  /** Bumps the revision when a write touched rows; true when it did. */
  /** Only forward: a later revocation never reopens tokens an earlier one ended. True when the client exists. */
  const moveTokensValidAfter = async (trx: Db, tenantId: string, clientId: string, at: number) => {
    const exists = await trx.selectFrom('clients').select('client_id').where('tenant_id', '=', tenantId).where('client_id', '=', clientId).executeTakeFirst();
    if (!exists) return false;
    await trx
      .updateTable('clients')
      .set({ tokens_valid_after: at })
      .where('tenant_id', '=', tenantId)
      .where('client_id', '=', clientId)
      .where((eb) => eb.or([eb('tokens_valid_after', 'is', null), eb('tokens_valid_after', '<', at)]))
      .execute();
    return true;
  };
  const bumpIfChanged = async (trx: Db, tenantId: string, kind: string, rows: bigint) => {
    if (Number(rows) === 0) return false;
    await bump(trx, tenantId, kind);
    return true;
  };
  /**
   * What clients may ask of an API follows the API in the same transaction (issue 9 part 12):
   * when an API loses scopes, or goes, every client's entry for it loses them too, so that a
   * scope added again later, or a new API under the same identifier, grants nothing by itself.
   * `keep`: the API's scopes now; null when the API is gone. On PostgreSQL the client rows are
   * locked, and client writes lock the API rows they check (withApiScopesOf), so the two orders
   * of an API change and a concurrent client write both end with the API's rule applied.
   */
  const pruneClientEntries = async (trx: Db, tenantId: string, identifier: string, keep: string[] | null) => {
    const query = trx.selectFrom('clients').select(['client_id', 'api_scopes']).where('tenant_id', '=', tenantId);
    let changed = false;
    for (const row of await (dialect === 'postgres' ? query.forUpdate() : query).execute()) {
      const entries = JSON.parse(row.api_scopes) as Record<string, string[]>;
      const granted = entries[identifier];
      if (!granted) continue;
      const next = { ...entries };
      if (keep === null) delete next[identifier];
      else if (granted.every((scope) => keep.includes(scope))) continue;
      else next[identifier] = granted.filter((scope) => keep.includes(scope));
      await trx.updateTable('clients').set({ api_scopes: JSON.stringify(next) }).where('tenant_id', '=', tenantId).where('client_id', '=', row.client_id).execute();
      changed = true;
    }
    if (changed) await bump(trx, tenantId, 'clients');
  };
  /** A client's API entries as the tenant's APIs stand inside this transaction: unknown APIs and scopes dropped. */
  const withApiScopesOf = async (trx: Db, client: ClientRecord): Promise<ClientRecord> => {
    const query = trx.selectFrom('apis').select(['identifier', 'scopes']).where('tenant_id', '=', client.tenantId);
    const apis = new Map((await (dialect === 'postgres' ? query.forShare() : query).execute()).map((row) => [row.identifier, JSON.parse(row.scopes) as string[]]));
    const apiScopes: Record<string, string[]> = {};
    for (const [identifier, scopes] of Object.entries(client.apiScopes)) {
      const defined = apis.get(identifier);
      if (defined) apiScopes[identifier] = scopes.filter((scope) => defined.includes(scope));
    }
    return { ...client, apiScopes };
  };
  const isUniqueViolation = (error: unknown) => {
    const e = error as { code?: string; message?: string };
    return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE';
  };

  /**
   * JWT access tokens cannot be recalled: revoking their grant (or account) moves the ones
   * issued under it into revoked_tokens, which introspection and every node's verifier read
   * (the tokens_revoked revision makes them forget what they had verified).
   */
  const revokeIssued = async (trx: Db, tenantId: string, by: 'grant_id' | 'account_id', value: string) => {
    const moved = await trx
      .insertInto('revoked_tokens')
      .columns(['tenant_id', 'jti', 'expires_at'])
      .expression(trx.selectFrom('issued_tokens').select(['tenant_id', 'jti', 'expires_at']).where('tenant_id', '=', tenantId).where(by, '=', value))
      .onConflict((oc) => oc.columns(['tenant_id', 'jti']).doNothing())
      .executeTakeFirst();
    await trx.deleteFrom('issued_tokens').where('tenant_id', '=', tenantId).where(by, '=', value).execute();
    await bumpIfChanged(trx, tenantId, 'tokens_revoked', moved.numInsertedOrUpdatedRows ?? 0n);
  };

  // Every sign-in and token request runs these several times: compiled once (see preparedQuery).
  type PayloadKey = { tenantId: string; model: string };
  const findPayloadBy = (column: 'id' | 'uid' | 'user_code') =>
    preparedQuery(db, (v: PayloadKey & { value: string }) =>
      db.selectFrom('oidc_payloads').selectAll().where('tenant_id', '=', v.tenantId).where('model', '=', v.model).where(column, '=', v.value),
    );
  const payloadQueries = {
    upsert: preparedQuery(db, (v: Omit<Insertable<Database['oidc_payloads']>, 'consumed_at'>) =>
      db
        .insertInto('oidc_payloads')
        .values({
          tenant_id: v.tenant_id,
          model: v.model,
          id: v.id,
          payload: v.payload,
          grant_id: v.grant_id,
          user_code: v.user_code,
          uid: v.uid,
          account_id: v.account_id,
          expires_at: v.expires_at,
          consumed_at: null,
        })
        // The row offered above, taken as it is (each value bound once), keeping consumed_at.
        .onConflict((oc) =>
          oc.columns(['tenant_id', 'model', 'id']).doUpdateSet((eb) => ({
            payload: eb.ref('excluded.payload'),
            grant_id: eb.ref('excluded.grant_id'),
            user_code: eb.ref('excluded.user_code'),
            uid: eb.ref('excluded.uid'),
            account_id: eb.ref('excluded.account_id'),
            expires_at: eb.ref('excluded.expires_at'),
          })),
        ),
    ),
    find: { id: findPayloadBy('id'), uid: findPayloadBy('uid'), userCode: findPayloadBy('user_code') },
    // Single use under concurrency: of parallel consumers only the one whose UPDATE still finds
    // the row unconsumed changes it (PostgreSQL re-checks the WHERE after a concurrent commit).
    consume: preparedQuery(db, (v: PayloadKey & { id: string; at: number }) =>
      db
        .updateTable('oidc_payloads')
        .set({ consumed_at: v.at })
        .where('tenant_id', '=', v.tenantId)
        .where('model', '=', v.model)
        .where('id', '=', v.id)
        .where('consumed_at', 'is', null),
    ),
    // A JWT access token issued under a grant, recorded only while the grant exists: a grant
    // revoked while the token was being issued (a parallel code replay) leaves nothing to find.
    // One statement, one round trip per issued token. Casts: PostgreSQL cannot type a bare
    // parameter in a select list. FOR SHARE (PostgreSQL): a grant being destroyed is waited
    // for, then found gone, and a destroy waits for this insert and then moves it; SQLite runs
    // one write at a time.
    recordIssued: preparedQuery(db, (v: { tenantId: string; jti: string; grantId: string; accountId: string | null; clientId: string; expiresAt: number }) =>
      db
        .insertInto('issued_tokens')
        .columns(['tenant_id', 'jti', 'grant_id', 'account_id', 'client_id', 'expires_at'])
        .expression(
          db
            .selectNoFrom([
              sql<string>`cast(${v.tenantId} as text)`.as('tenant_id'),
              sql<string>`cast(${v.jti} as text)`.as('jti'),
              sql<string>`cast(${v.grantId} as text)`.as('grant_id'),
              sql<string | null>`cast(${v.accountId} as text)`.as('account_id'),
              sql<string>`cast(${v.clientId} as text)`.as('client_id'),
              sql<number>`cast(${v.expiresAt} as bigint)`.as('expires_at'),
            ])
            .where((eb) =>
              eb.exists(
                eb
                  .selectFrom('oidc_payloads')
                  .select(sql`1`.as('one'))
                  .where('tenant_id', '=', v.tenantId)
                  .where('model', '=', 'Grant')
                  .where('id', '=', v.grantId)
                  .$call((q) => (dialect === 'postgres' ? q.forShare() : q)),
              ),
            ),
        )
        .onConflict((oc) => oc.columns(['tenant_id', 'jti']).doNothing()),
    ),
    destroy: preparedQuery(db, (v: PayloadKey & { id: string }) =>
      db.deleteFrom('oidc_payloads').where('tenant_id', '=', v.tenantId).where('model', '=', v.model).where('id', '=', v.id),
    ),
  };

  const tenants: TenantStore = {
    async create(tenant) {
      try {
        await tx(async (trx) => {
          await trx.insertInto('tenants').values({ id: tenant.id, display_name: tenant.displayName, created_at: tenant.createdAt }).execute();
          await bump(trx, tenant.id, 'tenants');
        });
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    },
    async get(id) {
      const row = await db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toTenant(row) : undefined;
    },
    async list() {
      const rows = await db.selectFrom('tenants').selectAll().orderBy('id').execute();
      return rows.map(toTenant);
    },
    async update(id, changes) {
      return tx(async (trx) => {
        const result = await trx.updateTable('tenants').set({ ...(changes.displayName !== undefined ? { display_name: changes.displayName } : {}) }).where('id', '=', id).executeTakeFirst();
        return bumpIfChanged(trx, id, 'tenants', result.numUpdatedRows);
      });
    },
    async setLogo(id, logo) {
      return tx(async (trx) => {
        const result = await trx
          .updateTable('tenants')
          .set({ logo_type: logo?.type ?? null, logo_data: logo ? logo.data.toString('base64') : null })
          .where('id', '=', id)
          .executeTakeFirst();
        return bumpIfChanged(trx, id, 'tenants', result.numUpdatedRows);
      });
    },
    async getLogo(id) {
      const row = await db.selectFrom('tenants').select(['logo_type', 'logo_data']).where('id', '=', id).executeTakeFirst();
      return row?.logo_type && row.logo_data ? { type: row.logo_type, data: Buffer.from(row.logo_data, 'base64') } : undefined;
    },
  };

  const keyRow = (key: SigningKeyRecord) => ({
    tenant_id: key.tenantId,
    kid: key.kid,
    alg: key.alg,
    status: 'active',
    public_jwk: JSON.stringify(key.publicJwk),
    private_jwk_enc: key.privateJwkEnc,
    created_at: key.createdAt,
    deactivated_at: null,
    retire_at: null,
  });
  const keys: KeyStore = {
    async list(tenantId) {
      const rows = await db.selectFrom('signing_keys').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at', 'desc').execute();
      return rows.map(toKey);
    },
    async activate(tenantId, active, retireAt) {
      await tx(async (trx) => {
        await trx
          .updateTable('signing_keys')
          .set({ status: 'previous', deactivated_at: active[0]!.createdAt, retire_at: retireAt })
          .where('tenant_id', '=', tenantId)
          .where('status', '=', 'active')
          .execute();
        await trx.insertInto('signing_keys').values(active.map(keyRow)).execute();
        await bump(trx, tenantId, 'keys');
      });
    },
    async addActive(key) {
      return tx(async (trx) => {
        // One writer at a time decides (SQLite: the immediate transaction; PostgreSQL: the tenant's row).
        if (dialect === 'postgres') await trx.selectFrom('tenants').select('id').where('id', '=', key.tenantId).forUpdate().execute();
        const existing = await trx.selectFrom('signing_keys').select('kid').where('tenant_id', '=', key.tenantId).where('status', '=', 'active').where('alg', '=', key.alg).executeTakeFirst();
        if (existing) return false;
        await trx.insertInto('signing_keys').values(keyRow(key)).execute();
        await bump(trx, key.tenantId, 'keys');
        return true;
      });
    },
    async retireDue(tenantId, now) {
      return tx(async (trx) => {
        const result = await trx
          .updateTable('signing_keys')
          .set({ status: 'retired' })
          .where('tenant_id', '=', tenantId)
          .where('status', '=', 'previous')
          .where('retire_at', '<=', now)
          .executeTakeFirst();
        const count = Number(result.numUpdatedRows);
        if (count > 0) await bump(trx, tenantId, 'keys');
        return count;
      });
    },
  };

  const oauth: OAuthStore = {
    async createApi(api) {
      try {
        await tx(async (trx) => {
          await trx.insertInto('apis').values(fromApi(api)).execute();
          await bump(trx, api.tenantId, 'apis');
        });
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    },
    async listApis(tenantId) {
      const rows = await db.selectFrom('apis').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at').execute();
      return rows.map(toApi);
    },
    async deleteApi(tenantId, id) {
      return tx(async (trx) => {
        const api = await trx.selectFrom('apis').select('identifier').where('tenant_id', '=', tenantId).where('id', '=', id).where('builtin', '=', 0).executeTakeFirst();
        if (!api) return false;
        const result = await trx.deleteFrom('apis').where('tenant_id', '=', tenantId).where('id', '=', id).where('builtin', '=', 0).executeTakeFirst();
        if (!(await bumpIfChanged(trx, tenantId, 'apis', result.numDeletedRows))) return false;
        await pruneClientEntries(trx, tenantId, api.identifier, null);
        return true;
      });
    },
    async updateApi(api) {
      return tx(async (trx) => {
        const result = await trx
          .updateTable('apis')
          .set({ name: api.name, scopes: JSON.stringify(api.scopes), access_token_ttl: api.accessTokenTtl, resource_servers: JSON.stringify(api.resourceServers) })
          .where('tenant_id', '=', api.tenantId)
          .where('id', '=', api.id)
          .executeTakeFirst();
        if (!(await bumpIfChanged(trx, api.tenantId, 'apis', result.numUpdatedRows))) return false;
        await pruneClientEntries(trx, api.tenantId, api.identifier, api.scopes);
        return true;
      });
    },
    async updateClient(given) {
      return tx(async (trx) => {
        const client = await withApiScopesOf(trx, given);
        const result = await trx
          .updateTable('clients')
          // tokens_valid_after is only ever moved forward, by revokeClientTokens and rotateSecret.
          .set((({ tenant_id: _t, client_id: _c, type: _type, auth_method: _m, builtin: _b, created_at: _at, tokens_valid_after: _v, ...changeable }) => changeable)(fromClient(client)))
          .where('tenant_id', '=', client.tenantId)
          .where('client_id', '=', client.clientId)
          .executeTakeFirst();
        return bumpIfChanged(trx, client.tenantId, 'clients', result.numUpdatedRows);
      });
    },
    async createClient(client, secret) {
      await tx(async (trx) => {
        await trx.insertInto('clients').values(fromClient(await withApiScopesOf(trx, client))).execute();
        if (secret) await trx.insertInto('client_secrets').values(fromSecret(client.tenantId, client.clientId, secret)).execute();
        await bump(trx, client.tenantId, 'clients');
      });
    },
    async getClient(tenantId, clientId) {
      const row = await db.selectFrom('clients').selectAll().where('tenant_id', '=', tenantId).where('client_id', '=', clientId).executeTakeFirst();
      if (!row) return undefined;
      const secrets = await db
        .selectFrom('client_secrets')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('client_id', '=', clientId)
        .orderBy('created_at', 'desc')
        .execute();
      return { client: toClient(row), secrets: secrets.map(toSecret) };
    },
    async listClients(tenantId) {
      const rows = await db.selectFrom('clients').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at').execute();
      return rows.map(toClient);
    },
    async deleteClient(tenantId, clientId) {
      return tx(async (trx) => {
        const result = await trx
          .deleteFrom('clients')
          .where('tenant_id', '=', tenantId)
          .where('client_id', '=', clientId)
          .where('builtin', '=', 0)
          .executeTakeFirst();
        const deleted = Number(result.numDeletedRows) > 0;
        if (deleted) {
          await trx.deleteFrom('client_secrets').where('tenant_id', '=', tenantId).where('client_id', '=', clientId).execute();
          // A deleted client is no API's resource server any more (it could introspect nothing anyway).
          for (const row of await trx.selectFrom('apis').select(['id', 'resource_servers']).where('tenant_id', '=', tenantId).execute()) {
            const servers = JSON.parse(row.resource_servers) as string[];
            if (!servers.includes(clientId)) continue;
            await trx.updateTable('apis').set({ resource_servers: JSON.stringify(servers.filter((c) => c !== clientId)) }).where('tenant_id', '=', tenantId).where('id', '=', row.id).execute();
            await bump(trx, tenantId, 'apis');
          }
          await bump(trx, tenantId, 'clients');
        }
        return deleted;
      });
    },
    async rotateSecret(tenantId, clientId, secret, previousExpireAt, revokeTokensAt) {
      return tx(async (trx) => {
        const exists = await trx.selectFrom('clients').select('client_id').where('tenant_id', '=', tenantId).where('client_id', '=', clientId).executeTakeFirst();
        if (!exists) return false;
        // Secrets still valid get the grace deadline (or keep an earlier one); expired ones go.
        await trx
          .updateTable('client_secrets')
          .set({ expires_at: previousExpireAt })
          .where('tenant_id', '=', tenantId)
          .where('client_id', '=', clientId)
          .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', previousExpireAt)]))
          .execute();
        await trx.deleteFrom('client_secrets').where('tenant_id', '=', tenantId).where('client_id', '=', clientId).where('expires_at', '<=', secret.createdAt).execute();
        await trx.insertInto('client_secrets').values(fromSecret(tenantId, clientId, secret)).execute();
        if (revokeTokensAt !== undefined) await moveTokensValidAfter(trx, tenantId, clientId, revokeTokensAt);
        await bump(trx, tenantId, 'clients');
        return true;
      });
    },
    async revokeClientTokens(tenantId, clientId, at) {
      return tx(async (trx) => {
        if (!(await moveTokensValidAfter(trx, tenantId, clientId, at))) return false;
        // Every node drops its cached copy of the client, so its guard sees the new time.
        await bump(trx, tenantId, 'clients');
        return true;
      });
    },
    async upsertPayload(record) {
      await payloadQueries.upsert({
        tenant_id: record.tenantId,
        model: record.model,
        id: record.id,
        payload: record.payload,
        grant_id: record.grantId,
        user_code: record.userCode,
        uid: record.uid,
        account_id: record.accountId,
        expires_at: record.expiresAt,
      });
    },
    async findPayload(tenantId, model, by, value) {
      const { rows } = await payloadQueries.find[by]({ tenantId, model, value });
      return rows[0] ? toPayload(rows[0]) : undefined;
    },
    async consumePayload(tenantId, model, id, at) {
      const { numAffectedRows } = await payloadQueries.consume({ tenantId, model, id, at });
      return Number(numAffectedRows ?? 0) === 1;
    },
    async destroyPayload(tenantId, model, id) {
      if (model !== 'Grant') {
        await payloadQueries.destroy({ tenantId, model, id });
        return;
      }
      // A grant ends with its JWT access tokens, whoever destroys it (oidc-provider's revoke
      // runs this beside revokeByGrantId, in no order): the row first, so that a token being
      // recorded meanwhile either lands before the move or finds the grant gone.
      await tx(async (trx) => {
        await trx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where('model', '=', 'Grant').where('id', '=', id).execute();
        await revokeIssued(trx, tenantId, 'grant_id', id);
      });
    },
    async revokeGrant(tenantId, grantId) {
      await tx(async (trx) => {
        await revokeIssued(trx, tenantId, 'grant_id', grantId);
        await trx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where('grant_id', '=', grantId).execute();
      });
    },
    async recordIssuedToken(token) {
      const { numAffectedRows } = await payloadQueries.recordIssued(token);
      if (Number(numAffectedRows ?? 0) > 0) return;
      // Not recorded: the grant is gone (or the jti was recorded already). A token issued under
      // a revoked grant is revoked at once; a second record of one jti changes nothing.
      const recorded = await db.selectFrom('issued_tokens').select('jti').where('tenant_id', '=', token.tenantId).where('jti', '=', token.jti).executeTakeFirst();
      if (!recorded) await oauth.revokeToken(token.tenantId, token.jti, token.expiresAt);
    },
    async listAccountPayloads(tenantId, model, accountId) {
      const rows = await db.selectFrom('oidc_payloads').selectAll().where('tenant_id', '=', tenantId).where('model', '=', model).where('account_id', '=', accountId).execute();
      return rows.map(toPayload);
    },
    async revokeAccount(tenantId, accountId) {
      return tx(async (trx) => {
        await revokeIssued(trx, tenantId, 'account_id', accountId);
        const result = await trx.deleteFrom('oidc_payloads').where('tenant_id', '=', tenantId).where('account_id', '=', accountId).executeTakeFirst();
        return Number(result.numDeletedRows);
      });
    },
    async revokeToken(tenantId, jti, expiresAt) {
      await tx(async (trx) => {
        await trx
          .insertInto('revoked_tokens')
          .values({ tenant_id: tenantId, jti, expires_at: expiresAt })
          .onConflict((oc) => oc.columns(['tenant_id', 'jti']).doNothing())
          .execute();
        // Every node forgets the tokens it had verified for this tenant.
        await bump(trx, tenantId, 'tokens_revoked');
      });
    },
    async isTokenRevoked(tenantId, jti) {
      const row = await db.selectFrom('revoked_tokens').select('jti').where('tenant_id', '=', tenantId).where('jti', '=', jti).executeTakeFirst();
      return row !== undefined;
    },
    async purgeExpired(now) {
      const a = await db.deleteFrom('oidc_payloads').where('expires_at', '<=', now).executeTakeFirst();
      const b = await db.deleteFrom('revoked_tokens').where('expires_at', '<=', now).executeTakeFirst();
      const c = await db.deleteFrom('issued_tokens').where('expires_at', '<=', now).executeTakeFirst();
      return Number(a.numDeletedRows) + Number(b.numDeletedRows) + Number(c.numDeletedRows);
    },
  };

  const auditRow = (e: AuditEvent) => ({
    tenant_id: e.tenantId,
    time: e.time,
    actor: e.actor ?? null,
    action: e.action,
    target: e.target ?? null,
    result: e.result,
    request_id: e.requestId ?? null,
    ip: e.ip ?? null,
    details: e.details ? JSON.stringify(e.details) : null,
  });
  // SQLite: one prepared statement in one immediate transaction per batch is several times
  // cheaper than compiling a multi-row INSERT, and audit batches sit on the hot path's CPU.
  const sqliteInsert = sqlite
    ? (() => {
        const statement = sqlite.prepare(
          'insert into audit_events (tenant_id, time, actor, action, target, result, request_id, ip, details) values (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        );
        // Positional parameters bind faster than named ones in better-sqlite3.
        return sqlite.transaction((events: AuditEvent[]) => {
          for (const e of events) {
            statement.run(e.tenantId, e.time, e.actor ?? null, e.action, e.target ?? null, e.result, e.requestId ?? null, e.ip ?? null, e.details ? JSON.stringify(e.details) : null);
          }
        });
      })()
    : undefined;

  const audit: AuditStore = {
    async append(events) {
      if (events.length === 0) return;
      if (sqliteInsert && !inUnitOfWork()) {
        // Under Kysely's connection lock, so the batch never lands inside another transaction.
        // (Inside a unit of work the event belongs in the unit's transaction: the insert below joins it.)
        await db.connection().execute(async () => sqliteInsert.immediate(events));
        return;
      }
      await db.insertInto('audit_events').values(events.map(auditRow)).execute();
    },
    async query(q) {
      let query = db.selectFrom('audit_events').selectAll().where('tenant_id', '=', q.tenantId);
      if (q.action) query = query.where('action', '=', q.action);
      if (q.actor) query = query.where('actor', '=', q.actor);
      if (q.result) query = query.where('result', '=', q.result);
      if (q.requestId) query = query.where('request_id', '=', q.requestId);
      if (q.since !== undefined) query = query.where('time', '>=', q.since);
      if (q.until !== undefined) query = query.where('time', '<', q.until);
      if (q.before !== undefined) query = query.where('id', '<', q.before);
      const rows = await query.orderBy('id', 'desc').limit(q.limit).execute();
      return rows.map(toAudit);
    },
    async prune(before, limit) {
      // Ids grow with time, so the oldest rows are the first ones in primary-key order: the
      // scan stops after `limit` of them instead of reading the table.
      const chunk = await db.selectFrom('audit_events').select('id').where('time', '<', before).orderBy('id').limit(limit).execute();
      if (chunk.length === 0) return 0;
      const result = await db
        .deleteFrom('audit_events')
        .where('id', '<=', chunk[chunk.length - 1]!.id)
        .where('time', '<', before)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };

  const nodes = {
    /** Records that this node serves `publicUrl` now; returns the other URLs nodes served since `since`. */
    async announce(publicUrl: string, now: number, since: number): Promise<string[]> {
      await db
        .insertInto('gh_node_urls')
        .values({ public_url: publicUrl, seen_at: now })
        .onConflict((oc) => oc.column('public_url').doUpdateSet({ seen_at: now }))
        .execute();
      const rows = await db.selectFrom('gh_node_urls').select('public_url').where('public_url', '<>', publicUrl).where('seen_at', '>=', since).execute();
      return rows.map((row) => row.public_url).sort();
    },
  };

  return { tenants, keys, oauth, audit, nodes };
}

export type Repositories = ReturnType<typeof createRepositories>;

type Row<T extends keyof import('./schema.js').Database> = import('kysely').Selectable<import('./schema.js').Database[T]>;

const toTenant = (row: Row<'tenants'>): TenantRecord => ({ id: row.id, displayName: row.display_name, logoType: row.logo_type, createdAt: Number(row.created_at) });

const toKey = (row: Row<'signing_keys'>): SigningKeyRecord => ({
  tenantId: row.tenant_id,
  kid: row.kid,
  alg: row.alg as SigningKeyRecord['alg'],
  status: row.status as SigningKeyRecord['status'],
  publicJwk: JSON.parse(row.public_jwk),
  privateJwkEnc: row.private_jwk_enc,
  createdAt: Number(row.created_at),
  deactivatedAt: row.deactivated_at === null ? null : Number(row.deactivated_at),
  retireAt: row.retire_at === null ? null : Number(row.retire_at),
});

const fromApi = (api: ApiRecord) => ({
  tenant_id: api.tenantId,
  id: api.id,
  identifier: api.identifier,
  name: api.name,
  scopes: JSON.stringify(api.scopes),
  access_token_ttl: api.accessTokenTtl,
  builtin: api.builtin ? 1 : 0,
  created_at: api.createdAt,
  resource_servers: JSON.stringify(api.resourceServers),
});

const toApi = (row: Row<'apis'>): ApiRecord => ({
  tenantId: row.tenant_id,
  id: row.id,
  identifier: row.identifier,
  name: row.name,
  scopes: JSON.parse(row.scopes),
  accessTokenTtl: Number(row.access_token_ttl),
  builtin: Number(row.builtin) === 1,
  createdAt: Number(row.created_at),
  resourceServers: JSON.parse(row.resource_servers),
});

const fromClient = (c: ClientRecord) => ({
  tenant_id: c.tenantId,
  client_id: c.clientId,
  name: c.name,
  type: c.type,
  grant_types: JSON.stringify(c.grantTypes),
  redirect_uris: JSON.stringify(c.redirectUris),
  api_scopes: JSON.stringify(c.apiScopes),
  auth_method: c.authMethod,
  post_logout_redirect_uris: JSON.stringify(c.postLogoutRedirectUris),
  first_party: c.firstParty ? 1 : 0,
  backchannel_logout_uri: c.backchannelLogoutUri,
  refresh_idle_ttl: c.refreshTokenIdleTtl,
  refresh_absolute_ttl: c.refreshTokenAbsoluteTtl,
  tokens_valid_after: c.tokensValidAfter,
  id_token_alg: c.idTokenAlg,
  builtin: c.builtin ? 1 : 0,
  created_at: c.createdAt,
  updated_at: c.updatedAt,
});

const toClient = (row: Row<'clients'>): ClientRecord => ({
  tenantId: row.tenant_id,
  clientId: row.client_id,
  name: row.name,
  type: row.type as ClientRecord['type'],
  grantTypes: JSON.parse(row.grant_types),
  redirectUris: JSON.parse(row.redirect_uris),
  apiScopes: JSON.parse(row.api_scopes),
  authMethod: row.auth_method as ClientRecord['authMethod'],
  postLogoutRedirectUris: JSON.parse(row.post_logout_redirect_uris),
  firstParty: Number(row.first_party) === 1,
  backchannelLogoutUri: row.backchannel_logout_uri,
  refreshTokenIdleTtl: row.refresh_idle_ttl === null ? null : Number(row.refresh_idle_ttl),
  refreshTokenAbsoluteTtl: row.refresh_absolute_ttl === null ? null : Number(row.refresh_absolute_ttl),
  idTokenAlg: (row.id_token_alg ?? null) as ClientRecord['idTokenAlg'],
  tokensValidAfter: row.tokens_valid_after === null ? null : Number(row.tokens_valid_after),
  builtin: Number(row.builtin) === 1,
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at),
});

const fromSecret = (tenantId: string, clientId: string, s: ClientSecretRecord) => ({
  tenant_id: tenantId,
  client_id: clientId,
  id: s.id,
  hash: s.hash,
  created_at: s.createdAt,
  expires_at: s.expiresAt,
});

const toSecret = (row: Row<'client_secrets'>): ClientSecretRecord => ({
  id: row.id,
  hash: row.hash,
  createdAt: Number(row.created_at),
  expiresAt: row.expires_at === null ? null : Number(row.expires_at),
});

const toPayload = (row: Row<'oidc_payloads'>): OidcPayloadRecord => ({
  tenantId: row.tenant_id,
  model: row.model,
  id: row.id,
  payload: row.payload,
  grantId: row.grant_id,
  userCode: row.user_code,
  uid: row.uid,
  accountId: row.account_id,
  expiresAt: row.expires_at === null ? null : Number(row.expires_at),
  consumedAt: row.consumed_at === null ? null : Number(row.consumed_at),
});

const toAudit = (row: Row<'audit_events'>): StoredAuditEvent => ({
  id: Number(row.id),
  tenantId: row.tenant_id,
  time: Number(row.time),
  actor: row.actor,
  action: row.action as AuditEvent['action'],
  target: row.target,
  result: row.result as AuditEvent['result'],
  requestId: row.request_id,
  ip: row.ip,
  details: row.details ? JSON.parse(row.details) : null,
});

export type { AuditQuery };
