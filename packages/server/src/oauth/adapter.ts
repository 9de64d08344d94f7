import { createHash } from 'node:crypto';
import type { Adapter, AdapterPayload, KoaContextWithOIDC } from 'oidc-provider';
import type { OAuthCatalog } from './catalog.js';
import { applicationTypeOf } from './client-rules.js';
import type { OAuthStore } from './types.js';

/**
 * Models whose id is itself the credential a client, device or browser presents: stored under
 * the SHA-256 of the id, with the id left out of the stored payload, so a copy of the database
 * holds no usable refresh token, code, device code or opaque access token.
 */
const SECRET_IDS = new Set(['RefreshToken', 'AuthorizationCode', 'AccessToken', 'ClientCredentials', 'DeviceCode']);
/** The key a secret id is stored under (and named by in the audit trail). */
export const digest = (id: string) => createHash('sha256').update(id).digest('base64url');

/**
 * RFC 8628: the device polls the token endpoint with its device code, but oidc-provider also
 * finds a DeviceCode by the user code the person types, then saves it back (and keeps its jti in
 * the Interaction until `device_resume` finds it again). The raw code is not ours to give back
 * then, so its jti is the stored id behind this marker: `~` never occurs in oidc-provider's
 * base64url ids, and a marked id names the row as it is, without hashing again.
 */
const STORED_ID = '~';
/** Single-use models the token endpoint consumes before it issues tokens. */
const CONSUMABLE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode']);
const isStoredId = (model: string, id: string) => model === 'DeviceCode' && id.startsWith(STORED_ID);

/**
 * Anyone who reads the database can write a marked id from a row, so one is honoured only on
 * the device flow's browser routes (where it comes from our own Interaction row, and finding the
 * code lets a signed-in person approve it, not take tokens) — never at the token endpoint.
 */
const DEVICE_BROWSER_ROUTES = new Set(['code_verification', 'device_resume']);
async function onDeviceBrowserRoute(): Promise<boolean> {
  // Loaded already whenever an adapter runs: provider.ts imports oidc-provider on first use.
  const { default: Provider } = await import('oidc-provider');
  return DEVICE_BROWSER_ROUTES.has(Provider.ctx?.oidc.route ?? '');
}

/** The request the engine is serving (its async-local context), if any. */
async function engineRequest(): Promise<KoaContextWithOIDC | undefined> {
  const { default: Provider } = await import('oidc-provider');
  return Provider.ctx;
}

export interface AdapterHooks {
  /**
   * Runs just before a code or token is consumed, with the payload the engine found for it:
   * what can still refuse the token request must refuse it here, while the credential is unused.
   */
  beforeConsume?(ctx: KoaContextWithOIDC, model: string, payload: AdapterPayload): Promise<void>;
  /**
   * Wraps a lookup by user code (the person typed it): may refuse it before it runs, and learns
   * whether the code existed (RFC 8628 §5.1: guesses are limited).
   */
  guardUserCode?(ctx: KoaContextWithOIDC | undefined, lookup: () => Promise<boolean>): Promise<void>;
}

/**
 * oidc-provider's storage adapter for one tenant. Clients come from our catalog (cached,
 * secrets hashed); every other model (grants, codes, refresh tokens, sessions…) is a JSON
 * payload row scoped by tenant.
 */
export function createAdapterFactory(tenantId: string, store: OAuthStore, catalog: OAuthCatalog, clock: () => number = Date.now, hooks: AdapterHooks = {}) {
  // What each request found, for beforeConsume: the engine finds a code or token, checks it,
  // then consumes it by id.
  const foundIn = new WeakMap<object, Map<string, AdapterPayload>>();
  const remember = async (model: string, id: string, payload: AdapterPayload | undefined) => {
    const ctx = hooks.beforeConsume && payload ? await engineRequest() : undefined;
    if (!ctx) return;
    const found = foundIn.get(ctx) ?? new Map<string, AdapterPayload>();
    found.set(`${model} ${id}`, payload!);
    foundIn.set(ctx, found);
  };
  return (model: string): Adapter => {
    if (model === 'Client') return clientAdapter(tenantId, catalog);
    const secret = SECRET_IDS.has(model);
    const key = (id: string) => (!secret ? id : isStoredId(model, id) ? id.slice(STORED_ID.length) : digest(id));
    return {
      async upsert(id, payload, expiresIn) {
        const stored = secret ? { ...payload, jti: undefined } : payload;
        await store.upsertPayload({
          tenantId,
          model,
          id: key(id),
          payload: JSON.stringify(stored),
          grantId: payload.grantId ?? null,
          userCode: payload.userCode ?? null,
          uid: payload.uid ?? null,
          accountId: payload.accountId ?? null,
          expiresAt: expiresIn ? clock() + expiresIn * 1000 : null,
          consumedAt: null,
        });
      },
      async find(id) {
        if (isStoredId(model, id) && !(await onDeviceBrowserRoute())) return undefined;
        const found = await load(store, tenantId, model, 'id', key(id), clock);
        const payload = found && secret ? { ...found.payload, jti: id } : found?.payload;
        if (CONSUMABLE.has(model)) await remember(model, id, payload);
        return payload;
      },
      findByUid: async (uid) => (await load(store, tenantId, model, 'uid', uid, clock))?.payload,
      async findByUserCode(userCode) {
        let found: Awaited<ReturnType<typeof load>>;
        const lookup = async () => {
          found = await load(store, tenantId, model, 'userCode', userCode, clock);
          return found !== undefined;
        };
        if (hooks.guardUserCode) await hooks.guardUserCode(await engineRequest(), lookup);
        else await lookup();
        // The person typed the user code; the device code behind it stays unknown to us.
        return found && secret ? { ...found.payload, jti: `${STORED_ID}${found.id}` } : found?.payload;
      },
      async consume(id) {
        const ctx = hooks.beforeConsume ? await engineRequest() : undefined;
        if (ctx) {
          const payload = foundIn.get(ctx)?.get(`${model} ${id}`) ?? (await load(store, tenantId, model, 'id', key(id), clock))?.payload;
          if (payload) await hooks.beforeConsume!(ctx, model, payload);
        }
        if (await store.consumePayload(tenantId, model, key(id), Math.floor(clock() / 1000))) return;
        await lostConsumeRace(store, tenantId, model, key(id));
      },
      async destroy(id) {
        await store.destroyPayload(tenantId, model, key(id));
      },
      async revokeByGrantId(grantId) {
        await store.revokeGrant(tenantId, grantId);
      },
    };
  };
}

/**
 * The reasons oidc-provider gives when a used code or token comes back (its grant handlers and
 * consumeGrantSource), which the audit trail maps to the reuse events (provider.ts).
 */
const REUSED = new Map([
  ['AuthorizationCode', 'authorization code already consumed'],
  ['RefreshToken', 'refresh token already used'],
  ['DeviceCode', 'device code already consumed'],
]);

/**
 * oidc-provider reads a code or refresh token, checks that it is unused, then consumes it and
 * issues tokens: parallel requests with one code all pass the check. The consume is the atomic
 * step (store: `… WHERE consumed_at IS NULL`); a request that did not win it is a reuse, so it
 * fails and the grant dies as for a sequential replay (RFC 6749 §4.1.2: a code used twice
 * revokes the tokens issued with it; RFC 9700 §4.14.2: a refresh token used twice ends the
 * grant). The winner's tokens go with it: which of the two is the attacker is unknown.
 */
async function lostConsumeRace(store: OAuthStore, tenantId: string, model: string, storedId: string): Promise<never> {
  const { errors } = await import('oidc-provider');
  const row = await store.findPayload(tenantId, model, 'id', storedId);
  if (row?.grantId) {
    // The grant first: a token the winner is issuing now is then revoked when recorded.
    await store.destroyPayload(tenantId, 'Grant', row.grantId);
    await store.revokeGrant(tenantId, row.grantId);
  }
  throw new errors.InvalidGrant(REUSED.get(model) ?? `${model} already consumed`);
}

async function load(store: OAuthStore, tenantId: string, model: string, by: 'id' | 'uid' | 'userCode', value: string, clock: () => number) {
  const row = await store.findPayload(tenantId, model, by, value);
  if (!row) return undefined;
  // Expired rows are purged in the background; until then they must read as absent.
  if (row.expiresAt !== null && row.expiresAt <= clock()) return undefined;
  const payload = JSON.parse(row.payload) as AdapterPayload;
  return { id: row.id, payload: row.consumedAt !== null ? { ...payload, consumed: row.consumedAt } : payload };
}

function clientAdapter(tenantId: string, catalog: OAuthCatalog): Adapter {
  const readOnly = async () => {
    throw new Error('clients are managed through the Gatehouse admin API');
  };
  return {
    async find(clientId) {
      const client = await catalog.findClient(tenantId, clientId);
      if (!client) return undefined;
      const metadata: AdapterPayload = {
        client_id: client.clientId,
        client_name: client.name,
        grant_types: client.grantTypes,
        redirect_uris: client.redirectUris,
        post_logout_redirect_uris: client.postLogoutRedirectUris,
        response_types: client.grantTypes.includes('authorization_code') ? ['code'] : [],
        token_endpoint_auth_method: client.authMethod,
        application_type: applicationTypeOf(client),
        // Absent: RS256, the engine's client default (OIDC Registration §2).
        ...(client.idTokenAlg ? { id_token_signed_response_alg: client.idTokenAlg } : {}),
        first_party: client.firstParty,
        refresh_token_idle_ttl: client.refreshTokenIdleTtl,
        refresh_token_absolute_ttl: client.refreshTokenAbsoluteTtl,
        ...(client.backchannelLogoutUri ? { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
      };
      if (client.type === 'confidential') {
        // oidc-provider insists on a client_secret for secret-based methods. We hand it the
        // current secret's SHA-256 (unguessable, useless as a credential) and compare
        // presented secrets ourselves; HS* algorithms, which would use it as a key, are disabled.
        metadata.client_secret = (await catalog.currentSecretHash(tenantId, clientId)) ?? `none:${clientId}`;
      }
      return metadata;
    },
    findByUid: async () => undefined,
    findByUserCode: async () => undefined,
    upsert: readOnly,
    consume: readOnly,
    destroy: readOnly,
    revokeByGrantId: readOnly,
  };
}
