import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { checkClientShape, type ClientShapeChanges } from './client-rules.js';
import { oauthErrors } from './errors.js';
import type { SigningAlg } from '../config/defaults.js';
import type { ApiRecord, ClientRecord, ClientSecretRecord, ClientType, OAuthStore } from './types.js';


// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const MIN_TTL = 30;
/** Longest access-token lifetime an API may have (seconds). */
export const MAX_ACCESS_TOKEN_TTL = 86400;
const MAX_TTL = MAX_ACCESS_TOKEN_TTL;
const MAX_GRACE = 30 * 86400;

/** SHA-256 is the right hash for a 256-bit random secret: nothing to brute-force, and it is fast. */
export const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

export interface CreateApiInput {
  identifier: string;
  name?: string;
  scopes: string[];
  accessTokenTtl?: number;
  /** Client ids allowed to introspect the API's tokens (RFC 7662 §2.1). */
  resourceServers?: string[];
}

export interface CreateClientInput {
  name: string;
  type?: ClientType;
  grantTypes: string[];
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  /** First-party applications skip the consent screen. */
  firstParty?: boolean;
  backchannelLogoutUri?: string | null;
  refreshTokenIdleTtl?: number | null;
  refreshTokenAbsoluteTtl?: number | null;
  /** id_token_signed_response_alg; null or absent: RS256. */
  idTokenAlg?: SigningAlg | null;
  /** API identifier → allowed scopes. */
  apis?: Record<string, string[]>;
  authMethod?: ClientRecord['authMethod'];
  /** Built-in clients carry a fixed id and cannot be deleted. */
  clientId?: string;
  builtin?: boolean;
}

interface TenantCache {
  apis?: ApiRecord[];
  clients: Map<string, { client: ClientRecord; secrets: ClientSecretRecord[] } | null>;
}

export interface CatalogDeps {
  store: OAuthStore;
  defaultAccessTokenTtl: number;
  defaultGraceSeconds: number;
  /** Back-channel logout URIs may name private and loopback addresses. */
  allowPrivateOutbound?: boolean;
  /** The algorithms the tenant signs ID tokens with (the key service's): what a client may register. */
  idTokenAlgs(tenantId: string): Promise<SigningAlg[]>;
  clock?: () => number;
}

/**
 * APIs (resource servers) and clients of each tenant. Reads are cached per tenant and
 * dropped by `invalidate` when the change feed reports a write, from this process or another.
 */
export function createOAuthCatalog({ store, defaultAccessTokenTtl, defaultGraceSeconds, allowPrivateOutbound = false, idTokenAlgs, clock = Date.now }: CatalogDeps) {
  const tenants = new Map<string, TenantCache>();
  const cacheOf = (tenantId: string) => {
    let cache = tenants.get(tenantId);
    if (!cache) {
      cache = { clients: new Map() };
      tenants.set(tenantId, cache);
    }
    return cache;
  };

  async function listApis(tenantId: string): Promise<ApiRecord[]> {
    const cache = cacheOf(tenantId);
    cache.apis ??= await store.listApis(tenantId);
    return cache.apis;
  }

  async function apiByIdentifier(tenantId: string, identifier: string): Promise<ApiRecord | undefined> {
    return (await listApis(tenantId)).find((api) => api.identifier === identifier);
  }

  async function loadClient(tenantId: string, clientId: string) {
    const cache = cacheOf(tenantId);
    if (cache.clients.has(clientId)) return cache.clients.get(clientId) ?? undefined;
    const found = (await store.getClient(tenantId, clientId)) ?? null;
    // Unknown ids are cached too, so a flood of random client ids cannot reach the database
    // more than once each; a create bumps the revision and clears this.
    if (cache.clients.size > 10_000) cache.clients.clear();
    cache.clients.set(clientId, found);
    return found ?? undefined;
  }

  function newSecret(): { secret: string; record: ClientSecretRecord } {
    const secret = randomBytes(32).toString('base64url');
    return { secret, record: { id: randomUUID(), hash: hashSecret(secret), createdAt: clock(), expiresAt: null } };
  }

  function checkTtl(ttl: number): number {
    if (!Number.isInteger(ttl) || ttl < MIN_TTL || ttl > MAX_TTL) throw oauthErrors.create('OAUTH_TTL_INVALID');
    return ttl;
  }

  async function checkIdTokenAlg(tenantId: string, alg: SigningAlg | null | undefined): Promise<void> {
    if (alg === null || alg === undefined) return;
    const held = await idTokenAlgs(tenantId);
    if (!held.includes(alg)) throw oauthErrors.create('OAUTH_ID_TOKEN_ALG_UNSUPPORTED', { alg, supported: held.join(' or ') });
  }

  function checkClientName(name: unknown) {
    if (typeof name !== 'string' || name.length < 1 || name.length > 200) throw oauthErrors.create('OAUTH_CLIENT_NAME_INVALID');
  }

  /** Built-in APIs (the admin API) are neither changed nor deleted. */
  async function changeableApi(tenantId: string, idOrIdentifier: string): Promise<ApiRecord> {
    const api = (await listApis(tenantId)).find((a) => a.id === idOrIdentifier || a.identifier === idOrIdentifier);
    if (!api) throw oauthErrors.create('OAUTH_API_NOT_FOUND', { api: idOrIdentifier });
    if (api.builtin) throw oauthErrors.create('OAUTH_API_BUILTIN', { api: api.identifier });
    return api;
  }

  /** Every API must exist in the tenant and define every scope asked for it. */
  async function resolveApiScopes(tenantId: string, apis: Record<string, string[]>): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const [identifier, scopes] of Object.entries(apis)) {
      const api = await apiByIdentifier(tenantId, identifier);
      if (!api) throw oauthErrors.create('OAUTH_CLIENT_API_UNKNOWN', { api: identifier });
      validateScopes(scopes);
      for (const scope of scopes) if (!api.scopes.includes(scope)) throw oauthErrors.create('OAUTH_SCOPE_NOT_IN_API', { scope, api: identifier });
      out[identifier] = [...new Set(scopes)];
    }
    return out;
  }

  /** Resource servers introspect, so they authenticate: existing confidential clients of the tenant. */
  async function checkResourceServers(tenantId: string, clientIds: string[]): Promise<string[]> {
    const unique = [...new Set(clientIds)];
    for (const clientId of unique) {
      const found = await loadClient(tenantId, clientId);
      if (!found) throw oauthErrors.create('OAUTH_RESOURCE_SERVER_INVALID', { client: clientId, reason: 'no such client in this tenant' });
      if (found.client.type !== 'confidential') throw oauthErrors.create('OAUTH_RESOURCE_SERVER_INVALID', { client: clientId, reason: 'a public client cannot authenticate to introspect' });
    }
    return unique;
  }

  function validateScopes(scopes: string[]) {
    for (const scope of scopes) if (!SCOPE_TOKEN.test(scope)) throw oauthErrors.create('OAUTH_SCOPE_INVALID', { scope });
  }

  return {
    listApis,
    apiByIdentifier,

    async createApi(tenantId: string, input: CreateApiInput & { builtin?: boolean }): Promise<ApiRecord> {
      let url: URL;
      try {
        url = new URL(input.identifier);
      } catch {
        throw oauthErrors.create('OAUTH_API_IDENTIFIER_INVALID', { identifier: input.identifier });
      }
      if (url.hash || input.identifier.includes('#')) throw oauthErrors.create('OAUTH_API_IDENTIFIER_INVALID', { identifier: input.identifier });
      validateScopes(input.scopes);
      const ttl = checkTtl(input.accessTokenTtl ?? defaultAccessTokenTtl);
      const api: ApiRecord = {
        tenantId,
        id: randomUUID(),
        identifier: input.identifier,
        name: input.name ?? input.identifier,
        scopes: [...new Set(input.scopes)],
        accessTokenTtl: ttl,
        builtin: input.builtin ?? false,
        createdAt: clock(),
        resourceServers: await checkResourceServers(tenantId, input.resourceServers ?? []),
      };
      if (!(await store.createApi(api))) throw oauthErrors.create('OAUTH_API_IDENTIFIER_TAKEN', { identifier: input.identifier });
      tenants.delete(tenantId);
      return api;
    },

    async deleteApi(tenantId: string, idOrIdentifier: string): Promise<void> {
      const api = await changeableApi(tenantId, idOrIdentifier);
      await store.deleteApi(tenantId, api.id);
      tenants.delete(tenantId);
    },

    /** Changes name, scopes or lifetime; tokens already issued keep what they carry. */
    async updateApi(tenantId: string, idOrIdentifier: string, changes: { name?: string; scopes?: string[]; accessTokenTtl?: number; resourceServers?: string[] }): Promise<ApiRecord> {
      const api = await changeableApi(tenantId, idOrIdentifier);
      if (changes.scopes) validateScopes(changes.scopes);
      const updated: ApiRecord = {
        ...api,
        name: changes.name ?? api.name,
        scopes: changes.scopes ? [...new Set(changes.scopes)] : api.scopes,
        accessTokenTtl: changes.accessTokenTtl === undefined ? api.accessTokenTtl : checkTtl(changes.accessTokenTtl),
        resourceServers: changes.resourceServers ? await checkResourceServers(tenantId, changes.resourceServers) : api.resourceServers,
      };
      if (!(await store.updateApi(updated))) throw oauthErrors.create('OAUTH_API_NOT_FOUND', { api: idOrIdentifier });
      tenants.delete(tenantId);
      return updated;
    },

    /** The secret is returned here and never again. */
    async createClient(tenantId: string, input: CreateClientInput): Promise<{ client: ClientRecord; clientSecret?: string }> {
      const type = input.type ?? 'confidential';
      checkClientName(input.name);
      const shape = {
        type,
        grantTypes: [...new Set(input.grantTypes)],
        redirectUris: [...new Set(input.redirectUris ?? [])],
        postLogoutRedirectUris: [...new Set(input.postLogoutRedirectUris ?? [])],
        backchannelLogoutUri: input.backchannelLogoutUri ?? null,
        refreshTokenIdleTtl: input.refreshTokenIdleTtl ?? null,
        refreshTokenAbsoluteTtl: input.refreshTokenAbsoluteTtl ?? null,
        idTokenAlg: input.idTokenAlg ?? null,
      };
      checkClientShape(shape, { allowPrivateOutbound });
      await checkIdTokenAlg(tenantId, shape.idTokenAlg);
      const authMethod = input.authMethod ?? (type === 'public' ? 'none' : 'client_secret_basic');
      if ((type === 'public') !== (authMethod === 'none')) throw oauthErrors.create('OAUTH_AUTH_METHOD_INVALID', { method: authMethod, type });
      const apiScopes = await resolveApiScopes(tenantId, input.apis ?? {});
      const now = clock();
      const client: ClientRecord = {
        tenantId,
        clientId: input.clientId ?? `cl_${randomBytes(12).toString('base64url')}`,
        name: input.name,
        ...shape,
        firstParty: input.firstParty ?? false,
        tokensValidAfter: null,
        apiScopes,
        authMethod,
        builtin: input.builtin ?? false,
        createdAt: now,
        updatedAt: now,
      };
      const secret = type === 'confidential' ? newSecret() : undefined;
      await store.createClient(client, secret?.record);
      cacheOf(tenantId).clients.delete(client.clientId);
      return secret ? { client, clientSecret: secret.secret } : { client };
    },

    /** Changes what a client may do: name, APIs and scopes, grant types, URIs, consent, refresh lifetimes. Its type and auth method stay. */
    async updateClient(tenantId: string, clientId: string, changes: { name?: string; apis?: Record<string, string[]> } & ClientShapeChanges): Promise<ClientRecord> {
      const found = await loadClient(tenantId, clientId);
      if (!found) throw oauthErrors.create('OAUTH_CLIENT_NOT_FOUND', { client: clientId });
      if (found.client.builtin) throw oauthErrors.create('OAUTH_CLIENT_BUILTIN', { client: clientId });
      if (changes.name !== undefined) checkClientName(changes.name);
      const { name, apis, ...shapeChanges } = changes;
      const defined = Object.fromEntries(Object.entries(shapeChanges).filter(([, value]) => value !== undefined)) as ClientShapeChanges;
      const updated: ClientRecord = {
        ...found.client,
        ...defined,
        name: name ?? found.client.name,
        apiScopes: apis ? await resolveApiScopes(tenantId, apis) : found.client.apiScopes,
        updatedAt: clock(),
      };
      for (const list of ['grantTypes', 'redirectUris', 'postLogoutRedirectUris'] as const) updated[list] = [...new Set(updated[list])];
      checkClientShape(updated, { allowPrivateOutbound });
      if (changes.idTokenAlg !== undefined) await checkIdTokenAlg(tenantId, changes.idTokenAlg);
      if (!(await store.updateClient(updated))) throw oauthErrors.create('OAUTH_CLIENT_NOT_FOUND', { client: clientId });
      cacheOf(tenantId).clients.delete(clientId);
      return updated;
    },

    async getClient(tenantId: string, clientId: string): Promise<ClientRecord> {
      const found = await loadClient(tenantId, clientId);
      if (!found) throw oauthErrors.create('OAUTH_CLIENT_NOT_FOUND', { client: clientId });
      return found.client;
    },
    findClient: async (tenantId: string, clientId: string) => (await loadClient(tenantId, clientId))?.client,
    /** The current secret's hash, which oidc-provider carries as opaque client metadata. */
    currentSecretHash: async (tenantId: string, clientId: string) =>
      (await loadClient(tenantId, clientId))?.secrets.find((s) => s.expiresAt === null)?.hash,
    listClients: (tenantId: string) => store.listClients(tenantId),

    async deleteClient(tenantId: string, clientId: string): Promise<void> {
      const client = await loadClient(tenantId, clientId);
      if (!client) throw oauthErrors.create('OAUTH_CLIENT_NOT_FOUND', { client: clientId });
      if (client.client.builtin) throw oauthErrors.create('OAUTH_CLIENT_BUILTIN', { client: clientId });
      await store.deleteClient(tenantId, clientId);
      cacheOf(tenantId).clients.delete(clientId);
    },

    /** A new current secret; earlier ones keep working for the grace period. */
    async rotateSecret(tenantId: string, clientId: string, graceSeconds = defaultGraceSeconds) {
      if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE) throw oauthErrors.create('OAUTH_GRACE_INVALID');
      const found = await loadClient(tenantId, clientId);
      if (!found) throw oauthErrors.create('OAUTH_CLIENT_NOT_FOUND', { client: clientId });
      if (found.client.type === 'public') throw oauthErrors.create('OAUTH_PUBLIC_CLIENT_NO_SECRET', { client: clientId });
      const { secret, record } = newSecret();
      const previousExpireAt = record.createdAt + graceSeconds * 1000;
      // Without grace the old secret is treated as leaked: the tokens it obtained end too.
      await store.rotateSecret(tenantId, clientId, record, previousExpireAt, graceSeconds === 0 ? record.createdAt : undefined);
      cacheOf(tenantId).clients.delete(clientId);
      return { clientSecret: secret, previousSecretsExpireAt: previousExpireAt };
    },

    /** Ends every access token the client holds now: the admin guard refuses tokens issued before this moment. */
    async revokeTokens(tenantId: string, clientId: string): Promise<{ tokensValidAfter: number }> {
      const at = clock();
      if (!(await store.revokeClientTokens(tenantId, clientId, at))) throw oauthErrors.create('OAUTH_CLIENT_NOT_FOUND', { client: clientId });
      cacheOf(tenantId).clients.delete(clientId);
      return { tokensValidAfter: at };
    },

    /**
     * Compares the presented secret with every secret still valid (the current one and
     * rotated ones inside their grace period). Constant-time per comparison.
     */
    async verifySecret(tenantId: string, clientId: string, presented: unknown): Promise<boolean> {
      if (typeof presented !== 'string' || presented.length === 0 || presented.length > 512) return false;
      const found = await loadClient(tenantId, clientId);
      if (!found) return false;
      const now = clock();
      const digest = Buffer.from(hashSecret(presented), 'hex');
      let ok = false;
      for (const secret of found.secrets) {
        if (secret.expiresAt !== null && secret.expiresAt <= now) continue;
        if (timingSafeEqual(digest, Buffer.from(secret.hash, 'hex'))) ok = true;
      }
      return ok;
    },

    /**
     * RFC 7662 §2.1: whether `clientId` may introspect a token issued to `tokenClientId` for
     * `audiences`: the token's own client, or a resource server of one of its APIs.
     */
    async mayIntrospect(tenantId: string, clientId: string, token: { clientId: unknown; audiences: unknown }): Promise<boolean> {
      if (typeof token.clientId === 'string' && token.clientId === clientId) return true;
      const audiences = typeof token.audiences === 'string' ? [token.audiences] : Array.isArray(token.audiences) ? token.audiences : [];
      for (const audience of audiences) {
        if (typeof audience !== 'string') continue;
        if ((await apiByIdentifier(tenantId, audience))?.resourceServers.includes(clientId)) return true;
      }
      return false;
    },

    /** Longest access-token lifetime among the tenant's APIs (what key retirement waits for). */
    async maxAccessTokenTtl(tenantId: string): Promise<number> {
      const apis = await listApis(tenantId);
      return Math.max(defaultAccessTokenTtl, ...apis.map((a) => a.accessTokenTtl));
    },

    invalidate(tenantId: string, kind?: string): void {
      if (kind === undefined || kind === 'apis' || kind === 'clients' || kind === 'tenants') tenants.delete(tenantId);
    },
  };
}

export type OAuthCatalog = ReturnType<typeof createOAuthCatalog>;
