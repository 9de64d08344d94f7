/**
 * RFC 6750 bearer authentication shared by the Fastify hook and the Express middleware:
 * read the `Authorization` header, verify, and shape the 401/403 answer.
 */
import { GatehouseTokenError } from './errors.js';
import { validateScopes } from './scopes.js';
import type { VerifiedToken, VerifyOptions } from './verifier.js';

/** What the middleware needs from a verifier; {@link createVerifier} returns one. */
export interface TokenVerifier {
  readonly audience: readonly string[];
  verify(token: string, options?: VerifyOptions): Promise<VerifiedToken>;
}

/** Options shared by the Fastify hook and the Express middleware. */
export interface BearerAuthOptions {
  /** Scopes this route requires, on top of the verifier's `requiredScopes`. */
  readonly scopes?: readonly string[];
  /** `realm` of the `WWW-Authenticate` challenge. Default: the verifier's first audience. */
  readonly realm?: string;
}

/** The body of a rejection (RFC 6750 §3, RFC 6749 §5.2 field names). */
export interface BearerErrorBody {
  readonly error: string;
  readonly error_description: string;
}

/** A rejection ready to be written by any framework. */
export interface BearerRejection {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: BearerErrorBody;
  readonly error: GatehouseTokenError;
}

/** The result of authenticating one request. */
export type BearerOutcome =
  | { readonly ok: true; readonly token: VerifiedToken }
  | { readonly ok: false; readonly rejection: BearerRejection };

/** Authenticates one request from its `Authorization` header value. */
export type BearerAuthenticator = (authorization: string | string[] | undefined) => Promise<BearerOutcome>;

/** RFC 7235 §2.2 quoted-string content we are willing to put in a realm. */
const REALM = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;

/** RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Builds the request authenticator behind both middlewares. Options are checked once
 * here (misuse → TypeError) so a typo fails at boot, not on every request.
 */
export function createBearerAuthenticator(
  verifier: TokenVerifier,
  options: BearerAuthOptions = {},
  where = 'gatehouse auth',
): BearerAuthenticator {
  if (typeof verifier !== 'object' || verifier === null || typeof verifier.verify !== 'function') {
    throw new TypeError(`${where}: the first argument must be a verifier from createVerifier()`);
  }
  const scopes = validateScopes(options.scopes, where);
  const realm = options.realm ?? verifier.audience[0] ?? 'gatehouse';
  if (typeof realm !== 'string' || !REALM.test(realm)) {
    throw new TypeError(`${where}: "realm" must be printable ASCII without " or \\`);
  }
  const verifyOptions: VerifyOptions | undefined = scopes.length > 0 ? { scopes } : undefined;

  return async (authorization) => {
    try {
      const token = await verifier.verify(extractBearerToken(authorization), verifyOptions);
      return { ok: true, token };
    } catch (error) {
      if (!(error instanceof GatehouseTokenError)) throw error;
      return { ok: false, rejection: toRejection(error, realm) };
    }
  };
}

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1). The scheme is
 * case-insensitive (RFC 7235 §2.1). Another scheme counts as no bearer token at all.
 */
export function extractBearerToken(authorization: string | string[] | undefined): string {
  if (typeof authorization !== 'string') throw new GatehouseTokenError('TOKEN_MISSING');
  const value = authorization.trim();
  const space = value.indexOf(' ');
  const scheme = space === -1 ? value : value.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') throw new GatehouseTokenError('TOKEN_MISSING');
  const token = space === -1 ? '' : value.slice(space + 1).trimStart();
  if (!B64TOKEN.test(token)) {
    throw new GatehouseTokenError('TOKEN_MALFORMED', { detail: 'the Authorization header is not "Bearer <b64token>"' });
  }
  return token;
}

/**
 * The HTTP answer for a failed authentication.
 *
 * - RFC 6750 §3.1: a request without any token gets a bare challenge, no `error`.
 * - Other token problems: 401 with `error="invalid_token"`.
 * - Missing scope: 403 with `error="insufficient_scope"` and the `scope` needed (RFC 6750 §3).
 * - The verifier cannot reach the issuer: 5xx, no challenge; the client did nothing wrong,
 *   and a 401 would send it into a pointless token refresh.
 */
export function toRejection(error: GatehouseTokenError, realm: string): BearerRejection {
  const body: BearerErrorBody = { error: error.error, error_description: error.description };
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (error.status === 401 || error.status === 403) {
    const params = [`realm="${realm}"`];
    if (error.code !== 'TOKEN_MISSING') {
      params.push(`error="${error.error}"`, `error_description="${error.description}"`);
    }
    if (error.code === 'TOKEN_INSUFFICIENT_SCOPE' && error.scopes !== undefined && error.scopes.length > 0) {
      params.push(`scope="${error.scopes.join(' ')}"`);
    }
    headers['www-authenticate'] = `Bearer ${params.join(', ')}`;
  }
  return { status: error.status, headers, body, error };
}
