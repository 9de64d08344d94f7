import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { adminRoutes } from '../admin/index.js';
import type { Core } from '../core.js';
import { GatehouseError } from '../errors.js';
import { clientAddress, trustFunction } from './client-ip.js';
import { registerJsonBodyParser } from './json-body.js';
import { createEngineHandler, interactionRoutes, oauthRoutes, requestIdOf, TEMPORARILY_UNAVAILABLE } from '../oauth/index.js';
import { isStoreUnavailable, STORE_RETRY_AFTER_SECONDS } from '../store/unavailable.js';

type Dispatch = (req: IncomingMessage, res: ServerResponse) => void;

declare module 'fastify' {
  interface FastifyInstance {
    /** The whole server's request handler (engine requests, then Fastify): what the HTTP server runs. */
    dispatch: Dispatch;
  }
}

/**
 * Assembles the HTTP server: operations endpoints, the OAuth engines per tenant, the admin API.
 * Engine requests under /t/ are dispatched before Fastify (see oauth/engine-handler.ts).
 */
export async function createApp(core: Core): Promise<FastifyInstance> {
  const { config } = core;
  const trustProxy = trustFunction(config.trustProxy);
  const engine = createEngineHandler({
    tenants: core.tenants,
    pool: core.pool,
    metrics: core.metrics,
    audit: core.audit,
    logger: core.logger,
    clock: core.clock,
    bodyLimit: config.bodyLimit,
    publicUrl: config.publicUrl,
    clientIp: (req) => clientAddress(req.socket?.remoteAddress ?? '', req.headers['x-forwarded-for'], trustProxy),
  });
  let dispatch: Dispatch | undefined;
  const app = Fastify({
    loggerInstance: core.logger.child({}, {
      // Never log credentials, even if a future log call passes request data through.
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', '*.client_secret', '*.password', '*.token'], censor: '[redacted]' },
    }),
    bodyLimit: config.bodyLimit,
    // Unknown fields are an error, not silently dropped: a typo must not look like success.
    ajv: { customOptions: { removeAdditional: false } },
    trustProxy,
    genReqId: requestIdOf,
    routerOptions: { maxParamLength: 200 },
    serverFactory: (fastifyHandler) => {
      // HSTS (RFC 6797 §7.1) whenever clients reach us over https; browsers ignore it over http.
      const hsts = new URL(config.publicUrl).protocol === 'https:';
      dispatch = (req, res) => {
        if (hsts) res.setHeader('strict-transport-security', 'max-age=31536000; includeSubDomains');
        return engine.accepts(req) ? engine.handle(req, res) : fastifyHandler(req, res);
      };
      return createServer(dispatch);
    },
  });
  app.decorate('dispatch', dispatch!);
  registerJsonBodyParser(app as unknown as FastifyInstance);
  app.log.level = config.logLevel;

  // Callback-style hooks: every request runs them, and an async hook costs a promise each time.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    done(null, payload);
  });

  app.setErrorHandler((error: FastifyError | GatehouseError, request, reply) => {
    if (isStoreUnavailable(error)) {
      // The database is unreachable: nothing was decided or written, so the caller may simply
      // retry; 503 with Retry-After (RFC 9110 §15.6.4, §10.2.3) instead of a 500.
      reply.header('retry-after', String(STORE_RETRY_AFTER_SECONDS));
      if (request.url.startsWith('/t/')) return reply.code(503).send(TEMPORARILY_UNAVAILABLE);
    }
    if (error instanceof GatehouseError) {
      return reply.code(error.status).send({ code: error.code, message: error.message, details: error.details ?? {} });
    }
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err: error }, 'unhandled error');
      return reply.code(500).send({ code: 'INTERNAL_ERROR', message: 'Internal server error', details: {} });
    }
    // Fastify's own 4xx: validation, body too large, bad JSON, unsupported media type…
    const code = error.validation ? 'REQUEST_INVALID' : status === 413 ? 'REQUEST_TOO_LARGE' : status === 415 ? 'REQUEST_UNSUPPORTED_MEDIA_TYPE' : 'REQUEST_MALFORMED';
    const isOAuth = request.url.startsWith('/t/');
    if (isOAuth) return reply.code(status).send({ error: 'invalid_request', error_description: error.message });
    return reply.code(status).send({ code, message: error.message, details: error.validation ? { validation: error.validation } : {} });
  });
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({ code: 'NOT_FOUND', message: `No route for ${request.method} ${request.url.split('?')[0]}`, details: {} });
  });

  // Operations: public by decision (liveness, readiness, metrics carry no tenant data).
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    try {
      await core.handle.db.selectFrom('gh_revision').select('value').executeTakeFirstOrThrow();
      return { status: 'ready', revision: core.feed.revision };
    } catch {
      return reply.code(503).send({ status: 'unavailable' });
    }
  });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', core.metrics.registry.contentType);
    return core.metrics.registry.metrics();
  });

  await app.register(oauthRoutes, {
    tenants: core.tenants,
    catalog: core.catalog,
    store: core.repos.oauth,
    engine,
    verifyAccessToken: core.verifyAccessToken,
    audit: core.audit,
    bodyLimit: config.bodyLimit,
    clock: core.clock,
  });
  await app.register(interactionRoutes, {
    tenants: core.tenants,
    catalog: core.catalog,
    pool: core.pool,
    accounts: core.accounts,
    audit: core.audit,
    csrfKey: core.csrfKey,
    clientIp: (request) => request.ip,
    clock: core.clock,
  });
  await app.register(async (api) => {
    await api.register(formbody);
    await api.register(adminRoutes, { core });
  }, { prefix: '/api/v1' });
  return app as unknown as FastifyInstance;
}
