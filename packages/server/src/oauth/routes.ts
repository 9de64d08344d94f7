import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { parse as parseQuery } from 'node:querystring';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditWriter } from '../audit/index.js';
import type { Metrics } from '../http/metrics.js';
import type { TenantService } from '../tenants/index.js';
import { AccessTokenInvalid, looksLikeJwt, type AccessTokenVerifier } from './access-tokens.js';
import type { OAuthCatalog } from './catalog.js';
import { authenticateClient } from './client-auth.js';
import type { ForwardedRequest, ProviderPool } from './provider.js';
import type { OAuthStore } from './types.js';

export interface OAuthRoutesDeps {
  tenants: TenantService;
  pool: ProviderPool;
  catalog: OAuthCatalog;
  store: OAuthStore;
  verifyAccessToken: AccessTokenVerifier;
  audit: AuditWriter;
  metrics: Metrics;
  bodyLimit: number;
  publicUrl: string;
  clock?: () => number;
}

type Form = Record<string, string | undefined>;

/**
 * Mounts every tenant's OAuth/OIDC endpoints under `/t/{tenant}`, handing each request to
 * that tenant's oidc-provider. Introspection and revocation of our JWT access tokens are
 * answered here, because oidc-provider only handles tokens it stores.
 */
export async function oauthRoutes(app: FastifyInstance, deps: OAuthRoutesDeps) {
  const clock = deps.clock ?? Date.now;
  const publicHost = new URL(deps.publicUrl).host;
  const publicProto = new URL(deps.publicUrl).protocol.slice(0, -1);

  async function tenantOf(request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply): Promise<string | undefined> {
    const tenantId = request.params.tenant;
    if (await deps.tenants.find(tenantId)) return tenantId;
    void reply.code(404).send({ error: 'not_found', error_description: 'unknown tenant' });
    return undefined;
  }

  /** Hands the request to the tenant's oidc-provider, which reads the body itself. */
  async function forward(request: FastifyRequest, reply: FastifyReply, tenantId: string, body?: Buffer) {
    const prefix = `/t/${tenantId}`;
    const path = request.url.slice(prefix.length).split('?')[0] || '/';
    if (path === '/token') {
      const started = process.hrtime.bigint();
      reply.raw.once('finish', () => {
        deps.metrics.tokenDuration.observe({ status: String(reply.raw.statusCode) }, Number(process.hrtime.bigint() - started) / 1e9);
      });
    }
    const { handle: engine } = await deps.pool.get(tenantId);
    const forwarded = (body ? replay(request.raw, body) : request.raw) as ForwardedRequest;
    forwarded.originalUrl = request.url;
    forwarded.url = request.url.slice(prefix.length) || '/';
    forwarded.gatehouse = { requestId: String(request.id), ip: request.ip };
    // Endpoint URLs in discovery and redirects come from the configured public URL, never from
    // the caller's Host or X-Forwarded-* headers (host-header injection, cache poisoning), and
    // stay right behind a TLS-terminating proxy. The engine trusts exactly these headers.
    const headers = forwarded.headers;
    headers.host = publicHost;
    headers['x-forwarded-host'] = publicHost;
    headers['x-forwarded-proto'] = publicProto;
    headers['x-forwarded-for'] = undefined;
    reply.hijack();
    // Hijacked replies skip Fastify's hooks: carry the request id on the raw response.
    reply.raw.setHeader('x-request-id', String(request.id));
    engine(forwarded, reply.raw);
  }

  // Every endpoint but two: the body stays unread for oidc-provider to parse (it enforces its
  // own 56 KiB cap); a declared length over our limit is refused before anything is read.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    async function handle(request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) {
      const tenantId = await tenantOf(request, reply);
      if (!tenantId) return reply;
      if (Number(request.headers['content-length'] ?? 0) > deps.bodyLimit) {
        return reply.code(413).send({ error: 'invalid_request', error_description: 'request body too large' });
      }
      return forward(request, reply, tenantId);
    }
    scope.all('/t/:tenant', handle);
    scope.all('/t/:tenant/*', handle);
  });

  // Introspection and revocation: we read the body to see whether the token is one of our
  // JWTs (answered here) or an opaque token (replayed into oidc-provider).
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.bodyLimit }, (_request, body, done) => done(null, body));
    for (const endpoint of ['introspection', 'revocation'] as const) {
      scope.post(`/t/:tenant/token/${endpoint}`, async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
        const tenantId = await tenantOf(request, reply);
        if (!tenantId) return reply;
        const body = request.body instanceof Buffer ? request.body : Buffer.alloc(0);
        const form = parseForm(request, body);
        if (form && typeof form.token === 'string' && looksLikeJwt(form.token)) {
          return endpoint === 'introspection' ? introspect(request, reply, tenantId, form) : revoke(request, reply, tenantId, form);
        }
        return forward(request, reply, tenantId, body);
      });
    }
  });

  function parseForm(request: FastifyRequest, body: Buffer): Form | undefined {
    const type = String(request.headers['content-type'] ?? '');
    if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return undefined;
    const parsed = parseQuery(body.toString('utf8'));
    const form: Form = {};
    for (const [key, value] of Object.entries(parsed)) {
      // RFC 6749 §3.2: parameters must not be repeated; oidc-provider rejects them too.
      if (Array.isArray(value)) return undefined;
      form[key] = value;
    }
    return form;
  }

  async function clientOrReject(request: FastifyRequest, reply: FastifyReply, tenantId: string, form: Form, action: string) {
    const result = await authenticateClient(deps.catalog, tenantId, request.headers.authorization, form);
    if (result.ok) return result.client;
    deps.audit.record({
      tenantId,
      time: clock(),
      actor: result.clientId,
      action: 'client.authentication_failed',
      target: action,
      result: 'failure',
      requestId: String(request.id),
      ip: request.ip,
      details: { reason: result.reason },
    });
    // RFC 6749 §5.2: invalid_client with 401 and a WWW-Authenticate challenge; the reason stays internal.
    void reply
      .code(401)
      .header('www-authenticate', 'Basic realm="gatehouse"')
      .header('cache-control', 'no-store')
      .send({ error: 'invalid_client', error_description: 'client authentication failed' });
    return undefined;
  }

  async function introspect(request: FastifyRequest, reply: FastifyReply, tenantId: string, form: Form) {
    const client = await clientOrReject(request, reply, tenantId, form, 'introspection');
    if (!client) return reply;
    reply.header('cache-control', 'no-store');
    try {
      const { claims } = await deps.verifyAccessToken(tenantId, form.token!);
      deps.audit.record({
        tenantId,
        time: clock(),
        actor: client.clientId,
        action: 'token.introspected',
        target: String(claims.jti),
        result: 'success',
        requestId: String(request.id),
        ip: request.ip,
        details: { active: true },
      });
      // RFC 7662 §2.2
      return reply.send({
        active: true,
        iss: claims.iss,
        sub: claims.sub,
        aud: claims.aud,
        client_id: claims.client_id,
        scope: claims.scope,
        exp: claims.exp,
        iat: claims.iat,
        nbf: claims.nbf,
        jti: claims.jti,
        token_type: 'Bearer',
      });
    } catch (error) {
      if (!(error instanceof AccessTokenInvalid)) throw error;
      return reply.send({ active: false });
    }
  }

  async function revoke(request: FastifyRequest, reply: FastifyReply, tenantId: string, form: Form) {
    const client = await clientOrReject(request, reply, tenantId, form, 'revocation');
    if (!client) return reply;
    try {
      const { claims } = await deps.verifyAccessToken(tenantId, form.token!);
      // RFC 7009 §2.1: a client may only revoke tokens issued to it.
      if (claims.client_id === client.clientId) {
        await deps.store.revokeToken(tenantId, String(claims.jti), Number(claims.exp) * 1000);
        deps.audit.record({
          tenantId,
          time: clock(),
          actor: client.clientId,
          action: 'token.revoked',
          target: String(claims.jti),
          result: 'success',
          requestId: String(request.id),
          ip: request.ip,
        });
      }
    } catch (error) {
      if (!(error instanceof AccessTokenInvalid)) throw error;
      // RFC 7009 §2.2: an invalid token is not an error for the caller.
    }
    return reply.code(200).send();
  }

}

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
