/**
 * Fastify integration. The SDK depends on jose only, so nothing here imports fastify, not
 * even its types: the structural types below are the few members we touch, and Fastify 5's
 * `FastifyRequest` / `FastifyReply` / `FastifyInstance` satisfy them.
 */
import { createBearerAuthenticator, type BearerAuthOptions, type BearerRejection, type TokenVerifier } from './bearer.js';
import type { VerifiedToken } from './verifier.js';

/** The members of a Fastify request the hook reads and writes. */
export interface FastifyRequestLike {
  readonly headers: { readonly authorization?: string | string[] | undefined };
  /** Set by the hook to the verified token. */
  gatehouse?: VerifiedToken | null;
  readonly routeOptions?: { readonly config?: unknown };
}

/** The members of a Fastify reply the hook uses. */
export interface FastifyReplyLike {
  code(statusCode: number): unknown;
  header(name: string, value: string): unknown;
  send(payload?: unknown): unknown;
}

/** A Fastify `onRequest` / `preHandler` hook. */
export type FastifyAuthHook = (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>;

/** Options of {@link createFastifyAuth}. */
export type FastifyAuthOptions = BearerAuthOptions;

/**
 * Creates a Fastify hook that requires a valid Gatehouse access token. On success the
 * verified token is on `request.gatehouse`; otherwise the hook answers 401 (missing or
 * invalid token) or 403 (missing scope) with an RFC 6750 `WWW-Authenticate` challenge and
 * a JSON body `{ error, error_description }`, and the handler does not run.
 *
 * @example
 * ```ts
 * const requireOrdersRead = createFastifyAuth(verifier, { scopes: ['orders:read'] });
 * app.get('/orders', { preHandler: requireOrdersRead }, async (request) => {
 *   return listOrders(request.gatehouse.claims.sub);
 * });
 * ```
 */
export function createFastifyAuth(verifier: TokenVerifier, options: FastifyAuthOptions = {}): FastifyAuthHook {
  const authenticate = createBearerAuthenticator(verifier, options, 'createFastifyAuth');
  return async (request, reply) => {
    const outcome = await authenticate(request.headers.authorization);
    if (outcome.ok) {
      request.gatehouse = outcome.token;
      return undefined;
    }
    return sendRejection(reply, outcome.rejection);
  };
}

/** Options of the {@link gatehouseAuth} plugin. */
export interface GatehouseFastifyOptions extends BearerAuthOptions {
  readonly verifier: TokenVerifier;
}

/**
 * Per-route settings read by the {@link gatehouseAuth} plugin from `config.gatehouse`:
 * `{ scopes: [...] }` to require scopes, or `false` to make the route public.
 */
export type GatehouseRouteConfig = { readonly scopes?: readonly string[] } | false;

/** The members of a Fastify instance the plugin uses. */
export interface FastifyInstanceLike {
  decorateRequest(name: string, value: unknown): unknown;
  addHook(name: 'onRequest', hook: FastifyAuthHook): unknown;
}

/**
 * A Fastify plugin that protects every route of the context it is registered in: deny by
 * default. A route chooses its scopes with `config: { gatehouse: { scopes: [...] } }` or opts
 * out with `config: { gatehouse: false }`. It runs as an `onRequest` hook, before the body
 * is even parsed.
 *
 * @example
 * ```ts
 * await app.register(gatehouseAuth, { verifier });
 * app.get('/orders', { config: { gatehouse: { scopes: ['orders:read'] } } }, handler);
 * app.get('/health', { config: { gatehouse: false } }, () => 'ok');
 * ```
 */
export const gatehouseAuth = Object.assign(
  async function gatehouseAuth(fastify: FastifyInstanceLike, options: GatehouseFastifyOptions): Promise<void> {
    const { verifier, ...defaults } = options;
    const routeDefault = createFastifyAuth(verifier, defaults);
    // One hook per distinct route config, built (and validated) on the route's first request.
    const perRoute = new WeakMap<object, FastifyAuthHook | null>();

    const hookFor = (config: unknown): FastifyAuthHook | null => {
      if (typeof config !== 'object' || config === null || !('gatehouse' in config)) return routeDefault;
      const cached = perRoute.get(config);
      if (cached !== undefined) return cached;
      const setting = (config as { gatehouse: unknown }).gatehouse as GatehouseRouteConfig | undefined;
      const hook =
        setting === false
          ? null
          : setting === undefined
            ? routeDefault
            : createFastifyAuth(verifier, {
                ...defaults,
                scopes: [...(defaults.scopes ?? []), ...(setting.scopes ?? [])],
              });
      perRoute.set(config, hook);
      return hook;
    };

    // Fastify recommends declaring request decorations up front so every request object
    // has the same shape.
    fastify.decorateRequest('gatehouse', null);
    fastify.addHook('onRequest', async (request, reply) => {
      const hook = hookFor(request.routeOptions?.config);
      return hook === null ? undefined : hook(request, reply);
    });
  },
  {
    // What fastify-plugin sets: run in the registering context rather than an encapsulated
    // child, so the hook covers the caller's routes.
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'gatehouse-auth',
    [Symbol.for('plugin-meta')]: { name: 'gatehouse-auth', fastify: '5.x' },
  },
);

function sendRejection(reply: FastifyReplyLike, rejection: BearerRejection): FastifyReplyLike {
  reply.code(rejection.status);
  for (const [name, value] of Object.entries(rejection.headers)) reply.header(name, value);
  reply.send(rejection.body);
  // Fastify: an async hook that answers must return the reply, which is thenable and
  // settles once the response is written; the handler then does not run.
  return reply;
}
