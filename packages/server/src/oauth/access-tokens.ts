import { createLocalJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { KeyService, TenantKeySet } from '../keys/index.js';
import type { OAuthStore } from './types.js';

export interface VerifiedAccessToken {
  tenantId: string;
  claims: JWTPayload & { client_id?: string; scope?: string };
}

/** Why a token failed, for logs and audit only: callers answer every failure the same way. */
export class AccessTokenInvalid extends Error {
  constructor(readonly reason: string) {
    super(`access token invalid: ${reason}`);
  }
}

const ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256'];

/** An issuer `{any public URL}/t/{tenantId}`. */
function issuedForTenant(iss: unknown, tenantId: string): boolean {
  if (typeof iss !== 'string') return false;
  try {
    return new URL(iss).pathname.endsWith(`/t/${tenantId}`);
  } catch {
    return false;
  }
}

/** A compact JWS by shape: three base64url parts and a decodable protected header. */
export function looksLikeJwt(token: string): boolean {
  if (token.split('.').length !== 3) return false;
  try {
    decodeProtectedHeader(token);
    return true;
  } catch {
    return false;
  }
}

/**
 * Verifies our own RFC 9068 access tokens in-process, against the issuing tenant's live
 * keys (retired keys are gone from the set, so their tokens fail), and consults the
 * revocation list that the revocation endpoint fills.
 *
 * Verified tokens are remembered until they expire (a signature check and a revocation
 * lookup cost far more than the admin or permission call they guard). The memory belongs
 * to one key set, so a rotation or retirement forgets it; `forget(tenant)` drops a tenant's
 * tokens when one of them is revoked here or on another node.
 */
export function createAccessTokenVerifier(deps: { keys: KeyService; store: OAuthStore; issuerFor(tenantId: string): string; clock?: () => number }) {
  const clock = deps.clock ?? Date.now;
  const keySets = new WeakMap<TenantKeySet, { jwks: ReturnType<typeof createLocalJWKSet>; verified: Map<string, VerifiedAccessToken> }>();
  const MAX_REMEMBERED = 10_000;
  const RELOAD_QUIET_MS = 1000;
  const reloads = new Map<string, { pending?: Promise<TenantKeySet>; quietUntil: number }>();

  /** A token this key set has verified and that has not expired since. */
  function remembered(keySet: TenantKeySet, token: string): VerifiedAccessToken | undefined {
    const state = keySets.get(keySet);
    const known = state?.verified.get(token);
    if (!known) return undefined;
    if (Number(known.claims.exp) * 1000 > clock()) return known;
    state!.verified.delete(token);
    return undefined;
  }

  /**
   * `anyPublicUrl`: the tenant's keys and the issuer's `/t/{tenant}` path decide, not the
   * host before it. Only for revocation, so that a node whose GATEHOUSE_PUBLIC_URL differs
   * from the issuing node's still revokes the token instead of answering 200 for nothing.
   */
  /**
   * The tenant's keys read again from the store when a token names a kid this node does not
   * hold: another node rotated and signs with the new key before our change feed has told us.
   * Requests meanwhile share one read; a read that found no such key makes the tenant wait
   * RELOAD_QUIET_MS before the next one (made-up kids must not turn into a query each).
   */
  async function reloadedFor(tenantId: string, current: TenantKeySet, token: string): Promise<TenantKeySet | undefined> {
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return undefined;
    }
    const holds = (set: TenantKeySet) => set.publicJwks.keys.some((k) => k.kid === kid);
    if (typeof kid !== 'string' || holds(current)) return undefined;
    let state = reloads.get(tenantId);
    if (!state) reloads.set(tenantId, (state = { quietUntil: 0 }));
    let pending = state.pending;
    if (!pending) {
      if (clock() < state.quietUntil) return undefined;
      deps.keys.invalidate(tenantId);
      const reload = state;
      pending = reload.pending = deps.keys.keySet(tenantId).finally(() => (reload.pending = undefined));
    }
    const fresh = await pending.catch(() => undefined);
    if (fresh && holds(fresh)) return fresh;
    state.quietUntil = clock() + RELOAD_QUIET_MS;
    return undefined;
  }

  function stateOf(keySet: TenantKeySet) {
    let state = keySets.get(keySet);
    if (!state) {
      state = { jwks: createLocalJWKSet(keySet.publicJwks), verified: new Map() };
      keySets.set(keySet, state);
    }
    return state;
  }

  async function verify(tenantId: string, token: string, options: { anyPublicUrl?: boolean } = {}): Promise<VerifiedAccessToken> {
    let keySet = await deps.keys.keySet(tenantId);
    const known = remembered(keySet, token);
    if (known) return known;
    let state = stateOf(keySet);
    const verifyWith = (jwks: ReturnType<typeof createLocalJWKSet>) =>
      jwtVerify(token, jwks, {
        algorithms: ALGORITHMS,
        ...(options.anyPublicUrl ? {} : { issuer: deps.issuerFor(tenantId) }),
        typ: 'at+jwt',
        requiredClaims: ['exp', 'iat', 'jti', 'aud'],
        currentDate: new Date(clock()),
      });
    let claims: VerifiedAccessToken['claims'];
    try {
      try {
        ({ payload: claims } = await verifyWith(state.jwks));
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
        const fresh = await reloadedFor(tenantId, keySet, token);
        if (!fresh) throw error;
        keySet = fresh;
        state = stateOf(keySet);
        ({ payload: claims } = await verifyWith(state.jwks));
      }
    } catch (error) {
      throw new AccessTokenInvalid(error instanceof joseErrors.JOSEError ? error.code : 'malformed');
    }
    if (options.anyPublicUrl && !issuedForTenant(claims.iss, tenantId)) throw new AccessTokenInvalid('unexpected "iss" claim value');
    if (await deps.store.isTokenRevoked(tenantId, String(claims.jti))) throw new AccessTokenInvalid('revoked');
    const verified = { tenantId, claims };
    // Remembered tokens pass the strict check later: one verified without the issuer is not kept.
    if (options.anyPublicUrl) return verified;
    if (state.verified.size >= MAX_REMEMBERED) state.verified.clear();
    state.verified.set(token, verified);
    return verified;
  }

  return Object.assign(verify, {
    /**
     * The answer `verify` would give from memory alone, without waiting: the token was
     * verified with the tenant's current keys, has not expired and was not revoked since.
     * `undefined` means "call verify".
     */
    cached(tenantId: string, token: string): VerifiedAccessToken | undefined {
      const keySet = deps.keys.cachedKeySet(tenantId);
      return keySet && remembered(keySet, token);
    },
    /** Drops every remembered token of the tenant (a revocation happened). */
    async forget(tenantId: string): Promise<void> {
      keySets.get(await deps.keys.keySet(tenantId))?.verified.clear();
    },
  });
}

export type AccessTokenVerifier = ReturnType<typeof createAccessTokenVerifier>;
