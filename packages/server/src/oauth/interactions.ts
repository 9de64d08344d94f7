import { createHmac, timingSafeEqual } from 'node:crypto';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { default as Provider, InteractionResults } from 'oidc-provider';
import type { AuditAction, AuditWriter } from '../audit/index.js';
import type { TenantService } from '../tenants/index.js';
import type { OAuthCatalog } from './catalog.js';
import { pageCsp, pageTenant, renderConsentPage, renderErrorPage, renderLoginPage, STYLESHEET, type PageTenant } from './pages.js';
import type { ProviderPool } from './provider.js';
import type { SignInAccounts } from './types.js';
import { isStoreUnavailable } from '../store/unavailable.js';

export interface InteractionRoutesDeps {
  tenants: TenantService;
  catalog: OAuthCatalog;
  pool: ProviderPool;
  accounts: SignInAccounts;
  audit: AuditWriter;
  /** HMAC key of the forms' CSRF tokens (derived from the master key). */
  csrfKey: Buffer;
  clientIp(request: FastifyRequest): string;
  clock?: () => number;
}

type Params = { tenant: string; uid: string };
type Form = { csrf?: string; email?: string; password?: string };
type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/** Said for every refused password sign-in, whatever the reason (no account enumeration). */
const INVALID = 'Invalid email or password.';

/**
 * The sign-in and consent pages oidc-provider sends people to (`/t/{t}/interaction/{uid}`).
 * Each form carries a CSRF token bound to the interaction, and the interaction itself is
 * bound to the browser by oidc-provider's interaction cookie (SameSite=Lax, HttpOnly), which
 * `interactionDetails` checks on every request.
 */
export async function interactionRoutes(app: FastifyInstance, deps: InteractionRoutesDeps) {
  const clock = deps.clock ?? Date.now;
  await app.register(formbody, { bodyLimit: 16 * 1024 });

  // The tenant's logo, from our own origin: the pages load nothing from anywhere else.
  app.get<{ Params: { tenant: string } }>('/t/:tenant/logo', async (request, reply) => {
    const logo = (await deps.tenants.find(request.params.tenant)) ? await deps.tenants.getLogo(request.params.tenant) : undefined;
    if (!logo) return reply.code(404).send({ code: 'NOT_FOUND', message: 'This tenant has no logo', details: {} });
    reply.header('cache-control', 'public, max-age=300');
    reply.header('content-security-policy', "default-src 'none'");
    return reply.type(logo.type).send(logo.data);
  });

  app.get('/assets/gatehouse.css', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=3600');
    return reply.type('text/css; charset=utf-8').send(STYLESHEET);
  });

  const csrfFor = (tenantId: string, uid: string) => createHmac('sha256', deps.csrfKey).update(`${tenantId}\u0000${uid}`).digest('base64url');
  function csrfValid(tenantId: string, uid: string, given: unknown): boolean {
    const expected = Buffer.from(csrfFor(tenantId, uid));
    const actual = Buffer.from(typeof given === 'string' ? given : '');
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  function audit(request: FastifyRequest, tenantId: string, action: AuditAction, actor: string | null, target: string | null, result: 'success' | 'failure', details?: Record<string, unknown>) {
    deps.audit.record({ tenantId, time: clock(), actor, action, target, result, requestId: String(request.id), ip: deps.clientIp(request), details: details ?? null });
  }
  /**
   * A failed sign-in: nobody is authenticated, so no actor; the target is the account tried
   * (user id, or an HMAC of the email) and repeats are counted per window, not written one by one.
   */
  function auditFailure(request: FastifyRequest, tenantId: string, action: 'login.failed' | 'login.rate_limited', account: string | null, clientId: string, details: Record<string, unknown>) {
    deps.audit.recordFailure({ tenantId, time: clock(), actor: null, action, target: account, result: 'failure', requestId: String(request.id), ip: deps.clientIp(request), details: { ...details, client_id: clientId } });
  }

  /** The interaction of this browser, or an error page when there is none (expired, another browser, forged uid). */
  async function load(request: FastifyRequest<{ Params: Params }>, reply: FastifyReply): Promise<{ provider: Provider; interaction: Interaction; branding: PageTenant } | undefined> {
    const { tenant, uid } = request.params;
    const record = await deps.tenants.find(tenant);
    if (!record) {
      await sendPage(reply, 404, renderErrorPage({ tenant: { name: tenant }, error: 'not_found', description: 'There is no such sign-in page.' }));
      return undefined;
    }
    const { provider } = await deps.pool.get(tenant);
    try {
      const interaction = await provider.interactionDetails(request.raw, reply.raw);
      if (interaction.uid !== uid) throw new Error('interaction of another page');
      return { provider, interaction, branding: pageTenant(record) };
    } catch (error) {
      // An unreachable database is not an expired sign-in: 503 through the error handler.
      if (isStoreUnavailable(error)) throw error;
      await sendPage(reply, 400, renderErrorPage({ tenant: pageTenant(record), error: 'invalid_request', description: 'This sign-in has expired or belongs to another browser. Go back to the application and start again.' }));
      return undefined;
    }
  }

  async function sendPage(reply: FastifyReply, status: number, html: string, formTargets?: string[]) {
    reply.header('content-security-policy', pageCsp(formTargets ?? []));
    reply.header('x-frame-options', 'DENY');
    reply.header('cache-control', 'no-store');
    return reply.code(status).type('text/html; charset=utf-8').send(html);
  }

  /** Where the sign-in may end: the origins of the application's redirect URIs. */
  async function clientFacts(tenantId: string, clientId: string) {
    const client = await deps.catalog.findClient(tenantId, clientId);
    const origins = (client?.redirectUris ?? []).flatMap((uri) => {
      const url = new URL(uri);
      return url.protocol === 'http:' || url.protocol === 'https:' ? [url.origin] : [url.protocol];
    });
    return { name: client?.name ?? clientId, origins, firstParty: client?.firstParty ?? false };
  }

  const paths = (tenant: string, uid: string) => {
    const base = `/t/${encodeURIComponent(tenant)}/interaction/${encodeURIComponent(uid)}`;
    return { login: `${base}/login`, consent: `${base}/consent`, abort: `${base}/abort` };
  };

  async function show(request: FastifyRequest<{ Params: Params }>, reply: FastifyReply, loaded: NonNullable<Awaited<ReturnType<typeof load>>>, extra: { email?: string; error?: string; status?: number } = {}) {
    const { tenant, uid } = request.params;
    const { interaction, branding } = loaded;
    const client = await clientFacts(tenant, String(interaction.params.client_id));
    const csrf = csrfFor(tenant, uid);
    const to = paths(tenant, uid);
    if (interaction.prompt.name === 'login') {
      const email = extra.email ?? (typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : undefined);
      return sendPage(reply, extra.status ?? 200, renderLoginPage({ tenant: branding, client: client.name, action: to.login, csrf, email, error: extra.error }), client.origins);
    }
    if (client.firstParty) {
      // The tenant's own application, even when it asks with prompt=consent: no screen, the grant is implied.
      return grantAndFinish(request, reply, loaded, 'first_party');
    }
    const details = interaction.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
    const scopes = [...(details.missingOIDCScope ?? []), ...Object.values(details.missingResourceScopes ?? {}).flat()];
    return sendPage(reply, 200, renderConsentPage({ tenant: branding, client: client.name, action: to.consent, abort: to.abort, csrf, scopes }), client.origins);
  }

  /**
   * Hands the outcome back to oidc-provider and sends the browser on (303: the next request is
   * a GET). What `provider.interactionResult` does, on the interaction this request already
   * loaded instead of reading it again.
   */
  async function finish(reply: FastifyReply, interaction: Interaction, result: InteractionResults, merge: boolean) {
    interaction.result = merge && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result;
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return reply.code(303).header('location', interaction.returnTo).send();
  }

  app.get<{ Params: Params }>('/t/:tenant/interaction/:uid', async (request, reply) => {
    const loaded = await load(request, reply);
    if (loaded) return show(request, reply, loaded);
    return reply;
  });

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/login', async (request, reply) => {
    const loaded = await load(request, reply);
    if (!loaded) return reply;
    const { tenant, uid } = request.params;
    const { interaction } = loaded;
    const clientId = String(interaction.params.client_id);
    if (!csrfValid(tenant, uid, request.body?.csrf)) {
      auditFailure(request, tenant, 'login.failed', null, clientId, { reason: 'csrf' });
      return sendPage(reply, 403, renderErrorPage({ tenant: loaded.branding, error: 'invalid_request', description: 'This form has expired. Go back to the application and sign in again.' }));
    }
    if (interaction.prompt.name !== 'login') return show(request, reply, loaded);
    const email = String(request.body?.email ?? '').trim();
    const password = String(request.body?.password ?? '');
    if (!email || !password) return show(request, reply, loaded, { email, error: 'Enter your email and password.', status: 400 });
    // The sign-in's time is when its password check began: a password reset after that moment
    // (while the check runs) ends this sign-in too (SignInAccounts.find).
    const attemptedAt = clock();
    const outcome = await deps.accounts.authenticate({ tenantId: tenant, email, password, ip: deps.clientIp(request) });
    if (!outcome.ok) {
      if (outcome.reason === 'rate_limited') {
        auditFailure(request, tenant, 'login.rate_limited', outcome.account, clientId, { reason: 'rate_limited', retry_after: outcome.retryAfterSeconds });
        reply.header('retry-after', String(outcome.retryAfterSeconds));
        return show(request, reply, loaded, { email, status: 429, error: `Too many attempts. Try again in ${Math.ceil(outcome.retryAfterSeconds / 60)} minute(s).` });
      }
      // The reason stays in the audit trail; the person reads the same sentence whatever it is.
      auditFailure(request, tenant, 'login.failed', outcome.account, clientId, { reason: outcome.reason });
      if (outcome.locked) auditFailure(request, tenant, 'login.rate_limited', outcome.account, clientId, { reason: 'locked', locked: outcome.locked });
      return show(request, reply, loaded, { email, error: INVALID, status: 401 });
    }
    audit(request, tenant, 'login.succeeded', outcome.accountId, clientId, 'success', { amr: ['pwd'] });
    return finish(reply, interaction, { login: { accountId: outcome.accountId, amr: ['pwd'], acr: 'urn:gatehouse:loa:1', ts: Math.floor(attemptedAt / 1000) } }, false);
  });

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/consent', async (request, reply) => {
    const loaded = await load(request, reply);
    if (!loaded) return reply;
    const { tenant, uid } = request.params;
    const { interaction } = loaded;
    if (!csrfValid(tenant, uid, request.body?.csrf) || interaction.prompt.name !== 'consent' || !interaction.session?.accountId) {
      return sendPage(reply, 403, renderErrorPage({ tenant: loaded.branding, error: 'invalid_request', description: 'This form has expired. Go back to the application and try again.' }));
    }
    return grantAndFinish(request, reply, loaded, 'consent');
  });

  /** Records the consent (what the application asked for and did not have yet) and resumes the sign-in. */
  async function grantAndFinish(request: FastifyRequest<{ Params: Params }>, reply: FastifyReply, loaded: NonNullable<Awaited<ReturnType<typeof load>>>, how: 'consent' | 'first_party') {
    const { provider, interaction } = loaded;
    const clientId = String(interaction.params.client_id);
    const accountId = interaction.session!.accountId;
    const grant = (interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined) ?? (await newGrant(provider, accountId, clientId));
    const details = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    audit(request, request.params.tenant, 'consent.granted', accountId, clientId, 'success', { how, scopes: details.missingOIDCScope ?? [], resources: details.missingResourceScopes ?? {} });
    return finish(reply, interaction, { consent: { grantId } }, true);
  }

  /** A grant made with its client: the client's own refresh lifetime may set how long it lives. */
  async function newGrant(provider: Provider, accountId: string, clientId: string) {
    const grant = new provider.Grant({ accountId, clientId });
    const client = await provider.Client.find(clientId);
    if (client) grant.client = client;
    return grant;
  }

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/abort', async (request, reply) => {
    const loaded = await load(request, reply);
    if (!loaded) return reply;
    const { tenant, uid } = request.params;
    if (!csrfValid(tenant, uid, request.body?.csrf)) {
      return sendPage(reply, 403, renderErrorPage({ tenant: loaded.branding, error: 'invalid_request', description: 'This form has expired. Go back to the application and try again.' }));
    }
    const clientId = String(loaded.interaction.params.client_id);
    audit(request, tenant, 'consent.denied', loaded.interaction.session?.accountId ?? null, clientId, 'failure');
    return finish(reply, loaded.interaction, { error: 'access_denied', error_description: 'The person did not allow access' }, false);
  });
}
