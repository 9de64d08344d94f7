/**
 * Express / Connect integration. Writes through the plain `node:http` response API
 * (`statusCode`, `setHeader`, `end`) so it works with Connect and bare `node:http` servers
 * as well as Express, and imports neither.
 */
import { createBearerAuthenticator, type BearerAuthOptions, type TokenVerifier } from './bearer.js';
import type { VerifiedToken } from './verifier.js';

/** The members of an Express / Connect / `node:http` request the middleware uses. */
export interface ConnectRequestLike {
  readonly headers: { readonly authorization?: string | string[] | undefined };
  /** Set by the middleware to the verified token. */
  gatehouse?: VerifiedToken;
}

/** The members of an Express / Connect / `node:http` response the middleware uses. */
export interface ConnectResponseLike {
  statusCode: number;
  readonly headersSent?: boolean;
  setHeader(name: string, value: string): unknown;
  end(chunk: string): unknown;
}

/** Connect's `next`. */
export type ConnectNext = (error?: unknown) => void;

/** A Connect / Express middleware. */
export type ConnectMiddleware = (request: ConnectRequestLike, response: ConnectResponseLike, next: ConnectNext) => void;

/** Options of {@link expressAuth}. */
export type ExpressAuthOptions = BearerAuthOptions;

/**
 * Creates Express / Connect middleware that requires a valid Gatehouse access token. On
 * success `req.gatehouse` holds the verified token and `next()` is called; otherwise it
 * answers 401 (missing or invalid token) or 403 (missing scope) with an RFC 6750
 * `WWW-Authenticate` challenge and a JSON body `{ error, error_description }`. Unexpected
 * errors go to `next(error)`.
 *
 * @example
 * ```ts
 * app.get('/orders', expressAuth(verifier, { scopes: ['orders:read'] }), (req, res) => {
 *   res.json(listOrders(req.gatehouse?.claims.sub));
 * });
 * ```
 */
export function expressAuth(verifier: TokenVerifier, options: ExpressAuthOptions = {}): ConnectMiddleware {
  const authenticate = createBearerAuthenticator(verifier, options, 'expressAuth');
  // Not an async function: Connect ignores returned promises, so errors are handed to next().
  return (request, response, next) => {
    authenticate(request.headers.authorization).then((outcome) => {
      if (outcome.ok) {
        request.gatehouse = outcome.token;
        next();
        return;
      }
      if (response.headersSent === true) return;
      const { status, headers, body } = outcome.rejection;
      response.statusCode = status;
      for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
      response.setHeader('content-type', 'application/json; charset=utf-8');
      response.end(JSON.stringify(body));
    }, next);
  };
}

declare global {
  // Express declares its request type in the global `Express` namespace precisely so that
  // middleware can add properties; this gives handlers a typed `req.gatehouse` without the
  // SDK importing express.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified Gatehouse access token, set by `expressAuth`. */
      gatehouse?: VerifiedToken;
    }
  }
}
