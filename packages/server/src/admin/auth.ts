import { decodeJwt } from 'jose';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ADMIN_API, TENANT_API, type Core } from '../core.js';
import { AccessTokenInvalid, type VerifiedAccessToken } from '../oauth/index.js';
import { DEFAULT_TENANT } from '../tenants/index.js';

/** Scopes of the built-in gatehouse-admin API; `admin` grants every call. */
export type AdminScope = (typeof ADMIN_API.scopes)[number];
/** Scopes of every tenant's built-in gatehouse-tenant API; nothing grants them all. */
export type TenantScope = (typeof TENANT_API.scopes)[number];
const ADMIN_SCOPES: ReadonlySet<string> = new Set(ADMIN_API.scopes);
const TENANT_SCOPES: ReadonlySet<string> = new Set(TENANT_API.scopes);

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who called: `tenant` is set for a gatehouse-tenant token, which acts on that tenant
     * only; unset for the operator's gatehouse-admin token, which acts on every tenant.
     */
    admin?: { actor: string; claims: VerifiedAccessToken['claims']; tenant?: string; scopes: ReadonlySet<string> };
  }
}

const REALM = 'gatehouse-admin';

/**
 * The admin API is protected by Gatehouse itself. The operator's token: a token of the
 * default tenant for the built-in `urn:gatehouse:admin` API, on every tenant. A tenant's
 * token: a token of tenant T for T's built-in `urn:gatehouse:tenant` API, on routes under
 * /tenants/T only, with that API's scopes. No token or an invalid one → 401 (RFC 6750 §3); a
 * valid token of another tenant, another API or without the scope → 403.
 */
export function createAdminGuard(core: Core) {
  function deny(request: FastifyRequest, reply: FastifyReply, status: 401 | 403, challenge: string, message: string, reason: string) {
    // A 401 has no actor (request.admin is set only once a token verified); repeats are counted per window.
    core.audit.recordFailure({
      tenantId: DEFAULT_TENANT,
      time: core.clock(),
      actor: request.admin?.actor ?? null,
      action: 'admin.authentication_failed',
      target: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`,
      result: 'failure',
      requestId: String(request.id),
      ip: request.ip,
      details: { status, reason },
    });
    return reply
      .code(status)
      .header('www-authenticate', `Bearer realm="${REALM}"${challenge}`)
      .send({ code: status === 401 ? 'ADMIN_UNAUTHENTICATED' : 'ADMIN_FORBIDDEN', message, details: {} });
  }

  /** Which tenant issued a token already verified here: decoding it again would cost more than the call it guards. */
  const issuers = new Map<string, string>();
  const scopesOf = new WeakMap<VerifiedAccessToken, Set<string>>();

  async function verify(token: string): Promise<VerifiedAccessToken> {
    const issuer = unverifiedIssuer(token);
    const tenantId = typeof issuer === 'string' ? core.tenants.tenantOfIssuer(issuer) : undefined;
    if (!tenantId || !(await core.tenants.find(tenantId))) throw new AccessTokenInvalid('unknown issuer');
    const verified = await core.verifyAccessToken(tenantId, token);
    if (issuers.size >= 10_000) issuers.clear();
    issuers.set(token, tenantId);
    return verified;
  }

  /**
   * Why a verified token's client no longer stands behind it, or undefined when it does: the
   * client was deleted, or its tokens were revoked after this one was issued (revoke-tokens,
   * a secret rotated without grace). The catalog caches clients, and every node drops its
   * copy when the change feed reports a write to them, so this costs no query per call.
   */
  async function clientWithdrawn({ tenantId, claims }: VerifiedAccessToken): Promise<string | undefined> {
    if (typeof claims.client_id !== 'string') return 'no client';
    const client = await core.catalog.findClient(tenantId, claims.client_id);
    if (!client) return 'client deleted';
    const issuedAt = Number(claims.iat);
    // Older than the client itself: a token of a deleted client whose id was given out again.
    if (!(issuedAt >= Math.floor(client.createdAt / 1000))) return 'client recreated';
    // iat has whole seconds (RFC 7519 §4.1.6), so a token of the revocation's own second may
    // predate it: fail closed, it ends too (the client asks for a new one a second later).
    if (client.tokensValidAfter !== null && issuedAt <= Math.floor(client.tokensValidAfter / 1000)) return 'client tokens revoked';
    return undefined;
  }

  /** The tenant's urn:gatehouse:tenant is Gatehouse's own, not an API someone named so before it existed. */
  async function builtinTenantApi(tenantId: string): Promise<boolean> {
    return (await core.catalog.apiByIdentifier(tenantId, TENANT_API.identifier))?.builtin === true;
  }

  /**
   * A guard that lets through the operator's tokens carrying `admin` or any of the
   * gatehouse-admin scopes in `accepted`, and a tenant's tokens carrying any of the
   * gatehouse-tenant scopes in `accepted` on that tenant's routes. A route that lists no
   * gatehouse-tenant scope is the operator's alone.
   */
  return function requireScope(...accepted: (AdminScope | TenantScope)[]) {
    return Object.assign(async function adminGuard(request: FastifyRequest, reply: FastifyReply) {
      const header = request.headers.authorization;
      const match = header ? /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header) : null;
      if (!match) return deny(request, reply, 401, '', 'A bearer token for the gatehouse-admin API is required', 'missing');
      const token = match[1]!;
      const issuer = issuers.get(token);
      // The verifier's memory answers without waiting when it can (same keys, not expired, not revoked).
      let verified = issuer === undefined ? undefined : core.verifyAccessToken.cached(issuer, token);
      if (!verified) {
        try {
          verified = await verify(token);
        } catch (error) {
          if (!(error instanceof AccessTokenInvalid)) throw error;
          // An expired token is the one a script meets every few minutes: say so, and what to do.
          if (error.reason === 'ERR_JWT_EXPIRED') return deny(request, reply, 401, ', error="invalid_token", error_description="the access token expired"', 'The access token expired: get a new one from the token endpoint', error.reason);
          return deny(request, reply, 401, ', error="invalid_token"', 'The access token is invalid', error.reason);
        }
      }
      const withdrawn = await clientWithdrawn(verified);
      if (withdrawn) return deny(request, reply, 401, ', error="invalid_token"', 'The access token is invalid', withdrawn);
      const { claims, tenantId } = verified;
      let scopes = scopesOf.get(verified);
      if (!scopes) scopesOf.set(verified, (scopes = new Set(String(claims.scope ?? '').split(' '))));
      const actor = String(claims.client_id ?? claims.sub);
      const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (tenantId === DEFAULT_TENANT && audiences.includes(ADMIN_API.identifier)) {
        request.admin = { actor, claims, scopes };
        if (scopes.has('admin') || accepted.some((s) => ADMIN_SCOPES.has(s) && scopes.has(s))) return;
        const wanted = accepted.filter((s) => ADMIN_SCOPES.has(s));
        return deny(request, reply, 403, `, error="insufficient_scope", scope="${wanted[0] ?? 'admin'}"`, `This call needs the ${wanted.length > 0 ? wanted.join(' or ') : 'admin'} scope`, 'scope');
      }
      // Not in the default tenant: its clients include the operator's, which no tenant token may touch.
      if (tenantId !== DEFAULT_TENANT && audiences.includes(TENANT_API.identifier) && (await builtinTenantApi(tenantId))) {
        request.admin = { actor, claims, tenant: tenantId, scopes };
        const wanted = accepted.filter((s) => TENANT_SCOPES.has(s));
        // Params are routed before onRequest; unvalidated yet, but only equality is asked of them.
        const routeTenant = (request.params as { tenant?: unknown } | undefined)?.tenant;
        if (wanted.length === 0) return deny(request, reply, 403, ', error="insufficient_scope"', 'This call is the operator\'s: it needs a gatehouse-admin token of the default tenant', 'operator only');
        if (routeTenant !== tenantId) return deny(request, reply, 403, ', error="insufficient_scope"', 'A gatehouse-tenant token acts on its own tenant only', 'other tenant');
        if (wanted.some((s) => scopes.has(s))) return;
        return deny(request, reply, 403, `, error="insufficient_scope", scope="${wanted[0]}"`, `This call needs the ${wanted.join(' or ')} scope`, 'scope');
      }
      request.admin = { actor, claims, scopes };
      return deny(request, reply, 403, ', error="insufficient_scope"', 'This token is not for the gatehouse-admin or gatehouse-tenant API', tenantId !== DEFAULT_TENANT ? 'other tenant' : 'other audience');
    }, { [ACCEPTED]: accepted });
  };
}

const ACCEPTED = Symbol('gatehouse accepted scopes');

/**
 * The OpenAPI security requirement of a route, from the guard it runs: what the guard lets
 * through is what the document says, by construction. Each entry is an alternative: the
 * operator's `admin` (which grants every call) or one of the admin scopes the guard accepts,
 * or one of the tenant scopes it accepts. A route without the guard is public (`[]`).
 */
export function securityOf(onRequest: unknown): Record<string, string[]>[] {
  const guard = [onRequest].flat().find((hook): hook is { [ACCEPTED]: string[] } => typeof hook === 'function' && ACCEPTED in hook);
  if (!guard) return [];
  const accepted = guard[ACCEPTED];
  const admin = [...new Set(['admin', ...accepted.filter((s) => ADMIN_SCOPES.has(s))])];
  return [...admin.map((s) => ({ gatehouseAdmin: [s] })), ...accepted.filter((s) => TENANT_SCOPES.has(s)).map((s) => ({ gatehouseTenant: [s] }))];
}

/** Only to pick which tenant's keys to verify with; nothing is trusted before verification. */
function unverifiedIssuer(token: string): unknown {
  try {
    return decodeJwt(token).iss;
  } catch {
    throw new AccessTokenInvalid('malformed');
  }
}
