import { hkdfSync } from 'node:crypto';
import type { default as Provider, AdapterPayload, Configuration, KoaContextWithOIDC, errors as OidcErrors } from 'oidc-provider';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AuditAction, AuditEvent, AuditWriter } from '../audit/index.js';
import type { SigningAlg } from '../config/defaults.js';
import { ID_TOKEN_DEFAULT_ALG, type KeyService } from '../keys/index.js';
import type { Metrics } from '../http/metrics.js';
import { createAdapterFactory, digest } from './adapter.js';
import { basicClientId } from './client-auth.js';
import { engineContext } from './engine-context.js';
import { createGuardedFetch } from './outbound.js';
import type { OAuthCatalog } from './catalog.js';
import { type PageTenant, renderDeviceCodePage, renderDeviceConfirmPage, renderDeviceDonePage, renderErrorPage, renderLoggedOutPage, renderLogoutPage } from './pages.js';
import type { OAuthStore, SignInAccounts } from './types.js';
import { isStoreUnavailable, STORE_RETRY_AFTER_SECONDS } from '../store/unavailable.js';

/** The engine's answer while the database is unreachable (RFC 6749 §4.1.2.1 `temporarily_unavailable`). */
export const TEMPORARILY_UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable; retry later' } as const;
type EngineState = { storeUnavailable?: boolean; audit?: Promise<void> };

/** Request facts our Fastify layer attaches before handing a request to oidc-provider. */
export interface ForwardedRequest extends IncomingMessage {
  originalUrl?: string;
  gatehouse?: { requestId: string; ip: string };
}

export interface ProviderPoolDeps {
  catalog: OAuthCatalog;
  store: OAuthStore;
  keys: KeyService;
  audit: AuditWriter;
  metrics: Metrics;
  logger: Logger;
  masterKey: Buffer;
  issuerFor(tenantId: string): string;
  maxSize: number;
  defaultAccessTokenTtl: number;
  /** People who sign in: their claims, and the password check behind the login page. */
  accounts: SignInAccounts;
  /** Sign-in sessions: seconds without use, and seconds since sign-in, after which they end. */
  session: { idleSeconds: number; absoluteSeconds: number };
  /** Refresh token lifetimes when the client sets none. */
  refreshToken: { idleSeconds: number; absoluteSeconds: number };
  /** The tenant's name and logo, for the pages people see. */
  tenantPage(tenantId: string): Promise<PageTenant>;
  /**
   * RFC 8628 §5.1: guesses of device user codes are limited (identity's brute-force throttle):
   * take a slot before a lookup, give it back when the code existed.
   */
  userCodeGuesses(attempt: { tenantId: string; ip: string }): Promise<{ allowed: true; found(): Promise<void> } | { allowed: false; retryAfterSeconds: number; reason: string }>;
  /** Back-channel requests may reach private and loopback addresses (oidc-provider refuses them by default). */
  allowPrivateOutbound?: boolean;
  clock?: () => number;
}

export interface PoolEntry {
  provider: Provider;
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  validUntil: number;
}

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** Seconds between a device's polls (RFC 8628 §3.2 `interval`; 5 is the RFC's default). */
const DEVICE_POLL_INTERVAL = 5;
/** Seconds a device code lives (RFC 8628 §3.2: long enough to find a browser and type the code). */
const DEVICE_CODE_TTL = 600;

/** oidc-provider's reasons for a single-use credential presented again (and adapter.ts's). */
const REUSE_EVENTS = new Map<string, AuditAction>([
  ['refresh token already used', 'refresh_token.reused'],
  ['authorization code already consumed', 'authorization_code.reused'],
  ['device code already consumed', 'device_code.reused'],
]);

// oidc-provider's resume routes (`resume`, `device_resume`), relative to the tenant.
const RESUME_PATH = /^\/(?:auth|device)\/(?!auth$)[^/]+$/;

// OpenID Connect standard scopes: not API scopes, so never checked against an API's list.
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'address', 'phone', 'offline_access']);

/**
 * Whether the request signs a person in with OpenID Connect: `openid` among the scopes the
 * authorization request asked for, or that the code, refresh token or device code being
 * exchanged carries (a token request repeats no scope).
 */
function isOpenIdLogin(ctx: KoaContextWithOIDC): boolean {
  const { params, entities } = ctx.oidc;
  const scope = (params?.scope as string | undefined) ?? entities.AuthorizationCode?.scope ?? entities.RefreshToken?.scope ?? entities.DeviceCode?.scope ?? '';
  return scope.split(' ').includes('openid') && params?.grant_type !== 'client_credentials';
}

const FOR_AN_API = 'this access token is for an API (its login or grant named a resource): userinfo takes the access token of a login that named no resource';
/** The engine's detail of why userinfo refused a token, in words for the developer. */
const USERINFO_REFUSALS: Record<string, string> = {
  'token audience prevents accessing the userinfo endpoint': FOR_AN_API,
  'access token not found': 'the access token is unknown, expired or revoked',
};

/**
 * Userinfo says why it refused a token. The engine answers every invalid_token with one
 * generic line ("invalid token provided") and keeps the reason for its logs; RFC 6750 §3
 * meant error_description for the developer, and none of these reasons tells a caller
 * anything about a token it does not hold. The listener runs once the answer is written and
 * before it is sent: the body and the WWW-Authenticate challenge get the reason.
 */
function explainRefusedToken(ctx: KoaContextWithOIDC, error: OidcErrors.OIDCProviderError): void {
  const detail = (error as { error_detail?: string }).error_detail;
  if (error.error !== 'invalid_token' || !detail) return;
  // Access tokens for an API are JWTs, which the engine does not store: to its lookup they are "not found".
  const jwt = /^(?:Bearer|DPoP) [\w-]+\.[\w-]+\.[\w-]+$/i.test(ctx.get('authorization'));
  const why = detail === 'access token not found' && jwt ? FOR_AN_API : (USERINFO_REFUSALS[detail] ?? detail);
  if (typeof ctx.body === 'object' && ctx.body !== null) (ctx.body as { error_description?: string }).error_description = why;
  // One challenge per scheme (Bearer, and DPoP when it is on): a string, or an array of them.
  const challenge = ctx.response.get('WWW-Authenticate') as string | string[];
  const explain = (c: string) => c.replace(/error_description="[^"]*"/, `error_description="${why.replace(/["\\]/g, '')}"`);
  if (challenge) ctx.set('WWW-Authenticate', Array.isArray(challenge) ? challenge.map(explain) : explain(challenge));
}

/**
 * Seconds left: `idle` from `now`, but never past `absolute` counted from `since` (epoch
 * seconds). `since` and `now` must come from the same clock: ours, which also dates the rows'
 * expiry in the adapter.
 */
function remaining(idle: number, absolute: number, since: number | undefined, now: number): number {
  const untilAbsolute = since === undefined ? absolute : since + absolute - now;
  return Math.max(1, Math.min(idle, untilAbsolute));
}

/** A client's own refresh-token lifetimes (seconds; null: the server's), from our catalog. */
type OwnLifetimes = { refresh_token_idle_ttl?: number | null; refresh_token_absolute_ttl?: number | null };

/**
 * oidc-provider's prompts, with one more reason to ask for the password. The engine assumes
 * that a session's account exists; one that `findAccount` no longer gives (disabled, deleted,
 * or signed in before the last password change, as when a reset races the sign-in) is asked
 * to sign in again (`login_required` with prompt=none) instead of failing the request.
 */
function signInPolicy({ base, Check }: typeof import('oidc-provider').interactionPolicy) {
  const policy = base();
  policy
    .get('login')!
    .checks.add(
      new Check('account_gone', 'End-User authentication is required', (ctx) => (ctx.oidc.session?.accountId && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT)),
      0,
    );
  return policy;
}

/**
 * One oidc-provider instance per tenant, built on first use and kept in a bounded LRU.
 * An instance is rebuilt when its tenant's keys change (its key set is fixed at
 * construction) or when a previous key reaches its retirement time.
 */
export function createProviderPool(deps: ProviderPoolDeps) {
  const { catalog, keys, audit, metrics, logger, clock = Date.now } = deps;
  const nowSeconds = () => Math.floor(clock() / 1000);
  const entries = new Map<string, PoolEntry>();
  const guardedFetch = deps.allowPrivateOutbound ? undefined : createGuardedFetch();
  const building = new Map<string, Promise<PoolEntry>>();

  async function build(tenantId: string): Promise<PoolEntry> {
    // Loaded on first use: CLI commands that never serve OAuth do not pay for (or print the
    // runtime warning of) the engine.
    const { default: Provider, errors, interactionPolicy } = await import('oidc-provider');
    const keySet = await keys.keySet(tenantId);
    const signedForClients = Object.keys(keySet.signing) as SigningAlg[];
    // Cookie signing keys derived from the master key, distinct per tenant.
    const cookieKeys = [Buffer.from(hkdfSync('sha256', deps.masterKey, tenantId, 'gatehouse cookie keys', 32)).toString('base64url')];
    const tenantPath = new URL(deps.issuerFor(tenantId)).pathname;
    const tenantDisplay = await deps.tenantPage(tenantId);
    // Without `resource`: an OpenID login's access token is for userinfo (OIDC Core §5.3: the
    // login's token is what userinfo takes), whatever APIs the client may call; otherwise the
    // client's only API is the audience, and with several the client must say which one
    // (RFC 8707 §2).
    async function defaultResource(ctx: KoaContextWithOIDC) {
      if (isOpenIdLogin(ctx)) return undefined;
      const client = await catalog.findClient(tenantId, ctx.oidc.client!.clientId);
      const apis = Object.keys(client?.apiScopes ?? {});
      if (apis.length === 1) return apis[0]!;
      // A person signing in to an application that calls no API gets an ID token and an
      // access token for userinfo only; a machine client without an API has nothing to ask.
      if (apis.length === 0 && ctx.oidc.params?.grant_type !== 'client_credentials') return undefined;
      throw new errors.InvalidTarget(apis.length === 0 ? 'this client is not allowed to request tokens for any API' : 'this client may call several APIs: the resource parameter is required');
    }
    async function getResourceServerInfo(ctx: KoaContextWithOIDC, resourceIndicator: string, oidcClient: { clientId: string }) {
      const api = await catalog.apiByIdentifier(tenantId, resourceIndicator);
      if (!api) throw new errors.InvalidTarget('unknown resource');
      const client = await catalog.findClient(tenantId, oidcClient.clientId);
      const allowed = client?.apiScopes[api.identifier];
      if (!allowed) throw new errors.InvalidTarget('this client is not allowed to request tokens for this resource');
      const grantable = allowed.filter((s) => api.scopes.includes(s));
      if (ctx.oidc.params?.grant_type === 'client_credentials') {
        const params = ctx.oidc.params as { scope?: string };
        if (!params.scope) {
          // RFC 6749 §3.3: with no scope requested we issue the client's pre-approved scopes.
          params.scope = grantable.join(' ') || undefined;
        } else {
          for (const scope of params.scope.split(' ')) {
            if (!OIDC_SCOPES.has(scope) && !grantable.includes(scope)) throw new errors.InvalidScope(`scope "${scope}" is not allowed to this client for ${api.identifier}`, scope);
          }
        }
      }
      // The key of the very set this engine was built with: a rotation elsewhere in the
      // process (or the next read of the key service) must not name a kid this engine's
      // keystore does not hold. The previous key stays published until every token it
      // signed has expired, so signing with it until the engine is rebuilt is sound.
      const { active } = keySet;
      return {
        scope: grantable.join(' '),
        audience: api.identifier,
        accessTokenTTL: api.accessTokenTtl,
        accessTokenFormat: 'jwt' as const,
        jwt: { sign: { alg: active.alg, kid: active.kid } },
      };
    }
    /**
     * oidc-provider consumes a code or refresh token, then resolves the resource indicator and
     * asks getResourceServerInfo, so a request refused there (an unknown or no longer allowed
     * `resource`, RFC 8707 §2.2 invalid_target) has used the credential up, and the client's
     * corrected retry reads as reuse and revokes the grant. The adapter runs this just before
     * the consume: the same resolution as the engine's (lib/helpers/resolve_resource.js, with
     * useGrantedResource) and the same check, so whatever would refuse the request after the
     * consume refuses it before, and the credential stays valid.
     */
    async function checkTarget(ctx: KoaContextWithOIDC, _model: string, payload: AdapterPayload) {
      if (ctx.oidc?.route !== 'token' || !ctx.oidc.client) return;
      const granted = payload.resource as string | string[] | undefined;
      let resource: unknown = ctx.oidc.params?.resource ?? granted;
      if (Array.isArray(resource) && resource.length === 0) resource = undefined;
      if (Array.isArray(resource)) resource = await defaultResource(ctx);
      if (resource === undefined) return;
      if (typeof resource !== 'string') throw new errors.InvalidTarget('only a single resource indicator value must be requested/resolved during Access Token Request');
      if (!(Array.isArray(granted) ? granted : [granted]).includes(resource)) throw new errors.InvalidTarget();
      await getResourceServerInfo(ctx, resource, ctx.oidc.client);
    }
    /**
     * A JWT access token never reaches the adapter, so revoking its grant could not reach it:
     * each one issued under a grant (not client credentials) is recorded before it is handed
     * out, and revoking the grant or the account moves it to the revoked list (store).
     */
    async function recordIssued(_ctx: KoaContextWithOIDC, token: { grantId?: string; accountId?: string; clientId?: string }, jwt: { payload: Record<string, unknown> }) {
      if (!token.grantId) return;
      await deps.store.recordIssuedToken({
        tenantId,
        jti: String(jwt.payload.jti),
        grantId: token.grantId,
        accountId: token.accountId ?? null,
        clientId: String(token.clientId ?? jwt.payload.client_id),
        expiresAt: Number(jwt.payload.exp) * 1000,
      });
    }
    /** Too many wrong user codes from this address or in this tenant: 429 until the window ends. */
    class UserCodeGuessesExceeded extends errors.OIDCProviderError {
      constructor(readonly retryAfterSeconds: number) {
        super(429, 'too_many_requests');
        this.error_description = 'too many wrong codes; try again later';
      }
    }
    /** Counts the user codes people type at the device page; too many wrong ones get 429. */
    async function guardUserCode(ctx: KoaContextWithOIDC | undefined, lookup: () => Promise<boolean>) {
      // Only our routes reach the engine, and they always say who is calling: without that
      // there is no address to count, so no lookup (fail closed).
      const ip = ctx ? (ctx.req as ForwardedRequest).gatehouse?.ip : undefined;
      if (!ip) throw new errors.InvalidRequest('the client address is unknown');
      const admission = await deps.userCodeGuesses({ tenantId, ip });
      if (!admission.allowed) {
        audit.record({ tenantId, time: clock(), actor: null, action: 'device.user_code_rate_limited', target: admission.reason, result: 'failure', ...requestFacts(ctx!) });
        throw new UserCodeGuessesExceeded(admission.retryAfterSeconds);
      }
      if (await lookup()) await admission.found();
    }
    const configuration: Configuration = {
      adapter: createAdapterFactory(tenantId, deps.store, catalog, clock, { beforeConsume: checkTarget, guardUserCode }),
      jwks: { keys: keySet.privateJwks as NonNullable<Configuration['jwks']>['keys'] },
      // Cookie signing keys derived from the master key, distinct per tenant.
      clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
      // RFC 9700 §2.1.2: only the code flow; no implicit or hybrid response types.
      responseTypes: ['code'],
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: {
          enabled: true,
          // RFC 7662 §2.1: the token's own client, or a resource server of the token's API. A
          // refresh token is only ever its client's business. Others read active: false.
          async allowedPolicy(ctx, client, token) {
            const own = token.clientId === client.clientId;
            if (own || token.kind === 'RefreshToken') return own;
            return catalog.mayIntrospect(tenantId, client.clientId, { clientId: token.clientId, audiences: (token as { aud?: unknown }).aud });
          },
        },
        revocation: { enabled: true },
        userinfo: { enabled: true },
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: async (ctx, form) => {
            ctx.type = 'html';
            ctx.body = renderLogoutPage({ tenant: tenantDisplay, form });
          },
          postLogoutSuccessSource: async (ctx) => {
            ctx.type = 'html';
            ctx.body = renderLoggedOutPage({ tenant: tenantDisplay });
          },
        },
        backchannelLogout: { enabled: true },
        // RFC 8628: TVs and command lines show a code; the person signs in on another screen.
        deviceFlow: {
          enabled: true,
          charset: 'base-20',
          mask: '****-****',
          async userCodeInputSource(ctx, form, _out, err) {
            ctx.type = 'html';
            if (err instanceof UserCodeGuessesExceeded) ctx.set('Retry-After', String(err.retryAfterSeconds));
            const error = !err
              ? undefined
              : err instanceof UserCodeGuessesExceeded
                ? 'Too many codes were not right. Wait a few minutes, then try again.'
                : err.name === 'NoCodeError' || (err as { userCode?: string }).userCode
                  ? 'That code is not right, or it has expired. Check your device and try again.'
                  : 'The sign-in was interrupted. Start again on your device.';
            ctx.body = renderDeviceCodePage({ tenant: tenantDisplay, form, error });
          },
          async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
            ctx.type = 'html';
            ctx.body = renderDeviceConfirmPage({ tenant: tenantDisplay, client: client.clientName ?? client.clientId, userCode, form });
          },
          async successSource(ctx) {
            ctx.type = 'html';
            ctx.body = renderDeviceDonePage({ tenant: tenantDisplay, client: ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId ?? 'The device' });
          },
        },
        resourceIndicators: { enabled: true, defaultResource, useGrantedResource: () => true, getResourceServerInfo },
      },
      formats: { customizers: { jwt: recordIssued } },
      // Asymmetric algorithms only (architecture: no HS*, never none). What the tenant signs
      // for clients (ID tokens, userinfo and introspection JWTs) is what it holds keys for: its
      // default algorithm and RS256 (keys/service.ts); discovery lists exactly these.
      enabledJWA: {
        idTokenSigningAlgValues: signedForClients,
        userinfoSigningAlgValues: signedForClients,
        introspectionSigningAlgValues: signedForClients,
        authorizationSigningAlgValues: ['ES256', 'EdDSA', 'RS256', 'PS256'],
        requestObjectSigningAlgValues: ['ES256', 'EdDSA', 'RS256', 'PS256'],
        clientAuthSigningAlgValues: ['ES256', 'EdDSA', 'RS256', 'PS256'],
      },
      ttl: {
        // The API's own lifetime (default 600 s), chosen in getResourceServerInfo.
        ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? deps.defaultAccessTokenTtl,
        AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? deps.defaultAccessTokenTtl,
        // Codes are exchanged at once by the application's back end (RFC 9700 §2.1.1: short-lived).
        AuthorizationCode: 60,
        DeviceCode: DEVICE_CODE_TTL,
        IdToken: 3600,
        Interaction: 3600,
        // Idle since last use (the engine saves the session again, with this lifetime, at every
        // authorization request that carries it), and never past the absolute end counted from
        // the sign-in. loginTs is our clock's (the login result's `ts`, oauth/interactions.ts).
        Session: (_ctx, session) => remaining(deps.session.idleSeconds, deps.session.absoluteSeconds, session.loginTs, nowSeconds()),
        // Outlives the session and every refresh token of its client (a client may allow longer
        // than the server default). Grants are created with their client (interactions.ts).
        Grant: (_ctx, grant) =>
          Math.max(deps.session.absoluteSeconds, (grant.client?.metadata() as OwnLifetimes | undefined)?.refresh_token_absolute_ttl ?? deps.refreshToken.absoluteSeconds),
        RefreshToken(_ctx, token, client) {
          const own = client.metadata() as OwnLifetimes;
          const idle = own.refresh_token_idle_ttl ?? deps.refreshToken.idleSeconds;
          const absolute = own.refresh_token_absolute_ttl ?? deps.refreshToken.absoluteSeconds;
          // The absolute end counts from the sign-in (authTime, carried through every rotation),
          // as documented, and on our clock. Not iiat: the engine stamps it with its own clock,
          // and a chain started later through single sign-on would outlive the sign-in.
          return remaining(idle, absolute, token.authTime ?? token.iiat, nowSeconds());
        },
      },
      // Outgoing requests (back-channel logout) stay off private networks: oidc-provider's own
      // guard drops a connection only once it is open, ours resolves and checks the address
      // before connecting (oauth/outbound.ts). An operator may lift that for applications on a
      // private network.
      fetch: deps.allowPrivateOutbound
        ? (url: string | URL | Request, options?: RequestInit) => {
            const { dispatcher: _guard, ...rest } = (options ?? {}) as RequestInit & { dispatcher?: unknown };
            return fetch(url, rest);
          }
        : guardedFetch,
      // Our own client settings, carried to where oidc-provider decides synchronously (lifetimes).
      extraClientMetadata: { properties: ['first_party', 'refresh_token_idle_ttl', 'refresh_token_absolute_ttl'] },
      // RS256 for a client that registers no algorithm (OIDC Registration §2), as every client library assumes.
      clientDefaults: { id_token_signed_response_alg: ID_TOKEN_DEFAULT_ALG, grant_types: ['client_credentials'], response_types: [] },
      // A disabled or deleted person has no account: sessions, codes and refresh tokens stop
      // working; so do those of a sign-in older than the last password change. The time of the
      // sign-in is the token's (codes, refresh and device codes) or else the session's.
      async findAccount(ctx, sub, token) {
        const session = ctx.oidc?.session;
        const authTime = token && 'authTime' in token ? (token.authTime as number | undefined) : session?.accountId === sub ? session.authTime() : undefined;
        const claims = await deps.accounts.find(tenantId, sub, authTime);
        return claims && { accountId: sub, claims: () => ({ ...claims }) };
      },
      // The standard claims per scope (OIDC Core §5.4); API scopes are resource scopes.
      scopes: ['openid', 'offline_access', 'profile', 'email'],
      claims: {
        sid: null,
        iss: null,
        // How and when the person signed in: in every ID token (OIDC Core §2), not only on request.
        openid: ['sub', 'auth_time', 'acr', 'amr'],
        profile: ['name', 'given_name', 'family_name', 'picture', 'locale', 'updated_at'],
        email: ['email', 'email_verified'],
      },
      interactions: { url: (_ctx, interaction) => `${tenantPath}/interaction/${interaction.uid}`, policy: signInPolicy(interactionPolicy) },
      cookies: {
        keys: cookieKeys,
        // One sign-in per tenant: each tenant's cookies carry its name and the session cookie
        // is sent only under its issuer's path (RFC 6265 §5.1.4), so signing in to one tenant
        // neither replaces nor reveals another's session in the same browser. The interaction
        // cookies are scoped by the engine to their own interaction's path already.
        names: { session: `_session_${tenantId}`, interaction: `_interaction_${tenantId}`, resume: `_interaction_resume_${tenantId}` },
        // Secure whenever the public URL is https (the engine trusts only the proto we set).
        long: { httpOnly: true, sameSite: 'lax', path: tenantPath },
        short: { httpOnly: true, sameSite: 'lax' },
      },
      // Refresh tokens only for offline_access, and a new one at every use: presenting a used
      // one revokes the whole grant (oidc-provider's refresh_token grant does it).
      issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
      rotateRefreshToken: true,
      // First-party applications are the tenant's own: no consent screen, the grant is implied.
      async loadExistingGrant(ctx) {
        const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
        // A grant an admin took back is gone: third parties ask again, first parties get a new one.
        const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
        if (existing) return existing;
        const client = await catalog.findClient(tenantId, ctx.oidc.client!.clientId);
        if (!client?.firstParty || !ctx.oidc.session?.accountId) return undefined;
        const grant = new ctx.oidc.provider.Grant({ accountId: ctx.oidc.session.accountId });
        grant.client = ctx.oidc.client!;
        const requested = String(ctx.oidc.params?.scope ?? '');
        grant.addOIDCScope(requested.split(' ').filter((s) => OIDC_SCOPES.has(s)).join(' '));
        for (const [indicator, resource] of Object.entries(ctx.oidc.resourceServers ?? {})) grant.addResourceScope(indicator, resource.scope);
        await grant.save();
        return grant;
      },
      async renderError(ctx, out, error) {
        if (isStoreUnavailable(error)) out = TEMPORARILY_UNAVAILABLE;
        // A person's browser gets a page; an application gets JSON.
        if (ctx.accepts('json', 'html') === 'html') {
          ctx.type = 'html';
          ctx.body = renderErrorPage({ tenant: tenantDisplay, error: out.error, description: out.error_description });
          return;
        }
        ctx.type = 'application/json; charset=utf-8';
        ctx.body = out;
      },
    };
    const provider = new Provider(deps.issuerFor(tenantId), configuration);
    // Our routes overwrite Host and X-Forwarded-Host/Proto from the public URL before a request
    // reaches the engine, so it may trust them (see oauth/routes.ts).
    provider.proxy = true;
    // Our clients' secrets are stored as SHA-256 hashes: compare against every secret still
    // valid (current + rotated within grace). Scoped to this instance's own Client class.
    provider.Client.prototype.compareClientSecret = function compareClientSecret(this: { clientId: string }, actual: string) {
      return catalog.verifySecret(tenantId, this.clientId, actual);
    };
    // oidc-provider persists every touched session once a request is done (initialize_app.js,
    // ensureSessionSave), and `persist` throws for a session that was never saved: a request
    // that failed before the browser had a session (a device link or code form without its
    // cookie, whose error page writes a fresh xsrf secret into a fresh session) ended in a 500
    // instead of its error page. Such a session has no cookie pointing at it, so saving it
    // would only write a row nobody can use: it is not saved.
    const { persist } = provider.Session.prototype;
    provider.Session.prototype.persist = async function persistIfSaved(this: InstanceType<Provider['Session']>) {
      if (typeof this.exp !== 'number') return undefined;
      return persist.call(this);
    } as typeof persist;
    provider.use(async (ctx, next) => {
      // The resume endpoints (`/auth/{uid}`, `/device/{uid}`) are where our interaction pages
      // send the browser back, with nothing in the query: the request is the stored one. A query
      // there is never ours, and oidc-provider's error path reads a client_id from it and then
      // fails on parameters the resume step never assembled (a 500): it is dropped.
      if (RESUME_PATH.test(ctx.path)) ctx.querystring = '';
      const state = ctx.state as EngineState;
      try {
        await next();
        // Group commit: the tokens leave only once their issuance is in the audit trail. When
        // it cannot be written, the client gets no tokens (fail closed) but a 503 to retry.
        if (state.audit) await state.audit;
      } catch (error) {
        // Anything the engine let escape, or an issuance that could not be audited: a JSON 500
        // (never Koa's default, which writes the stack to stderr; never the tokens), logged,
        // audited and counted like the engine's own server errors.
        ctx.status = 500;
        ctx.type = 'application/json; charset=utf-8';
        ctx.body = { error: 'server_error', error_description: 'oops! something went wrong' };
        provider.emit('server_error', ctx, error);
      }
      // The database could not be reached (the 'server_error' listener below marked the request):
      // 503 temporarily_unavailable with Retry-After instead of 500 server_error, so clients
      // retry instead of giving up (RFC 6749 §4.1.2.1, §5.2 extension). Redirects keep the
      // engine's answer: the error already travelled in the redirect URI.
      if ((ctx.state as EngineState).storeUnavailable && ctx.status === 500) {
        ctx.status = 503;
        ctx.set('retry-after', String(STORE_RETRY_AFTER_SECONDS));
        if (!ctx.response.is('html')) ctx.body = TEMPORARILY_UNAVAILABLE;
        return;
      }
      // Unknown paths under a tenant answer in JSON like every other error (Koa's default is text).
      if (ctx.status === 404 && ctx.body == null) {
        ctx.body = { error: 'not_found', error_description: 'no such endpoint' };
        ctx.status = 404;
      }
    });
    provider.use(devicePolling());
    wireEvents(tenantId, provider);
    return { provider, handle: engineContext.wrap(provider.callback()), validUntil: keySet.validUntil };
  }

  /**
   * RFC 8628 §3.2: the device authorization response says how often to poll (`interval`);
   * §3.5: a device that polls again sooner while the person has not yet answered gets
   * `slow_down`, and must then wait 5 seconds more for every later poll. The last poll of each
   * pending code is kept in memory (per node, bounded): pacing, not a security decision.
   */
  function devicePolling() {
    const polls = new Map<string, { last: number; interval: number; until: number }>();
    const MAX_TRACKED = 10_000;
    return async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
      await next();
      const route = ctx.oidc?.route;
      if (route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        (ctx.body as Record<string, unknown>).interval = DEVICE_POLL_INTERVAL;
        return;
      }
      const body = ctx.body as { error?: string } | undefined;
      if (route !== 'token' || ctx.oidc.params?.grant_type !== DEVICE_GRANT || body?.error !== 'authorization_pending') return;
      const key = digest(String(ctx.oidc.params.device_code));
      const now = clock();
      const seen = polls.get(key);
      if (!seen && polls.size >= MAX_TRACKED) {
        for (const [k, p] of polls) if (p.until <= now) polls.delete(k);
        if (polls.size >= MAX_TRACKED) polls.delete(polls.keys().next().value!);
      }
      const tooSoon = seen !== undefined && now - seen.last < seen.interval * 1000;
      const interval = (seen?.interval ?? DEVICE_POLL_INTERVAL) + (tooSoon ? 5 : 0);
      polls.set(key, { last: now, interval, until: now + DEVICE_CODE_TTL * 1000 });
      if (tooSoon) ctx.body = { error: 'slow_down', error_description: `polling too often: wait ${interval} seconds between requests` };
    };
  }

  function requestFacts(ctx: KoaContextWithOIDC) {
    const facts = (ctx.req as ForwardedRequest).gatehouse;
    return { requestId: facts?.requestId ?? null, ip: facts?.ip ?? null };
  }

  /**
   * How the audit trail names an issued access token. A JWT's `jti` is an identifier; an
   * opaque token's id is the token itself, so only its digest is kept (the key of its row).
   */
  function tokenName(token: { jti: string; resourceServer?: { accessTokenFormat?: string } } | undefined) {
    if (!token) return { jti: null };
    return token.resourceServer?.accessTokenFormat === 'jwt' ? { jti: token.jti } : { token_sha256: digest(token.jti) };
  }

  function wireEvents(tenantId: string, provider: Provider) {
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const grantType = String(ctx.oidc.params?.grant_type ?? 'unknown');
      metrics.tokensIssued.inc({ grant_type: grantType });
      const token = ctx.oidc.entities.ClientCredentials ?? ctx.oidc.entities.AccessToken;
      // Awaited by the middleware below before the response leaves (GATEHOUSE_AUDIT_MODE=durable).
      const written = audit.recordDurable({
        tenantId,
        time: clock(),
        actor: ctx.oidc.client?.clientId ?? null,
        action: grantType === 'refresh_token' ? 'token.refreshed' : 'token.issued',
        target: Array.isArray(token?.aud) ? token.aud.join(' ') : ((token?.aud as string | undefined) ?? null),
        result: 'success',
        ...requestFacts(ctx),
        details: { grant_type: grantType, scope: token?.scope ?? null, ...tokenName(token) },
      });
      // Handled there; a rejection before the response is complete must not count as unhandled.
      written.catch(() => undefined);
      (ctx.state as EngineState).audit = written;
    });
    const onError = (ctx: KoaContextWithOIDC, error: OidcErrors.OIDCProviderError, code = error.error ?? 'server_error') => {
      if (ctx.oidc?.route === 'token') metrics.tokenErrors.inc({ error: code });
      const failedAuth = code === 'invalid_client';
      const route = ctx.oidc?.route;
      // The engine loads the client named in the request before it checks the secret, and the
      // authorization endpoint never authenticates one: only a client that passed client
      // authentication is the actor. Any other client id is what the caller claimed.
      const authenticated = !failedAuth && route !== 'authorization' && ctx.oidc?.client ? ctx.oidc.client.clientId : null;
      const claimed = authenticated
        ? null
        : (ctx.oidc?.client?.clientId ?? (typeof ctx.oidc?.params?.client_id === 'string' ? ctx.oidc.params.client_id : basicClientId(ctx.get('authorization')))) ?? null;
      const reason = error.error_detail ?? error.error_description ?? null;
      // A used refresh token or code presented again, one after the other (oidc-provider) or in
      // parallel (the adapter's consume lost the race): the grant is revoked.
      const reuse = code === 'invalid_grant' && reason ? REUSE_EVENTS.get(reason) : undefined;
      const event = {
        tenantId,
        time: clock(),
        actor: authenticated,
        action: failedAuth ? 'client.authentication_failed' : (reuse ?? (route === 'token' || route === undefined ? 'token.denied' : 'authorization.denied')),
        target: ctx.oidc?.route ?? null,
        result: 'failure',
        ...requestFacts(ctx),
        // error_detail is oidc-provider's internal reason ("invalid secret provided"): kept in
        // the audit trail, never sent to the client.
        details: { error: code, reason, grant_type: ctx.oidc?.params?.grant_type ?? null, ...(claimed ? { claimed_client_id: claimed } : {}) },
      } satisfies AuditEvent;
      // A reuse revokes a grant: always its own row. Other failures are counted per window.
      if (reuse) audit.record(event);
      else audit.recordFailure(event);
      if (code === 'server_error') logger.error({ err: error, tenant: tenantId }, 'oidc-provider server error');
    };
    provider.on('grant.error', onError);
    provider.on('introspection.error', onError);
    provider.on('revocation.error', onError);
    provider.on('authorization.error', onError);
    provider.on('userinfo.error', (ctx: KoaContextWithOIDC, error: OidcErrors.OIDCProviderError) => explainRefusedToken(ctx, error));
    // Back-channel logout: whether each application was told (OpenID Connect Back-Channel Logout 1.0).
    provider.on('backchannel.success', (ctx: KoaContextWithOIDC, client: { clientId: string }, accountId: string) => {
      audit.record({ tenantId, time: clock(), actor: accountId, action: 'logout.backchannel_sent', target: client.clientId, result: 'success', ...requestFacts(ctx) });
    });
    provider.on('backchannel.error', (ctx: KoaContextWithOIDC, error: Error, client: { clientId: string }, accountId: string) => {
      audit.record({ tenantId, time: clock(), actor: accountId, action: 'logout.backchannel_failed', target: client.clientId, result: 'failure', ...requestFacts(ctx), details: { reason: error.message } });
      logger.warn({ err: error, tenant: tenantId, client: client.clientId }, 'back-channel logout failed');
    });
    provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
      audit.record({ tenantId, time: clock(), actor: ctx.oidc.session?.accountId ?? null, action: 'logout', target: ctx.oidc.client?.clientId ?? null, result: 'success', ...requestFacts(ctx) });
    });
    // An unexpected failure (a 500) is a refusal like any other: audited, and counted at the
    // token endpoint; onError logs it. A database outage is logged once by the store, and the
    // request is marked so that it answers 503 (above).
    provider.on('server_error', (ctx: KoaContextWithOIDC, error: Error) => {
      if (isStoreUnavailable(error)) (ctx.state as EngineState).storeUnavailable = true;
      onError(ctx, error as OidcErrors.OIDCProviderError, isStoreUnavailable(error) ? TEMPORARILY_UNAVAILABLE.error : 'server_error');
    });
  }

  return {
    /** The tenant's engine, built if needed. */
    async get(tenantId: string): Promise<PoolEntry> {
      const entry = entries.get(tenantId);
      if (entry && clock() < entry.validUntil) {
        // Map order is insertion order: re-insert to mark as most recently used.
        entries.delete(tenantId);
        entries.set(tenantId, entry);
        return entry;
      }
      let pending = building.get(tenantId);
      if (!pending) {
        pending = build(tenantId).finally(() => building.delete(tenantId));
        building.set(tenantId, pending);
      }
      const fresh = await pending;
      entries.delete(tenantId);
      entries.set(tenantId, fresh);
      while (entries.size > deps.maxSize) entries.delete(entries.keys().next().value!);
      return fresh;
    },
    invalidate(tenantId: string): void {
      entries.delete(tenantId);
    },
    get size() {
      return entries.size;
    },
  };
}

export type ProviderPool = ReturnType<typeof createProviderPool>;
