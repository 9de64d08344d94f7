/**
 * The SDK's error catalogue. Every failure a caller can see carries one of these `code`s;
 * callers match on `code`, never on message text (the wording may change, codes do not).
 *
 * - `status` is the HTTP status the Fastify hook and Express middleware answer with.
 * - `error` is the OAuth error code: RFC 6750 §3.1 for token problems, RFC 6749 §4.1.2.1
 *   (`server_error`, `temporarily_unavailable`) when the verifier itself cannot work.
 * - `message` is for developers and logs.
 * - `description` is the public `error_description`. It is deliberately coarse: an
 *   authentication failure never tells the client which check failed (only "expired", which
 *   the client can read from `exp` anyway and needs in order to refresh). RFC 6750 §3 limits
 *   it to %x20-21 / %x23-5B / %x5D-7E, so no `"` or `\`.
 */
export const errorCatalogue = {
  TOKEN_MISSING: {
    status: 401,
    error: 'invalid_request',
    message: 'No bearer access token was presented',
    description: 'An access token is required.',
  },
  TOKEN_MALFORMED: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token is not a well-formed JWT or a claim has the wrong type',
    description: 'The access token is invalid.',
  },
  TOKEN_ALG_NOT_ALLOWED: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token alg is not in the verifier allowlist (none and HS* are never allowed)',
    description: 'The access token is invalid.',
  },
  TOKEN_KID_UNKNOWN: {
    status: 401,
    error: 'invalid_token',
    message: 'No key in the issuer JWKS matches the access token kid and alg',
    description: 'The access token is invalid.',
  },
  TOKEN_SIGNATURE_INVALID: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token signature does not verify',
    description: 'The access token is invalid.',
  },
  TOKEN_EXPIRED: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token exp is in the past, beyond the clock tolerance',
    description: 'The access token expired.',
  },
  TOKEN_NOT_YET_VALID: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token nbf or iat is in the future, beyond the clock tolerance',
    description: 'The access token is invalid.',
  },
  TOKEN_ISSUER_MISMATCH: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token iss is not the configured issuer',
    description: 'The access token is invalid.',
  },
  TOKEN_AUDIENCE_MISMATCH: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token aud does not contain a configured audience',
    description: 'The access token is invalid.',
  },
  TOKEN_TYPE_INVALID: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token typ header is not at+jwt (RFC 9068 §4)',
    description: 'The access token is invalid.',
  },
  TOKEN_INSUFFICIENT_SCOPE: {
    status: 403,
    error: 'insufficient_scope',
    message: 'The access token lacks a required scope',
    description: 'The access token lacks a required scope.',
  },
  DISCOVERY_FAILED: {
    status: 503,
    error: 'temporarily_unavailable',
    message: 'The issuer discovery document could not be fetched or is invalid',
    description: 'The access token cannot be verified right now.',
  },
  DISCOVERY_ISSUER_MISMATCH: {
    status: 500,
    error: 'server_error',
    message: 'The discovery document names another issuer than the configured one',
    description: 'The access token cannot be verified.',
  },
  JWKS_FETCH_FAILED: {
    status: 503,
    error: 'temporarily_unavailable',
    message: 'The issuer JWKS could not be fetched or is invalid',
    description: 'The access token cannot be verified right now.',
  },
} as const satisfies Record<string, ErrorEntry>;

/** One catalogue entry. */
export interface ErrorEntry {
  readonly status: number;
  readonly error: OAuthErrorCode;
  readonly message: string;
  readonly description: string;
}

/** OAuth `error` values the SDK answers with (RFC 6750 §3.1, RFC 6749 §4.1.2.1). */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'server_error'
  | 'temporarily_unavailable';

/** Every code of the catalogue. */
export type ErrorCode = keyof typeof errorCatalogue;

/** Extra facts attached to a {@link GatehouseTokenError}. */
export interface GatehouseTokenErrorOptions {
  /** Developer detail appended to the message; never token contents. */
  readonly detail?: string;
  /** The underlying error (a jose error, a fetch failure). */
  readonly cause?: unknown;
  /** For `TOKEN_INSUFFICIENT_SCOPE`: every scope the resource requires (RFC 6750 §3 `scope`). */
  readonly scopes?: readonly string[];
}

/**
 * The one error type `verify()` rejects with for untrusted input or an unreachable issuer.
 * Configuration mistakes throw `TypeError` at construction instead.
 *
 * @example
 * ```ts
 * try {
 *   await verifier.verify(token);
 * } catch (error) {
 *   if (error instanceof GatehouseTokenError && error.code === 'TOKEN_EXPIRED') {
 *     // ask the client to refresh
 *   }
 * }
 * ```
 */
export class GatehouseTokenError extends Error {
  override readonly name = 'GatehouseTokenError';
  readonly code: ErrorCode;
  /** HTTP status for this failure. */
  readonly status: number;
  /** OAuth `error` code for the response. */
  readonly error: OAuthErrorCode;
  /** Public `error_description`, safe to send to the client. */
  readonly description: string;
  /** Required scopes, set for `TOKEN_INSUFFICIENT_SCOPE`. */
  readonly scopes: readonly string[] | undefined;

  constructor(code: ErrorCode, options: GatehouseTokenErrorOptions = {}) {
    const entry: ErrorEntry = errorCatalogue[code];
    super(
      options.detail === undefined ? entry.message : `${entry.message}: ${options.detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.status = entry.status;
    this.error = entry.error;
    this.description = entry.description;
    this.scopes = options.scopes;
  }
}
