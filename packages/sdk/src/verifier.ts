/**
 * Verification of Gatehouse JWT access tokens (RFC 9068) at a resource server.
 */
import { jwtVerify, type CryptoKey, type JWSHeaderParameters, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { resolveAlgorithms } from './algorithms.js';
import { VERIFIER_DEFAULTS } from './defaults.js';
import { GatehouseTokenError, type ErrorCode } from './errors.js';
import type { FetchLike } from './fetch-json.js';
import { createKeySource, type KeySource } from './key-source.js';
import { hasScopes, missingScopes, parseScopeClaim, validateScopes } from './scopes.js';

/** Options of {@link createVerifier}; see docs/sdk.md for the table with defaults. */
export interface VerifierOptions {
  /** Issuer URL of the tenant, e.g. `https://id.example.com/t/default`. Compared exactly. */
  readonly issuer: string;
  /** Accepted audience(s); the token `aud` must contain at least one. */
  readonly audience: string | readonly string[];
  /** JWS algorithm allowlist. Default: {@link DEFAULT_ALGORITHMS}. `none` and HS* throw. */
  readonly algorithms?: readonly string[];
  /** Scopes every token must carry. Default: none. */
  readonly requiredScopes?: readonly string[];
  /** Leeway for `exp`, `nbf` and `iat`. Default: 60. */
  readonly clockToleranceSeconds?: number;
  /** Age after which the JWKS is fetched again. Default: 600. */
  readonly jwksCacheTtlSeconds?: number;
  /** Minimum time between two fetches of discovery or JWKS. Default: 30. */
  readonly jwksRefreshMinIntervalSeconds?: number;
  /** Timeout of each discovery or JWKS request. Default: 5. */
  readonly fetchTimeoutSeconds?: number;
  /** fetch implementation. Default: `globalThis.fetch`. */
  readonly fetch?: FetchLike;
  /** Current time. Default: `() => new Date()`. */
  readonly clock?: () => Date;
}

/** Claims of a Gatehouse access token (RFC 9068 §2.2). */
export interface AccessTokenClaims extends JWTPayload {
  /** Space-separated granted scopes (RFC 9068 §2.2.3). */
  readonly scope?: string;
  /** The OAuth client the token was issued to (RFC 9068 §2.2). */
  readonly client_id?: string;
}

/** The result of a successful {@link Verifier.verify}. */
export interface VerifiedToken {
  /** The verified claims set. */
  readonly claims: AccessTokenClaims;
  /** `claims.scope`, split. */
  readonly scopes: readonly string[];
  /** The JWS protected header (`alg`, `kid`, `typ`). */
  readonly header: JWTHeaderParameters;
}

/** Per-call options of {@link Verifier.verify}. */
export interface VerifyOptions {
  /** Scopes required in addition to the verifier's `requiredScopes`. */
  readonly scopes?: readonly string[];
}

/** A verifier for one issuer and audience; see {@link createVerifier}. */
export type Verifier = ReturnType<typeof createVerifier>;

/**
 * Creates a verifier of Gatehouse access tokens for one issuer (tenant) and audience.
 * Keys come from the issuer's discovery document and JWKS, fetched on first use and cached.
 * Configuration mistakes throw `TypeError` here; bad tokens reject `verify()` with
 * {@link GatehouseTokenError}.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({
 *   issuer: 'https://id.example.com/t/default',
 *   audience: 'https://api.example.com',
 * });
 * const { claims, scopes } = await verifier.verify(accessToken);
 * ```
 */
export function createVerifier(options: VerifierOptions) {
  return new GatehouseVerifier(options);
}

class GatehouseVerifier {
  /** The configured issuer. */
  readonly issuer: string;
  /** The accepted audiences. */
  readonly audience: readonly string[];
  /** Scopes every token must carry. */
  readonly requiredScopes: readonly string[];

  readonly #algorithms: string[];
  readonly #toleranceSeconds: number;
  readonly #clock: () => Date;
  readonly #keys: KeySource;

  constructor(options: VerifierOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('createVerifier: options are required');
    }
    this.issuer = validateIssuer(options.issuer);
    this.audience = validateAudience(options.audience);
    this.requiredScopes = validateScopes(options.requiredScopes, 'createVerifier "requiredScopes"');
    this.#algorithms = [...resolveAlgorithms(options.algorithms)];
    this.#toleranceSeconds = seconds(options, 'clockToleranceSeconds');
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError('createVerifier: "clock" must be a function returning a Date');
    }
    this.#clock = options.clock ?? (() => new Date());
    const fetch = options.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (typeof fetch !== 'function') {
      throw new TypeError('createVerifier: "fetch" must be a function (no global fetch is available)');
    }
    this.#keys = createKeySource({
      issuer: this.issuer,
      algorithms: this.#algorithms,
      fetch,
      clock: this.#clock,
      ttlMs: seconds(options, 'jwksCacheTtlSeconds') * 1000,
      minIntervalMs: seconds(options, 'jwksRefreshMinIntervalSeconds') * 1000,
      timeoutMs: seconds(options, 'fetchTimeoutSeconds') * 1000,
    });
  }

  /**
   * Verifies a compact JWT access token: signature with an allowed algorithm and a key of the
   * issuer, `typ` at+jwt, `iss`, `aud`, `exp` (required), `nbf`, `iat`, and the required scopes.
   *
   * @throws {GatehouseTokenError} with a `code` from `errorCatalogue`.
   * @example
   * ```ts
   * const token = await verifier.verify(accessToken, { scopes: ['orders:read'] });
   * console.log(token.claims.sub, token.scopes);
   * ```
   */
  async verify(token: string, options?: VerifyOptions): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token === '') throw new GatehouseTokenError('TOKEN_MISSING');
    const now = this.#clock();
    let result;
    try {
      result = await jwtVerify<AccessTokenClaims>(token, this.#resolveKey, {
        // The allowlist is checked by jose before any key is looked up, so "none" and
        // HS* never reach #resolveKey (RFC 8725 §3.1).
        algorithms: this.#algorithms,
        // RFC 9068 §4: reject JWTs that are not access tokens (ID tokens, logout tokens...),
        // which the same issuer signs with the same keys. jose compares media types
        // case-insensitively with an implied "application/" prefix, so "at+jwt" and
        // "application/at+jwt" both pass.
        typ: 'at+jwt',
        issuer: this.issuer,
        audience: this.audience as string[],
        requiredClaims: ['exp'],
        clockTolerance: this.#toleranceSeconds,
        currentDate: now,
      });
    } catch (error) {
      throw toTokenError(error);
    }
    const claims = result.payload;
    // jose only checks iat's type; a token "issued" in the future is as suspect as one that
    // is not yet valid (RFC 7519 §4.1.6), so it gets the same leeway and the same code.
    if (typeof claims.iat === 'number' && claims.iat > Math.floor(now.getTime() / 1000) + this.#toleranceSeconds) {
      throw new GatehouseTokenError('TOKEN_NOT_YET_VALID', { detail: 'iat is in the future' });
    }
    if (claims.scope !== undefined && typeof claims.scope !== 'string') {
      throw new GatehouseTokenError('TOKEN_MALFORMED', { detail: 'the scope claim is not a string' });
    }
    const scopes = claims.scope === undefined ? [] : parseScopeClaim(claims.scope);
    const required =
      options?.scopes === undefined || options.scopes.length === 0
        ? this.requiredScopes
        : [...this.requiredScopes, ...options.scopes];
    if (required.length > 0 && missingScopes(scopes, required).length > 0) {
      throw new GatehouseTokenError('TOKEN_INSUFFICIENT_SCOPE', { scopes: required });
    }
    return { claims, scopes, header: result.protectedHeader };
  }

  /**
   * Whether a verified token carries every one of `scopes`.
   *
   * @example
   * ```ts
   * if (verifier.hasScopes(request.gatehouse, ['orders:write'])) { ... }
   * ```
   */
  hasScopes(token: VerifiedToken, scopes: readonly string[]): boolean {
    return hasScopes(token, scopes);
  }

  // Passed to jwtVerify as the key resolver; an arrow field so it is allocated once, not
  // per call. jose calls it only after the alg allowlist check.
  readonly #resolveKey = (header: JWSHeaderParameters): CryptoKey | Promise<CryptoKey> => {
    const { kid, alg } = header;
    if (kid !== undefined && typeof kid !== 'string') {
      throw new GatehouseTokenError('TOKEN_MALFORMED', { detail: 'the kid header is not a string' });
    }
    return this.#keys.resolve(kid, alg as string);
  };
}

function validateIssuer(issuer: unknown): string {
  if (typeof issuer !== 'string' || !URL.canParse(issuer)) {
    throw new TypeError('createVerifier: "issuer" must be an absolute URL such as https://id.example.com/t/default');
  }
  const url = new URL(issuer);
  // OpenID Connect Discovery 1.0 §3 / RFC 8414 §2: the issuer has no query or fragment.
  if (url.search !== '' || url.hash !== '') {
    throw new TypeError('createVerifier: "issuer" must not have a query or fragment');
  }
  // The issuer is where keys come from; over plain http anyone on the path could serve
  // their own JWKS. Loopback is exempt for local development.
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new TypeError(
      `createVerifier: "issuer" must use https (plain http is accepted only for localhost, 127.0.0.1 and [::1]); got ${issuer}`,
    );
  }
  return issuer;
}

function validateAudience(audience: unknown): readonly string[] {
  const list: unknown[] = Array.isArray(audience) ? audience : [audience];
  if (list.length === 0 || list.some((entry) => typeof entry !== 'string' || entry === '')) {
    throw new TypeError('createVerifier: "audience" must be a non-empty string or a non-empty array of them');
  }
  return Object.freeze(list as string[]);
}

type SecondsOption = keyof typeof VERIFIER_DEFAULTS;

function seconds(options: VerifierOptions, name: SecondsOption): number {
  const value = options[name] ?? VERIFIER_DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`createVerifier: "${name}" must be a finite number of seconds >= 0`);
  }
  // A zero timeout would fail every fetch; it is never what anyone meant.
  if (name === 'fetchTimeoutSeconds' && value === 0) {
    throw new TypeError('createVerifier: "fetchTimeoutSeconds" must be greater than 0');
  }
  return value;
}

/** jose error codes and the catalogue code each one means for an access token. */
const JOSE_CODES: Readonly<Record<string, ErrorCode>> = {
  ERR_JOSE_ALG_NOT_ALLOWED: 'TOKEN_ALG_NOT_ALLOWED',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'TOKEN_SIGNATURE_INVALID',
  ERR_JWT_EXPIRED: 'TOKEN_EXPIRED',
};

/** Claims whose failed check has its own code; other claim failures are malformed tokens. */
const CLAIM_CODES: Readonly<Record<string, ErrorCode>> = {
  iss: 'TOKEN_ISSUER_MISMATCH',
  aud: 'TOKEN_AUDIENCE_MISMATCH',
  typ: 'TOKEN_TYPE_INVALID',
  nbf: 'TOKEN_NOT_YET_VALID',
};

/**
 * Translates a jose failure into the catalogue. jose's errors are matched on their stable
 * `code` and `claim` properties, never their messages.
 */
function toTokenError(error: unknown): GatehouseTokenError {
  if (error instanceof GatehouseTokenError) return error;
  const { code, claim, reason } = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    claim?: unknown;
    reason?: unknown;
  };
  let mapped: ErrorCode = 'TOKEN_MALFORMED';
  if (typeof code === 'string' && Object.hasOwn(JOSE_CODES, code)) {
    mapped = JOSE_CODES[code] ?? mapped;
  } else if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && typeof claim === 'string' && Object.hasOwn(CLAIM_CODES, claim)) {
    // A wrongly-typed nbf is malformed, not "not yet valid".
    if (!(claim === 'nbf' && reason !== 'check_failed')) mapped = CLAIM_CODES[claim] ?? mapped;
  }
  const detail = error instanceof Error ? error.message : undefined;
  return new GatehouseTokenError(mapped, detail === undefined ? { cause: error } : { detail, cause: error });
}
