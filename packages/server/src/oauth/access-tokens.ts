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
 */
export function createAccessTokenVerifier(deps: { keys: KeyService; store: OAuthStore; issuerFor(tenantId: string): string }) {
  const keySets = new WeakMap<TenantKeySet, ReturnType<typeof createLocalJWKSet>>();

  return async function verify(tenantId: string, token: string): Promise<VerifiedAccessToken> {
    const keySet = await deps.keys.keySet(tenantId);
    let jwks = keySets.get(keySet);
    if (!jwks) {
      jwks = createLocalJWKSet(keySet.publicJwks);
      keySets.set(keySet, jwks);
    }
    let claims: VerifiedAccessToken['claims'];
    try {
      ({ payload: claims } = await jwtVerify(token, jwks, {
        algorithms: ALGORITHMS,
        issuer: deps.issuerFor(tenantId),
        typ: 'at+jwt',
        requiredClaims: ['exp', 'iat', 'jti', 'aud'],
      }));
    } catch (error) {
      throw new AccessTokenInvalid(error instanceof joseErrors.JOSEError ? error.code : 'malformed');
    }
    if (await deps.store.isTokenRevoked(tenantId, String(claims.jti))) throw new AccessTokenInvalid('revoked');
    return { tenantId, claims };
  };
}

export type AccessTokenVerifier = ReturnType<typeof createAccessTokenVerifier>;
