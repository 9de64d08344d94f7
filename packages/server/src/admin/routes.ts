import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuditAction } from '../audit/index.js';
import { signingAlgs, type SigningAlg } from '../config/defaults.js';
import type { Core } from '../core.js';
import { ID_TOKEN_DEFAULT_ALG } from '../keys/index.js';
import { MAX_ACCESS_TOKEN_TTL, type ApiRecord, type ClientRecord } from '../oauth/index.js';
import { authzRoutes } from '../authz/routes.js';
import { LOGO_TYPES, MAX_LOGO_BYTES } from '../tenants/index.js';
import { userRoutes } from '../identity/index.js';
import { changesAtomically } from './atomic.js';
import { createAdminGuard } from './auth.js';

const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Object({}, { additionalProperties: true }) });
const TenantParams = Type.Object({ tenant: Type.String({ maxLength: 63 }) });
const Tenant = Type.Object({
  id: Type.String(),
  display_name: Type.String(),
  logo: Type.Union([Type.Null(), Type.String({ description: 'Where the sign-in pages load the logo from (our own origin)' })]),
  issuer: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
});
const Scope = Type.String({ minLength: 1, maxLength: 128 });
const Api = Type.Object({
  id: Type.String(),
  identifier: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  access_token_ttl: Type.Integer(),
  resource_servers: Type.Array(Type.String()),
  builtin: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
});
/** RFC 7662 §2.1: the clients, besides a token's own, that may introspect the API's tokens. */
const ResourceServers = Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
  maxItems: 100,
  description: "Client ids of the API's resource servers: besides a token's own client, only they may introspect its tokens",
});
const Client = Type.Object({
  client_id: Type.String(),
  name: Type.String(),
  type: Type.Union([Type.Literal('confidential'), Type.Literal('public')]),
  grant_types: Type.Array(Type.String()),
  redirect_uris: Type.Array(Type.String()),
  post_logout_redirect_uris: Type.Array(Type.String()),
  first_party: Type.Boolean(),
  // Null first, as in ClientSignIn.
  backchannel_logout_uri: Type.Union([Type.Null(), Type.String()]),
  refresh_token_idle_ttl: Type.Union([Type.Null(), Type.Integer()]),
  refresh_token_absolute_ttl: Type.Union([Type.Null(), Type.Integer()]),
  id_token_signed_response_alg: Type.String(),
  token_endpoint_auth_method: Type.String(),
  apis: Type.Record(Type.String(), Type.Array(Type.String())),
  builtin: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
});
/** What people-facing clients add: where users return to, consent, logout, refresh lifetimes. */
const ClientSignIn = {
  redirect_uris: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 50 })),
  post_logout_redirect_uris: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 50 })),
  first_party: Type.Optional(Type.Boolean({ description: 'First-party applications skip the consent screen' })),
  // Null first: Ajv coerces types, and would read null as "" or 0 under a string or integer tried first.
  backchannel_logout_uri: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 2048 })])),
  refresh_token_idle_ttl: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 60, maximum: 31536000 })], { description: 'Seconds a refresh token may go unused (null: server default)' })),
  refresh_token_absolute_ttl: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 60, maximum: 31536000 })], { description: 'Seconds from sign-in after which refreshing stops (null: server default)' })),
  id_token_signed_response_alg: Type.Optional(
    Type.Union([Type.Null(), ...signingAlgs.map((a) => Type.Literal(a))], {
      description: 'How ID tokens for this client are signed (OIDC Registration §2): the tenant\'s default algorithm or RS256; null or absent: RS256',
    }),
  ),
};
const CreateTenant = Type.Object({ id: Type.String({ minLength: 1, maxLength: 63 }), display_name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false });
const CreateApi = Type.Object(
  {
    identifier: Type.String({ minLength: 1, maxLength: 2048 }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    scopes: Type.Array(Scope, { maxItems: 200 }),
    access_token_ttl: Type.Optional(Type.Integer({ minimum: 30, maximum: 86400 })),
    resource_servers: Type.Optional(ResourceServers),
  },
  { additionalProperties: false },
);
const CreateClient = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    type: Type.Optional(Type.Union([Type.Literal('confidential'), Type.Literal('public')])),
    grant_types: Type.Array(Type.String({ maxLength: 100 }), { minItems: 1, maxItems: 10 }),
    ...ClientSignIn,
    token_endpoint_auth_method: Type.Optional(Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('none')])),
    apis: Type.Optional(Type.Record(Type.String({ maxLength: 2048 }), Type.Array(Scope, { maxItems: 200 }))),
  },
  { additionalProperties: false },
);
const UpdateApi = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    scopes: Type.Optional(Type.Array(Scope, { maxItems: 200 })),
    access_token_ttl: Type.Optional(Type.Integer({ minimum: 30, maximum: 86400 })),
    resource_servers: Type.Optional(ResourceServers),
  },
  { additionalProperties: false, minProperties: 1 },
);
const UpdateClient = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    apis: Type.Optional(Type.Record(Type.String({ maxLength: 2048 }), Type.Array(Scope, { maxItems: 200 }))),
    grant_types: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { minItems: 1, maxItems: 10 })),
    ...ClientSignIn,
  },
  { additionalProperties: false, minProperties: 1 },
);
const RotateSecret = Type.Object({ grace_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 2592000 })) }, { additionalProperties: false });
const RotateKey = Type.Object({ alg: Type.Optional(Type.Union(signingAlgs.map((a) => Type.Literal(a)))) }, { additionalProperties: false });
const AuditQuery = Type.Object(
  {
    action: Type.Optional(Type.String({ maxLength: 100 })),
    actor: Type.Optional(Type.String({ maxLength: 200 })),
    result: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure')])),
    request_id: Type.Optional(Type.String({ maxLength: 100 })),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    before: Type.Optional(Type.Integer({ minimum: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const iso = (ms: number) => new Date(ms).toISOString();
const apiView = (a: ApiRecord) => ({
  id: a.id,
  identifier: a.identifier,
  name: a.name,
  scopes: a.scopes,
  access_token_ttl: a.accessTokenTtl,
  resource_servers: a.resourceServers,
  builtin: a.builtin,
  created_at: iso(a.createdAt),
});
const clientView = (c: ClientRecord) => ({
  client_id: c.clientId,
  name: c.name,
  type: c.type,
  grant_types: c.grantTypes,
  redirect_uris: c.redirectUris,
  post_logout_redirect_uris: c.postLogoutRedirectUris,
  first_party: c.firstParty,
  backchannel_logout_uri: c.backchannelLogoutUri,
  refresh_token_idle_ttl: c.refreshTokenIdleTtl,
  refresh_token_absolute_ttl: c.refreshTokenAbsoluteTtl,
  id_token_signed_response_alg: c.idTokenAlg ?? ID_TOKEN_DEFAULT_ALG,
  token_endpoint_auth_method: c.authMethod,
  apis: c.apiScopes,
  builtin: c.builtin,
  created_at: iso(c.createdAt),
});

type SignInBody = { [K in keyof typeof ClientSignIn]?: Static<(typeof ClientSignIn)[K]> };
const signInFields = (b: SignInBody) => ({
  redirectUris: b.redirect_uris,
  postLogoutRedirectUris: b.post_logout_redirect_uris,
  firstParty: b.first_party,
  backchannelLogoutUri: b.backchannel_logout_uri,
  refreshTokenIdleTtl: b.refresh_token_idle_ttl,
  refreshTokenAbsoluteTtl: b.refresh_token_absolute_ttl,
  idTokenAlg: b.id_token_signed_response_alg as SigningAlg | null | undefined,
});

/** The admin REST API under /api/v1, described by /api/v1/openapi.json. */
export async function adminRoutes(app: FastifyInstance, { core }: { core: Core }) {
  await app.register(swagger, {
    openapi: {
      info: { title: 'Gatehouse admin API', version: '1' },
      components: {
        securitySchemes: {
          gatehouseAdmin: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: `${core.tenants.issuerFor('default')}/token`, scopes: {
                admin: 'Full administration',
                'admin:read': 'Read-only administration',
                'authz:check': 'Ask permission questions (check, lookups)',
                'authz:write': 'Write and read relationships',
                'authz:admin': 'Change permission schemas',
              } } } },
          gatehouseTenant: {
            type: 'oauth2',
            description: 'A token of tenant {t} for its built-in urn:gatehouse:tenant API: routes under /tenants/{t} only (authz, users, clients, audit).',
            flows: { clientCredentials: { tokenUrl: `${core.tenants.issuerFor('{tenant}')}/token`, scopes: {
              'authz:check': 'Ask permission questions in the own tenant',
              'authz:write': 'Write and read the own tenant\'s relationships',
              'authz:admin': 'Change the own tenant\'s permission schema and policies',
              'users:read': 'Read the own tenant\'s users, sessions and grants',
              'users:write': 'Manage the own tenant\'s users, sessions and grants',
              'clients:read': 'Read the own tenant\'s clients',
              'clients:write': 'Manage the own tenant\'s clients, their secrets and tokens',
              'audit:read': 'Read the own tenant\'s audit trail',
            } } },
          },
        },
      },
      security: [{ gatehouseAdmin: ['admin'] }],
    },
  });
  const requireScope = createAdminGuard(core);
  changesAtomically(app, core.atomically);
  await app.register(authzRoutes, { authz: core.authz, tenants: core.tenants, audit: core.audit, requireScope, clock: core.clock });
  await app.register(userRoutes, { users: core.users, sessions: core.sessions, tenants: core.tenants, audit: core.audit, requireScope, clock: core.clock });
  // Tenants, APIs and keys are the operator's; a tenant's own token reaches its clients and audit trail.
  const read = requireScope('admin:read');
  const write = requireScope('admin');
  const clientsRead = requireScope('admin:read', 'clients:read', 'clients:write');
  const clientsWrite = requireScope('admin', 'clients:write');
  const auditRead = requireScope('admin:read', 'audit:read');

  /** Written in the change's own transaction (changesAtomically): the two commit together. */
  function audit(request: FastifyRequest, tenantId: string, action: AuditAction, target: string, details?: Record<string, unknown>): Promise<void> {
    return core.audit.recordDurable({
      tenantId,
      time: core.clock(),
      actor: request.admin?.actor ?? null,
      action,
      target,
      result: 'success',
      requestId: String(request.id),
      ip: request.ip,
      details: details ?? null,
    });
  }
  const tenantView = (t: { id: string; displayName: string; logoType?: string | null; createdAt: number }) => ({
    id: t.id,
    display_name: t.displayName,
    logo: t.logoType ? `${core.tenants.issuerFor(t.id)}/logo` : null,
    issuer: core.tenants.issuerFor(t.id),
    created_at: iso(t.createdAt),
  });

  // Public by decision: the API description holds no tenant data.
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/tenants', { onRequest: read, schema: { tags: ['tenants'], response: { 200: Type.Object({ tenants: Type.Array(Tenant) }), ...errors } } }, async () => ({
    tenants: (await core.tenants.list()).map(tenantView),
  }));

  app.post<{ Body: Static<typeof CreateTenant> }>(
    '/tenants',
    { onRequest: write, schema: { tags: ['tenants'], body: CreateTenant, response: { 201: Tenant, ...errors } } },
    async (request, reply) => {
      const tenant = await core.tenants.create(request.body.id, request.body.display_name);
      await audit(request, tenant.id, 'tenant.created', tenant.id);
      return reply.code(201).send(tenantView(tenant));
    },
  );

  app.get<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant',
    { onRequest: read, schema: { tags: ['tenants'], params: TenantParams, response: { 200: Tenant, ...errors } } },
    async (request) => tenantView(await core.tenants.get(request.params.tenant)),
  );

  app.patch<{ Params: Static<typeof TenantParams>; Body: { display_name: string } }>(
    '/tenants/:tenant',
    {
      onRequest: write,
      schema: {
        tags: ['tenants'],
        description: 'Renames the tenant: the name its sign-in pages show.',
        params: TenantParams,
        body: Type.Object({ display_name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
        response: { 200: Tenant, ...errors },
      },
    },
    async (request) => {
      const updated = await core.tenants.update(request.params.tenant, { displayName: request.body.display_name });
      await audit(request, updated.id, 'tenant.updated', updated.id, { changed: ['display_name'] });
      return tenantView(updated);
    },
  );

  // A logo is uploaded, not linked: the sign-in pages load nothing from other origins.
  await app.register(async (logos) => {
    logos.addContentTypeParser(LOGO_TYPES, { parseAs: 'buffer', bodyLimit: MAX_LOGO_BYTES }, (_request, body, done) => done(null, body));
    logos.put<{ Params: Static<typeof TenantParams> }>(
      '/tenants/:tenant/logo',
      {
        onRequest: write,
        schema: {
          tags: ['tenants'],
          description: `Sets the logo of the sign-in pages: the image itself as the body (${LOGO_TYPES.join(', ')}; at most ${MAX_LOGO_BYTES} bytes). Served at /t/{tenant}/logo.`,
          params: TenantParams,
          response: { 204: Type.Null(), ...errors },
        },
      },
      async (request, reply) => {
        const { tenant } = request.params;
        const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        await core.tenants.setLogo(tenant, { type, data: request.body as Buffer });
        await audit(request, tenant, 'tenant.updated', tenant, { changed: ['logo'] });
        return reply.code(204).send();
      },
    );
  });

  app.delete<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant/logo',
    { onRequest: write, schema: { tags: ['tenants'], params: TenantParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      await core.tenants.setLogo(request.params.tenant, null);
      await audit(request, request.params.tenant, 'tenant.updated', request.params.tenant, { changed: ['logo'] });
      return reply.code(204).send();
    },
  );

  app.get<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant/apis',
    { onRequest: read, schema: { tags: ['apis'], params: TenantParams, response: { 200: Type.Object({ apis: Type.Array(Api) }), ...errors } } },
    async (request) => {
      await core.tenants.get(request.params.tenant);
      return { apis: (await core.catalog.listApis(request.params.tenant)).map(apiView) };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof CreateApi> }>(
    '/tenants/:tenant/apis',
    { onRequest: write, schema: { tags: ['apis'], params: TenantParams, body: CreateApi, response: { 201: Api, ...errors } } },
    async (request, reply) => {
      const { tenant } = request.params;
      await core.tenants.get(tenant);
      const { identifier, name, scopes, access_token_ttl: accessTokenTtl, resource_servers: resourceServers } = request.body;
      const api = await core.catalog.createApi(tenant, { identifier, name, scopes, accessTokenTtl, resourceServers });
      await audit(request, tenant, 'api.created', api.identifier, { scopes: api.scopes, access_token_ttl: api.accessTokenTtl, resource_servers: api.resourceServers });
      return reply.code(201).send(apiView(api));
    },
  );

  const ApiParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), api: Type.String({ maxLength: 2048 }) });
  app.delete<{ Params: Static<typeof ApiParams> }>(
    '/tenants/:tenant/apis/:api',
    { onRequest: write, schema: { tags: ['apis'], params: ApiParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { tenant, api } = request.params;
      await core.tenants.get(tenant);
      await core.catalog.deleteApi(tenant, api);
      await audit(request, tenant, 'api.deleted', api);
      return reply.code(204).send();
    },
  );

  app.patch<{ Params: Static<typeof ApiParams>; Body: Static<typeof UpdateApi> }>(
    '/tenants/:tenant/apis/:api',
    {
      onRequest: write,
      schema: {
        tags: ['apis'],
        description: 'Changes name, scopes, access-token lifetime or resource servers. Tokens already issued keep their claims; clients lose scopes the API no longer defines.',
        params: ApiParams,
        body: UpdateApi,
        response: { 200: Api, ...errors },
      },
    },
    async (request) => {
      const { tenant, api } = request.params;
      await core.tenants.get(tenant);
      const { name, scopes, access_token_ttl: accessTokenTtl, resource_servers: resourceServers } = request.body;
      const updated = await core.catalog.updateApi(tenant, api, { name, scopes, accessTokenTtl, resourceServers });
      await audit(request, tenant, 'api.updated', updated.identifier, { scopes: updated.scopes, access_token_ttl: updated.accessTokenTtl, resource_servers: updated.resourceServers });
      return apiView(updated);
    },
  );

  app.get<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant/clients',
    { onRequest: clientsRead, schema: { tags: ['clients'], params: TenantParams, response: { 200: Type.Object({ clients: Type.Array(Client) }), ...errors } } },
    async (request) => {
      await core.tenants.get(request.params.tenant);
      return { clients: (await core.catalog.listClients(request.params.tenant)).map(clientView) };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof CreateClient> }>(
    '/tenants/:tenant/clients',
    {
      onRequest: clientsWrite,
      schema: {
        tags: ['clients'],
        description: 'Creates a client. A confidential client\'s `client_secret` is in this response and nowhere else.',
        params: TenantParams,
        body: CreateClient,
        response: { 201: Type.Intersect([Client, Type.Object({ client_secret: Type.Optional(Type.String()) })]), ...errors },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      await core.tenants.get(tenant);
      const b = request.body;
      const { client, clientSecret } = await core.catalog.createClient(tenant, {
        name: b.name,
        type: b.type,
        grantTypes: b.grant_types,
        ...signInFields(b),
        authMethod: b.token_endpoint_auth_method,
        apis: b.apis,
      });
      await audit(request, tenant, 'client.created', client.clientId, { grant_types: client.grantTypes, apis: client.apiScopes });
      return reply.code(201).send({ ...clientView(client), ...(clientSecret ? { client_secret: clientSecret } : {}) });
    },
  );

  const ClientParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), client: Type.String({ maxLength: 200 }) });
  app.get<{ Params: Static<typeof ClientParams> }>(
    '/tenants/:tenant/clients/:client',
    { onRequest: clientsRead, schema: { tags: ['clients'], params: ClientParams, response: { 200: Client, ...errors } } },
    async (request) => {
      await core.tenants.get(request.params.tenant);
      return clientView(await core.catalog.getClient(request.params.tenant, request.params.client));
    },
  );

  app.patch<{ Params: Static<typeof ClientParams>; Body: Static<typeof UpdateClient> }>(
    '/tenants/:tenant/clients/:client',
    { onRequest: clientsWrite, schema: { tags: ['clients'], description: 'Changes a client: name, APIs and scopes, grant types, redirect and logout URIs, consent, refresh token lifetimes (its type and auth method stay).', params: ClientParams, body: UpdateClient, response: { 200: Client, ...errors } } },
    async (request) => {
      const { tenant, client } = request.params;
      await core.tenants.get(tenant);
      const b = request.body;
      const updated = await core.catalog.updateClient(tenant, client, { name: b.name, apis: b.apis, grantTypes: b.grant_types, ...signInFields(b) });
      await audit(request, tenant, 'client.updated', client, { changed: Object.keys(b) });
      return clientView(updated);
    },
  );

  app.delete<{ Params: Static<typeof ClientParams> }>(
    '/tenants/:tenant/clients/:client',
    { onRequest: clientsWrite, schema: { tags: ['clients'], params: ClientParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { tenant, client } = request.params;
      await core.tenants.get(tenant);
      await core.catalog.deleteClient(tenant, client);
      await audit(request, tenant, 'client.deleted', client);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: Static<typeof ClientParams>; Body: Static<typeof RotateSecret> }>(
    '/tenants/:tenant/clients/:client/secret',
    {
      onRequest: clientsWrite,
      schema: {
        tags: ['clients'],
        description: 'Rotates the client secret. The new secret is returned once; earlier secrets keep working for `grace_seconds`.',
        params: ClientParams,
        body: Type.Optional(RotateSecret),
        response: { 200: Type.Object({ client_id: Type.String(), client_secret: Type.String(), previous_secrets_expire_at: Type.String({ format: 'date-time' }) }), ...errors },
      },
    },
    async (request) => {
      const { tenant, client } = request.params;
      await core.tenants.get(tenant);
      const rotated = await core.catalog.rotateSecret(tenant, client, request.body?.grace_seconds);
      await audit(request, tenant, 'client.secret_rotated', client, { previous_secrets_expire_at: iso(rotated.previousSecretsExpireAt) });
      return { client_id: client, client_secret: rotated.clientSecret, previous_secrets_expire_at: iso(rotated.previousSecretsExpireAt) };
    },
  );

  app.post<{ Params: Static<typeof ClientParams> }>(
    '/tenants/:tenant/clients/:client/revoke-tokens',
    {
      onRequest: clientsWrite,
      schema: {
        tags: ['clients'],
        description: 'Ends every access token the client holds now, on every node: tokens issued before this call (and in its second) are refused by the admin API from here on. Its secret stays; rotate it too if it leaked.',
        params: ClientParams,
        response: { 200: Type.Object({ client_id: Type.String(), tokens_valid_after: Type.String({ format: 'date-time' }) }), ...errors },
      },
    },
    async (request) => {
      const { tenant, client } = request.params;
      await core.tenants.get(tenant);
      const { tokensValidAfter } = await core.catalog.revokeTokens(tenant, client);
      await audit(request, tenant, 'client.tokens_revoked', client, { tokens_valid_after: iso(tokensValidAfter) });
      return { client_id: client, tokens_valid_after: iso(tokensValidAfter) };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: { jti: string } }>(
    '/tenants/:tenant/tokens/revoke',
    {
      onRequest: clientsWrite,
      schema: {
        tags: ['clients'],
        description: 'Revokes one access token of the tenant by its `jti` (the audit trail names issued tokens by it), whichever client holds it: introspection and the admin API refuse it from here on, on every node.',
        params: TenantParams,
        body: Type.Object({ jti: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      await core.tenants.get(tenant);
      // Without the token its expiry is unknown: keep the jti as long as any token can live.
      await core.repos.oauth.revokeToken(tenant, request.body.jti, core.clock() + MAX_ACCESS_TOKEN_TTL * 1000);
      await core.verifyAccessToken.forget(tenant);
      await audit(request, tenant, 'token.revoked', request.body.jti, { by: 'jti' });
      return reply.code(204).send();
    },
  );

  const KeyView = Type.Object({
    kid: Type.String(),
    alg: Type.String(),
    status: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    retire_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    public_jwk: Type.Object({}, { additionalProperties: true }),
  });
  app.get<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant/keys',
    { onRequest: read, schema: { tags: ['keys'], params: TenantParams, response: { 200: Type.Object({ keys: Type.Array(KeyView) }), ...errors } } },
    async (request) => {
      await core.tenants.get(request.params.tenant);
      const keys = await core.keys.list(request.params.tenant);
      return {
        keys: keys.map((k) => ({ kid: k.kid, alg: k.alg, status: k.status, created_at: iso(k.createdAt), retire_at: k.retireAt === null ? null : iso(k.retireAt), public_jwk: k.publicJwk })),
      };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof RotateKey> }>(
    '/tenants/:tenant/keys/rotate',
    {
      onRequest: write,
      schema: {
        tags: ['keys'],
        description:
          'Makes new signing keys active at once: the default key (of `alg`, else of the current default\'s algorithm), and unless that is RS256 an RS256 key beside it for ID tokens of clients that registered no algorithm (`id_token_kid`). The previous keys stay in JWKS until every token they signed has expired. 409 `KEYS_ALG_IN_USE` when a client registered an ID-token algorithm the new keys would not hold.',
        params: TenantParams,
        body: Type.Optional(RotateKey),
        response: {
          200: Type.Object({
            kid: Type.String(),
            alg: Type.String(),
            id_token_kid: Type.Union([Type.String(), Type.Null()]),
            previous_kid: Type.Union([Type.String(), Type.Null()]),
            previous_retire_at: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      const { tenant } = request.params;
      await core.tenants.get(tenant);
      const rotated = await core.keys.rotate(tenant, request.body?.alg as SigningAlg | undefined);
      await audit(request, tenant, 'key.rotated', rotated.kid, { alg: rotated.alg, id_token_kid: rotated.idTokenKid, previous_kid: rotated.previousKid });
      return {
        kid: rotated.kid,
        alg: rotated.alg,
        id_token_kid: rotated.idTokenKid,
        previous_kid: rotated.previousKid,
        previous_retire_at: rotated.previousRetireAt === null ? null : iso(rotated.previousRetireAt),
      };
    },
  );

  const AuditEvent = Type.Object({
    id: Type.Integer(),
    time: Type.String({ format: 'date-time' }),
    actor: Type.Union([Type.String(), Type.Null()]),
    action: Type.String(),
    target: Type.Union([Type.String(), Type.Null()]),
    result: Type.String(),
    request_id: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    details: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  });
  app.get<{ Params: Static<typeof TenantParams>; Querystring: Static<typeof AuditQuery> }>(
    '/tenants/:tenant/audit',
    {
      onRequest: auditRead,
      schema: {
        tags: ['audit'],
        description: 'Audit events, newest first. Page with `before` = the last id of the previous page.',
        params: TenantParams,
        querystring: AuditQuery,
        response: { 200: Type.Object({ events: Type.Array(AuditEvent), next_before: Type.Union([Type.Integer(), Type.Null()]) }), ...errors },
      },
    },
    async (request) => {
      const { tenant } = request.params;
      await core.tenants.get(tenant);
      const q = request.query;
      const limit = q.limit ?? 100;
      // Recent events may still be in the batch buffer; a query should see them.
      await core.audit.flush();
      const events = await core.repos.audit.query({
        tenantId: tenant,
        action: q.action,
        actor: q.actor,
        result: q.result,
        requestId: q.request_id,
        since: q.since ? Date.parse(q.since) : undefined,
        until: q.until ? Date.parse(q.until) : undefined,
        before: q.before,
        limit,
      });
      return {
        events: events.map((e) => ({ id: e.id, time: iso(e.time), actor: e.actor, action: e.action, target: e.target, result: e.result, request_id: e.requestId, ip: e.ip, details: e.details })),
        next_before: events.length === limit ? events[events.length - 1]!.id : null,
      };
    },
  );
}
