import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { AuditWriter } from '../audit/index.js';
import type { Metrics } from '../http/metrics.js';
import { pageCsp } from './pages.js';
import type { TenantService } from '../tenants/index.js';
import { isStoreUnavailable, STORE_RETRY_AFTER_SECONDS } from '../store/unavailable.js';
import { TEMPORARILY_UNAVAILABLE, type ForwardedRequest, type ProviderPool } from './provider.js';

export interface EngineHandlerDeps {
  tenants: TenantService;
  pool: ProviderPool;
  metrics: Metrics;
  audit: AuditWriter;
  logger: Logger;
  bodyLimit: number;
  publicUrl: string;
  /** How the client address is read (Fastify's trustProxy decision, applied here too). */
  clientIp(req: IncomingMessage): string;
  clock?: () => number;
}

// A caller-supplied request id is reused only if it is short and plain (log injection).
const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;
const TENANT_PATH = /^\/t\/([^/?#]+)(\/[^?#]*)?/;
// Endpoints whose POST body we read ourselves (JWT introspection and revocation): Fastify routes.
const OWN_ENDPOINTS = /^\/t\/[^/?#]+\/token\/(?:introspection|revocation)(?:[?#]|$)/;
// Our sign-in and consent pages and the tenant's logo (oauth/interactions.ts): Fastify routes.
const OWN_PAGES = /^\/t\/[^/?#]+\/(?:interaction\/|logo(?:[?#]|$))/;
/**
 * The other places a client looks for a tenant's metadata. RFC 8414 §3.1 inserts the
 * well-known segment between the host and the issuer's path (`/.well-known/oauth-authorization-server/t/{t}`;
 * oauth4webapi and Authlib look there), and some clients do the same for OpenID Connect
 * (`/.well-known/openid-configuration/t/{t}`); others append `oauth-authorization-server` to
 * the issuer. All of them get the engine's discovery document: its metadata is RFC 8414's
 * plus OpenID's (RFC 8414 §2 lets it carry more), and its `issuer` is the tenant's, which
 * both specs have the client compare (RFC 8414 §3.3, OIDC Discovery §4.3).
 */
const METADATA_ALIAS = /^(?:\/\.well-known\/(?:oauth-authorization-server|openid-configuration)(\/t\/[^/?#]+)|(\/t\/[^/?#]+)\/\.well-known\/oauth-authorization-server)(?=[?#]|$)/;

/** The engine's discovery path for a metadata request at another well-known location, else undefined. */
function discoveryPathOf(url: string): string | undefined {
  const match = METADATA_ALIAS.exec(url);
  if (!match) return undefined;
  return `${match[1] ?? match[2]}/.well-known/openid-configuration${url.slice(match[0].length)}`;
}
// The engine's pages run one script of their own: oidc-provider's "Submitting Callback" form,
// which submits itself (form_post responses, session/end when nobody is signed in, the device
// link with its code in it; lib/response_modes/form_post.js). Its <noscript> button never shows
// while JavaScript is on, so a blocked script leaves a blank page. oidc-provider appends the
// script's hash to script-src (lib/helpers/script_src_sha.js), but only to a script-src that
// is already there: ours starts with the hash of the empty script, which admits no code. Not
// 'none' (browsers drop it, with a warning, once a hash joins it), 'self' or 'unsafe-inline'. No
// form-action: that form, and the logout confirmation, end at the application's redirect or
// post-logout URI, which only the engine knows (see pageCsp).
const ENGINE_CSP = `${pageCsp()}; script-src 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='`;

export const requestIdOf = (req: IncomingMessage): string => {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
};

/**
 * The OAuth/OIDC engine requests of every tenant (`/t/{tenant}/…`), served straight from
 * node:http into the tenant's oidc-provider. They skip Fastify: the engine is a complete
 * Koa application with its own parsing and errors, and Fastify's per-request lifecycle in
 * front of it cost about a tenth of token-endpoint throughput (measured with
 * `npm run bench:tokens`). Everything else, including the two endpoints we answer
 * ourselves, goes through Fastify.
 */
export function createEngineHandler(deps: EngineHandlerDeps) {
  const publicHost = new URL(deps.publicUrl).host;
  const publicProto = new URL(deps.publicUrl).protocol.slice(0, -1);
  const logRequests = () => deps.logger.isLevelEnabled('info');
  const clock = deps.clock ?? Date.now;
  const isTokenEndpoint = (rest: string) => rest === '/token' || rest.startsWith('/token?');

  function reject(res: ServerResponse, status: number, error: string, description: string) {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify({ error, error_description: description }));
  }

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string, served: { tenantId?: string }): Promise<void> {
    const match = TENANT_PATH.exec(req.url!)!;
    let tenantId: string;
    try {
      tenantId = decodeURIComponent(match[1]!);
    } catch {
      return reject(res, 404, 'not_found', 'unknown tenant');
    }
    if (!(await deps.tenants.find(tenantId))) return reject(res, 404, 'not_found', 'unknown tenant');
    served.tenantId = tenantId;
    // oidc-provider reads the body itself (56 KiB cap); a declared length over ours is refused unread.
    if (Number(req.headers['content-length'] ?? 0) > deps.bodyLimit) return reject(res, 413, 'invalid_request', 'request body too large');
    await forwardToEngine(req, res, tenantId, requestId);
  }

  /** Hands a request to the tenant's oidc-provider; `body` replays a body that was already read. */
  async function forwardToEngine(req: IncomingMessage, res: ServerResponse, tenantId: string, requestId: string, body?: Buffer): Promise<void> {
    const prefix = `/t/${tenantId}`;
    const url = req.url!;
    const rest = url.slice(prefix.length) || '/';
    if (isTokenEndpoint(rest)) {
      const started = process.hrtime.bigint();
      res.once('finish', () => deps.metrics.tokenDuration.observe({ status: String(res.statusCode) }, Number(process.hrtime.bigint() - started) / 1e9));
    }
    const { handle: engine } = await deps.pool.get(tenantId);
    const forwarded = (body ? replay(req, body) : req) as ForwardedRequest;
    forwarded.gatehouse = { requestId, ip: deps.clientIp(req) };
    forwarded.originalUrl = url;
    forwarded.url = rest;
    // Endpoint URLs in discovery and redirects come from the configured public URL, never from
    // the caller's Host or X-Forwarded-* headers (host-header injection, cache poisoning), and
    // stay right behind a TLS-terminating proxy. The engine trusts exactly these headers.
    const headers = forwarded.headers;
    headers.host = publicHost;
    headers['x-forwarded-host'] = publicHost;
    headers['x-forwarded-proto'] = publicProto;
    headers['x-forwarded-for'] = undefined;
    engine(forwarded, res);
  }

  return {
    /** True for requests this handler serves (anything under /t/ but our own two endpoints and our pages). */
    accepts(req: IncomingMessage): boolean {
      const url = req.url ?? '';
      if (url.startsWith('/.well-known/')) return discoveryPathOf(url) !== undefined;
      return url.startsWith('/t/') && !(req.method === 'POST' && OWN_ENDPOINTS.test(url)) && !OWN_PAGES.test(url);
    },

    handle(req: IncomingMessage, res: ServerResponse): void {
      const alias = discoveryPathOf(req.url!);
      if (alias) req.url = alias;
      const requestId = requestIdOf(req);
      res.setHeader('x-request-id', requestId);
      res.setHeader('x-content-type-options', 'nosniff');
      // The engine's own pages (logout, errors) load nothing and run nothing but its one script.
      res.setHeader('content-security-policy', ENGINE_CSP);
      if (logRequests()) {
        const started = performance.now();
        const path = req.url!.split('?')[0];
        res.once('finish', () =>
          deps.logger.info({ reqId: requestId, req: { method: req.method, path }, res: { statusCode: res.statusCode }, responseTime: performance.now() - started }, 'request completed'),
        );
      }
      const served: { tenantId?: string } = {};
      handle(req, res, requestId, served).catch((err: unknown) => {
        if (isStoreUnavailable(err)) {
          // Finding the tenant or building its engine needed the database (logged once per outage by the store).
          if (res.headersSent) return void res.destroy();
          res.setHeader('retry-after', String(STORE_RETRY_AFTER_SECONDS));
          return reject(res, 503, TEMPORARILY_UNAVAILABLE.error, TEMPORARILY_UNAVAILABLE.error_description);
        }
        deps.logger.error({ err, reqId: requestId }, 'engine request failed');
        // A token request that failed before the engine answered (its engine could not be
        // built, the store failed): refused like any other, so audited and counted (the
        // engine's own 500s are, in provider.ts).
        if (served.tenantId !== undefined && isTokenEndpoint(req.url!.slice(`/t/${served.tenantId}`.length))) {
          deps.metrics.tokenErrors.inc({ error: 'server_error' });
          deps.audit.record({
            tenantId: served.tenantId,
            time: clock(),
            actor: null,
            action: 'token.denied',
            target: 'token',
            result: 'failure',
            requestId,
            ip: deps.clientIp(req),
            details: { error: 'server_error', reason: null, grant_type: null },
          });
        }
        if (!res.headersSent) reject(res, 500, 'server_error', 'internal server error');
        else res.destroy();
      });
    },

    forwardToEngine,
  };
}

export type EngineHandler = ReturnType<typeof createEngineHandler>;

/**
 * A stream that yields `body` again with the original request's line, headers and socket, so
 * oidc-provider reads the request as if it came straight off the wire (it warns about
 * pre-parsed bodies). A plain Readable: an IncomingMessage would pull on the real socket.
 */
function replay(original: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = new Readable({ read() {} }) as Readable & Record<string, unknown>;
  copy.push(body);
  copy.push(null);
  for (const key of ['method', 'url', 'headers', 'rawHeaders', 'httpVersion', 'httpVersionMajor', 'httpVersionMinor', 'socket'] as const) {
    copy[key] = original[key];
  }
  return copy as unknown as IncomingMessage;
}
