/**
 * The JWS algorithm allowlist and which JWKs can serve which algorithm.
 */

/** Algorithms accepted when the `algorithms` option is not set. Asymmetric only. */
export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze([
  'ES256',
  'EdDSA',
  'RS256',
  'PS256',
  'ES384',
  'PS384',
  'RS384',
  'ES512',
  'PS512',
  'RS512',
]);

/** What a JWK must look like to verify a given `alg` (RFC 7518 §3.1, RFC 8037 §3.1). */
interface KeyRequirement {
  readonly kty: 'EC' | 'OKP' | 'RSA';
  readonly crv?: string;
}

const SUPPORTED = new Map<string, KeyRequirement>([
  ['ES256', { kty: 'EC', crv: 'P-256' }],
  ['ES384', { kty: 'EC', crv: 'P-384' }],
  ['ES512', { kty: 'EC', crv: 'P-521' }],
  ['EdDSA', { kty: 'OKP', crv: 'Ed25519' }],
  // RFC 9864: the fully-specified name for EdDSA over Ed25519.
  ['Ed25519', { kty: 'OKP', crv: 'Ed25519' }],
  ['RS256', { kty: 'RSA' }],
  ['RS384', { kty: 'RSA' }],
  ['RS512', { kty: 'RSA' }],
  ['PS256', { kty: 'RSA' }],
  ['PS384', { kty: 'RSA' }],
  ['PS512', { kty: 'RSA' }],
]);

/**
 * Validates the `algorithms` option. A mistake here is a misuse, so it throws `TypeError`
 * at construction rather than failing every request later.
 */
export function resolveAlgorithms(algorithms: readonly string[] | undefined): readonly string[] {
  if (algorithms === undefined) return DEFAULT_ALGORITHMS;
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new TypeError('createVerifier: "algorithms" must be a non-empty array of JWS algorithm names');
  }
  for (const alg of algorithms) {
    if (typeof alg !== 'string') {
      throw new TypeError('createVerifier: "algorithms" must contain only strings');
    }
    // RFC 8725 §3.1/§3.2: "none" disables the signature, and an HMAC algorithm lets anyone
    // holding the issuer's *public* key (it is published in the JWKS) forge tokens.
    if (alg.toLowerCase() === 'none' || /^HS\d+$/i.test(alg)) {
      throw new TypeError(
        `createVerifier: "algorithms" must not contain "${alg}"; Gatehouse signs access tokens with asymmetric keys only`,
      );
    }
    if (!SUPPORTED.has(alg)) {
      throw new TypeError(
        `createVerifier: "algorithms" contains unsupported "${alg}"; use some of ${[...SUPPORTED.keys()].join(', ')}`,
      );
    }
  }
  return Object.freeze([...new Set(algorithms)]);
}

/**
 * The allowed algorithms a public JWK may verify. A JWK that names its own `alg`
 * (RFC 7517 §4.4) is bound to it; otherwise every allowed algorithm of its key type qualifies.
 */
export function algorithmsForJwk(
  jwk: { readonly kty?: unknown; readonly crv?: unknown; readonly alg?: unknown },
  allowed: readonly string[],
): string[] {
  const fits = (alg: string): boolean => {
    const requirement = SUPPORTED.get(alg);
    return (
      requirement !== undefined &&
      requirement.kty === jwk.kty &&
      (requirement.crv === undefined || requirement.crv === jwk.crv)
    );
  };
  if (jwk.alg !== undefined) {
    return typeof jwk.alg === 'string' && allowed.includes(jwk.alg) && fits(jwk.alg) ? [jwk.alg] : [];
  }
  return allowed.filter(fits);
}
