import { parse as parseQuery } from 'node:querystring';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditWriter } from '../audit/index.js';
import type { TenantService } from '../tenants/index.js';
import { AccessTokenInvalid, looksLikeJwt, type AccessTokenVerifier } from './access-tokens.js';
import type { OAuthCatalog } from './catalog.js';
import { authenticateClient } from './client-auth.js';
import type { EngineHandler } from './engine-handler.js';
import type { OAuthStore } from './types.js';

export interface OAuthRoutesDeps {
  tenants: TenantService;
  catalog: OAuthCatalog;
  store: OAuthStore;
  engine: EngineHandler;
  verifyAccessToken: AccessTokenVerifier;
  audit: AuditWriter;
  bodyLimit: number;
  clock?: () => number;
}

type Form = Record<string, string | undefined>;

/**
 * Introspection (RFC 7662) and revocation (RFC 7009) of our JWT access tokens, which
 * oidc-provider cannot answer (it only handles tokens it stores). We read the body to see
 * which kind of token it is; opaque tokens are replayed into the engine. Every other
 * endpoint under /t/ is served by the engine handler (oauth/engine-handler.ts).
 */
export async function oauthRoutes(app: FastifyInstance, deps: OAuthRoutesDeps) {
  const clock = deps.clock ?? Date.now;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.bodyLimit }, (_request, body, done) => done(null, body));
  for (const endpoint of ['introspection', 'revocation'] as const) {
    app.post(`/t/:tenant/token/${endpoint}`, async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
      const tenantId = request.params.tenant;
      if (!(await deps.tenants.find(tenantId))) return reply.code(404).send({ error: 'not_found', error_description: 'unknown tenant' });
      const body = request.body instanceof Buffer ? request.body : Buffer.alloc(0);
      const form = parseForm(request, body);
      if (form && typeof form.token === 'string' && looksLikeJwt(form.token)) {
        return endpoint === 'introspection' ? introspect(request, reply, tenantId, form) : revoke(request, reply, tenantId, form);
      }
      reply.hijack();
      reply.raw.setHeader('x-request-id', String(request.id));
      await deps.engine.forwardToEngine(request.raw, reply.raw, tenantId, String(request.id), body);
    });
  }

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
    // Not authenticated: the client id is only what the caller claimed, never the actor.
    deps.audit.recordFailure({
      tenantId,
      time: clock(),
      actor: null,
      action: 'client.authentication_failed',
      target: action,
      result: 'failure',
      requestId: String(request.id),
      ip: request.ip,
      details: { reason: result.reason, ...(result.clientId ? { claimed_client_id: result.clientId } : {}) },
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
      // RFC 7662 §2.1: only the token's own client and its APIs' resource servers learn about it;
      // to anyone else it is as good as unknown.
      const allowed = await deps.catalog.mayIntrospect(tenantId, client.clientId, { clientId: claims.client_id, audiences: claims.aud });
      await deps.audit.recordDurable({
        tenantId,
        time: clock(),
        actor: client.clientId,
        action: 'token.introspected',
        target: String(claims.jti),
        result: allowed ? 'success' : 'failure',
        requestId: String(request.id),
        ip: request.ip,
        details: allowed ? { active: true } : { active: false, reason: 'not a resource server of the token\'s API' },
      });
      if (!allowed) return reply.send({ active: false });
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
      // The tenant's keys and the token's jti decide, not the public URL of the node that issued it.
      const { claims } = await deps.verifyAccessToken(tenantId, form.token!, { anyPublicUrl: true });
      // RFC 7009 §2.1: a client may only revoke tokens issued to it.
      if (claims.client_id === client.clientId) {
        await deps.store.revokeToken(tenantId, String(claims.jti), Number(claims.exp) * 1000);
        await deps.verifyAccessToken.forget(tenantId);
        await deps.audit.recordDurable({
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
