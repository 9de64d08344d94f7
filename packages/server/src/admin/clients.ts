import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { signingAlgs, type SigningAlg } from '../config/defaults.js';
import { ID_TOKEN_DEFAULT_ALG } from '../keys/index.js';
import { MAX_ACCESS_TOKEN_TTL, type ClientRecord } from '../oauth/index.js';
import { errors, iso, Scope, TenantParams, type AdminRouteDeps } from './schemas.js';

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
const CreateClient = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    type: Type.Optional(Type.Union([Type.Literal('confidential'), Type.Literal('public')])),
    grant_types: Type.Array(Type.String({ maxLength: 100 }), { minItems: 1, maxItems: 10 }),
    ...ClientSignIn,
    token_endpoint_auth_method: Type.Optional(Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('none')])),
    apis: Type.Optional(Type.Record(Type.String({ maxLength: 2048 }), Type.Array(Scope, { maxItems: 200 }))),
  },
  {
    additionalProperties: false,
    examples: [
      { name: 'fulfilment', grant_types: ['client_credentials'], apis: { 'https://api.acme.example': ['orders:read'] } },
      { name: 'Shop', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['https://shop.acme.example/callback'], first_party: true },
    ],
  },
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

/** Clients of a tenant, their secrets and tokens: the operator's, and the tenant's own token's (`clients:*`). */
export function clientRoutes(app: FastifyInstance, { core, guard, audit }: AdminRouteDeps): void {
  const { clientsRead, clientsWrite } = guard;
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
}
