import { hkdfSync } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { createAuditWriter } from './audit/index.js';
import { createAuthzService } from './authz/service.js';
import { createAuthzRepository } from './store/authz-repository.js';
import { createIdentityRepository } from './store/identity-repository.js';
import type { Config, SigningAlg } from './config/defaults.js';
import { createMetrics } from './http/metrics.js';
import { prettyDestination } from './logging/pretty.js';
import { createLoginThrottle, createPasswordHasher, createSignInAccounts, createUserService } from './identity/index.js';
import { createKeyService, resolveMasterKey } from './keys/index.js';
import { createAccessTokenVerifier, createOAuthCatalog, createProviderPool, createSessionService, pageTenant, type OAuthStore } from './oauth/index.js';
import { openDatabase } from './store/database.js';
import { createRepositories } from './store/repositories.js';
import { createChangeFeed, currentRevision } from './store/revisions.js';
import { createTenantService, DEFAULT_TENANT } from './tenants/index.js';

/** The built-in API that guards the admin API, in the default tenant. */
export const ADMIN_API = {
  identifier: 'urn:gatehouse:admin',
  name: 'gatehouse-admin',
  scopes: ['admin', 'admin:read', 'authz:check', 'authz:write', 'authz:admin'],
} as const;
/**
 * The built-in API of every tenant but the default one (the operator's, where
 * urn:gatehouse:admin plays this part): its tokens act on that tenant's own admin routes only
 * (permissions, users, clients, audit), never on another tenant's or the operator's.
 */
export const TENANT_API = {
  identifier: 'urn:gatehouse:tenant',
  name: 'gatehouse-tenant',
  scopes: ['authz:check', 'authz:write', 'authz:admin', 'users:read', 'users:write', 'clients:read', 'clients:write', 'audit:read'],
} as const;
export const BOOTSTRAP_CLIENT_ID = 'gatehouse-bootstrap';
/** How long a node's public URL counts as served after the node last said so. */
const NODE_URL_WINDOW_MS = 24 * 60 * 60_000;
/** Audit rows deleted per statement when pruning. */
const AUDIT_PRUNE_CHUNK = 5000;

export interface CoreOptions {
  logger?: Logger;
  clock?: () => number;
  /** SQLite file name in the data directory (tests use ':memory:'). */
  sqliteFile?: string;
}

/**
 * Everything the server and the CLI share: storage, caches kept fresh by the change feed,
 * and the services. Nothing here listens on a port.
 */
export async function createCore(config: Config, options: CoreOptions = {}) {
  // JSON lines for machines; a person at a terminal in development reads them rendered.
  const logger = options.logger ?? (!config.production && process.stdout.isTTY ? pino({ level: config.logLevel }, prettyDestination()) : pino({ level: config.logLevel }));
  const clock = options.clock ?? Date.now;
  const handle = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    sqliteFile: options.sqliteFile,
    logger,
  });
  const repos = createRepositories(handle);
  const feed = await createChangeFeed(handle, { pollMs: config.changePollMs, logger });
  const master = resolveMasterKey(config.masterKey, config.dataDir, config.production);
  if (master.source === 'generated') logger.warn({ path: `${config.dataDir}/master.key` }, 'generated a development master key; set GATEHOUSE_MASTER_KEY in production');

  const catalog = createOAuthCatalog({
    store: repos.oauth,
    defaultAccessTokenTtl: config.accessTokenTtl,
    defaultGraceSeconds: config.secretGraceSeconds,
    allowPrivateOutbound: config.allowPrivateOutbound,
    // The key service is declared below; this runs only once requests do.
    idTokenAlgs: async (tenantId) => Object.keys((await keys.keySet(tenantId)).signing) as SigningAlg[],
    clock,
  });
  // Declared before the key service, which reports retirements into it.
  const audit = createAuditWriter({ store: repos.audit, logger, flushMs: config.auditFlushMs, mode: config.auditMode, clock });
  const keys = createKeyService({
    store: repos.keys,
    masterKey: master.key,
    defaultAlg: config.signingAlg,
    maxTokenLifetime: (tenantId) => catalog.maxAccessTokenTtl(tenantId),
    onRetired: (tenantId, kids) => {
      for (const kid of kids) audit.record({ tenantId, time: clock(), actor: 'system', action: 'key.retired', target: kid, result: 'success' });
    },
    idTokenAlgsInUse: async (tenantId) => [...new Set((await catalog.listClients(tenantId)).flatMap((c) => (c.idTokenAlg ? [c.idTokenAlg] : [])))],
    clock,
  });
  /** Gatehouse's own API in `tenantId`, with every scope and the admin token lifetime; idempotent and safe to race. */
  async function ensureBuiltinApi(tenantId: string, spec: { identifier: string; name: string; scopes: readonly string[] }): Promise<void> {
    const existing = await catalog.apiByIdentifier(tenantId, spec.identifier);
    if (existing && !existing.builtin) {
      // Someone created an API of that name before it was Gatehouse's: its tokens get no power here.
      logger.warn({ tenantId, api: spec.identifier }, 'an API that is not the built-in one holds this identifier; the admin guard ignores its tokens until it is deleted and Gatehouse restarts');
      return;
    }
    if (existing && (spec.scopes.some((s) => !existing.scopes.includes(s)) || existing.accessTokenTtl !== config.adminTokenTtl)) {
      // A database from an earlier version gains the newer scopes; the lifetime follows GATEHOUSE_ADMIN_TOKEN_TTL.
      await repos.oauth.updateApi({ ...existing, scopes: [...new Set([...existing.scopes, ...spec.scopes])], accessTokenTtl: config.adminTokenTtl });
      catalog.invalidate(tenantId, 'apis');
    }
    if (!existing) {
      await catalog
        .createApi(tenantId, { identifier: spec.identifier, name: spec.name, scopes: [...spec.scopes], accessTokenTtl: config.adminTokenTtl, builtin: true })
        .catch((error: { code?: string }) => {
          if (error.code !== 'OAUTH_API_IDENTIFIER_TAKEN') throw error;
        });
    }
  }
  const tenants = createTenantService({
    store: repos.tenants,
    publicUrl: config.publicUrl,
    onCreated: async (id) => {
      await keys.ensureKey(id);
      // The default tenant is the operator's: urn:gatehouse:admin plays this part there.
      if (id !== DEFAULT_TENANT) await ensureBuiltinApi(id, TENANT_API);
    },
    clock,
  });
  const metrics = createMetrics();
  const passwords = createPasswordHasher({ memoryCost: config.passwordMemoryKib, timeCost: config.passwordTimeCost, parallelism: config.passwordParallelism });
  const verifyAccessToken = createAccessTokenVerifier({ keys, store: repos.oauth, issuerFor: tenants.issuerFor, clock });
  // Revoking a grant or an account revokes its JWT access tokens (store): this node forgets the
  // ones it had verified at once; the others follow the tokens_revoked change.
  const oauthStore: OAuthStore = {
    ...repos.oauth,
    async revokeGrant(tenantId, grantId) {
      await repos.oauth.revokeGrant(tenantId, grantId);
      await verifyAccessToken.forget(tenantId);
    },
    async destroyPayload(tenantId, model, id) {
      await repos.oauth.destroyPayload(tenantId, model, id);
      if (model === 'Grant') await verifyAccessToken.forget(tenantId);
    },
    async revokeAccount(tenantId, accountId) {
      const removed = await repos.oauth.revokeAccount(tenantId, accountId);
      await verifyAccessToken.forget(tenantId);
      return removed;
    },
  };
  const sessions = createSessionService({ store: oauthStore, clock });
  /** Ends every session of a user and revokes their grants and refresh tokens (disable, delete, password reset). */
  const endSessionsOf = async (tenantId: string, userId: string) => {
    const ended = await sessions.endAll(tenantId, userId);
    logger.info({ tenantId, userId, ended }, 'ended the sessions and grants of a user');
  };
  const users = createUserService({ store: createIdentityRepository(handle), hasher: passwords, clock, onDeactivated: endSessionsOf });

  const throttle = createLoginThrottle({
    redisUrl: config.redisUrl,
    maxFailuresPerAccount: config.loginMaxFailuresPerAccount,
    maxFailuresPerIp: config.loginMaxFailuresPerIp,
    windowSeconds: config.loginFailureWindowSeconds,
    maxUserCodeFailuresPerIp: config.deviceMaxFailuresPerIp,
    maxUserCodeFailuresPerTenant: config.deviceMaxFailuresPerTenant,
    keySecret: Buffer.from(hkdfSync('sha256', master.key, '', 'gatehouse login throttle', 32)),
    onStoreError: (err) => logger.warn({ err }, 'rate-limit store unreachable; counting sign-in failures in this process meanwhile'),
  });
  const accounts = createSignInAccounts({
    users,
    hasher: passwords,
    throttle,
    auditKey: Buffer.from(hkdfSync('sha256', master.key, '', 'gatehouse audit account names', 32)),
    onRehashError: (err) => logger.warn({ err }, 'could not store a rehashed password'),
  });
  const pool = createProviderPool({
    catalog,
    store: oauthStore,
    keys,
    audit,
    metrics,
    logger,
    masterKey: master.key,
    issuerFor: tenants.issuerFor,
    maxSize: config.providerPoolSize,
    defaultAccessTokenTtl: config.accessTokenTtl,
    accounts,
    session: { idleSeconds: config.sessionIdleSeconds, absoluteSeconds: config.sessionAbsoluteSeconds },
    refreshToken: { idleSeconds: config.refreshTokenIdleSeconds, absoluteSeconds: config.refreshTokenAbsoluteSeconds },
    tenantPage: async (tenantId) => {
      const tenant = await tenants.find(tenantId);
      return tenant ? pageTenant(tenant) : { name: tenantId };
    },
    allowPrivateOutbound: config.allowPrivateOutbound,
    userCodeGuesses: (attempt) => throttle.beforeUserCode(attempt),
    clock,
  });
  const authz = createAuthzService({
    store: createAuthzRepository(handle),
    currentRevision: () => currentRevision(handle.db),
    seenRevision: () => feed.revision,
    catchUp: () => feed.catchUp(),
    atomically: handle.units.atomically,
    clock,
  });

  // Writes from this process, other processes and the CLI all arrive here.
  const unsubscribe = feed.on((change) => {
    catalog.invalidate(change.tenantId, change.kind);
    if (change.kind === 'tenants') {
      // A new name or logo: the engine's own pages (logout, device, errors) show them too.
      tenants.forget(change.tenantId);
      pool.invalidate(change.tenantId);
    }
    if (change.kind === 'tokens_revoked') void verifyAccessToken.forget(change.tenantId).catch(() => undefined);
    if (change.kind === 'relationships' || change.kind === 'authz_schema' || change.kind === 'authz_policies') authz.invalidate(change.tenantId, change.revision);
    if (change.kind === 'keys') {
      keys.invalidate(change.tenantId);
      pool.invalidate(change.tenantId);
    }
  });

  // A unit of work that rolled back may have let a cache read its own uncommitted rows (a
  // tenant, its APIs, a compiled schema): whatever it touched is forgotten whole.
  handle.units.onRollback((changes) => {
    for (const tenantId of new Set(changes.map((c) => c.tenantId))) {
      catalog.invalidate(tenantId);
      tenants.forget(tenantId);
      pool.invalidate(tenantId);
      keys.invalidate(tenantId);
      authz.forget(tenantId);
      void verifyAccessToken.forget(tenantId).catch(() => undefined);
    }
  });

  const purgeTimer = setInterval(() => {
    repos.oauth.purgeExpired(clock()).catch((err: unknown) => logger.error({ err }, 'purging expired rows failed'));
  }, 10 * 60_000);
  purgeTimer.unref();
  let announceTimer: NodeJS.Timeout | undefined;

  /** Deletes audit events past GATEHOUSE_AUDIT_RETENTION_DAYS, in chunks, yielding between them. */
  async function pruneAudit(): Promise<number> {
    if (config.auditRetentionDays === 0) return 0;
    const before = clock() - config.auditRetentionDays * 24 * 60 * 60_000;
    let total = 0;
    for (;;) {
      const deleted = await repos.audit.prune(before, AUDIT_PRUNE_CHUNK);
      total += deleted;
      if (deleted < AUDIT_PRUNE_CHUNK) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (total > 0) logger.info({ deleted: total, retentionDays: config.auditRetentionDays }, 'pruned audit events past retention');
    return total;
  }
  const pruneTimer = setInterval(() => void pruneAudit().catch((err: unknown) => logger.warn({ err }, 'pruning audit events failed')), 60 * 60_000);
  pruneTimer.unref();

  return {
    config,
    logger,
    clock,
    handle,
    /** One transaction around `work` (see UnitOfWork): an admin or CLI change and its audit event. */
    atomically: handle.units.atomically,
    repos,
    feed,
    catalog,
    keys,
    tenants,
    audit,
    metrics,
    pool,
    verifyAccessToken,
    authz,
    passwords,
    users,
    sessions,
    accounts,
    /** HMAC key of the sign-in forms' CSRF tokens. */
    csrfKey: Buffer.from(hkdfSync('sha256', master.key, '', 'gatehouse sign-in csrf', 32)),

    /** The default tenant and its admin API, every tenant's tenant API; idempotent and safe to race between nodes. */
    async ensureDefaults(): Promise<void> {
      await tenants.ensure(DEFAULT_TENANT, 'Default');
      await ensureBuiltinApi(DEFAULT_TENANT, ADMIN_API);
      // Tenants of a database from before urn:gatehouse:tenant get it now (new ones at creation).
      for (const tenant of await tenants.list()) if (tenant.id !== DEFAULT_TENANT) await ensureBuiltinApi(tenant.id, TENANT_API);
    },

    /**
     * Creates the bootstrap admin client on the very first start and returns its secret,
     * which exists nowhere else; undefined when it exists already.
     */
    async bootstrapAdminClient(): Promise<{ clientId: string; clientSecret: string } | undefined> {
      if (await catalog.findClient(DEFAULT_TENANT, BOOTSTRAP_CLIENT_ID)) return undefined;
      try {
        const { client, clientSecret } = await catalog.createClient(DEFAULT_TENANT, {
          clientId: BOOTSTRAP_CLIENT_ID,
          name: 'Gatehouse bootstrap admin',
          grantTypes: ['client_credentials'],
          apis: { [ADMIN_API.identifier]: ['admin'] },
          builtin: true,
        });
        return { clientId: client.clientId, clientSecret: clientSecret! };
      } catch (error) {
        // Another node won the race; its secret was printed there.
        if (await catalog.findClient(DEFAULT_TENANT, BOOTSTRAP_CLIENT_ID)) return undefined;
        throw error;
      }
    },

    /**
     * Records the public URL this node serves (again every hour while it runs) and warns when
     * other nodes of the same database served another one in the last day: their issuers
     * differ, so a token one node issued fails verification on the other.
     */
    async announcePublicUrl(): Promise<string[]> {
      const announce = async () => {
        const now = clock();
        const others = await repos.nodes.announce(config.publicUrl, now, now - NODE_URL_WINDOW_MS);
        if (others.length > 0) {
          logger.warn(
            { publicUrl: config.publicUrl, others },
            'other nodes of this database serve another GATEHOUSE_PUBLIC_URL: tokens one issues fail verification on the other; give every node the same public URL',
          );
        }
        return others;
      };
      clearInterval(announceTimer);
      announceTimer = setInterval(() => void announce().catch((err: unknown) => logger.warn({ err }, 'could not record this node\'s public URL')), 60 * 60_000);
      announceTimer.unref();
      return announce();
    },

    pruneAudit,

    async close(): Promise<void> {
      clearInterval(purgeTimer);
      clearInterval(pruneTimer);
      clearInterval(announceTimer);
      unsubscribe();
      await audit.close();
      await throttle.close();
      await feed.close();
      await handle.close();
    },
  };
}

export type Core = Awaited<ReturnType<typeof createCore>>;
