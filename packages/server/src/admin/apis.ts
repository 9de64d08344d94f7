import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import type { ApiRecord } from '../oauth/index.js';
import { errors, iso, Scope, TenantParams, type AdminRouteDeps } from './schemas.js';

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
const CreateApi = Type.Object(
  {
    identifier: Type.String({ minLength: 1, maxLength: 2048 }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    scopes: Type.Array(Scope, { maxItems: 200 }),
    access_token_ttl: Type.Optional(Type.Integer({ minimum: 30, maximum: 86400 })),
    resource_servers: Type.Optional(ResourceServers),
  },
  { additionalProperties: false, examples: [{ identifier: 'https://api.acme.example', scopes: ['orders:read', 'orders:write'], access_token_ttl: 600 }] },
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

/** APIs (resource servers) of a tenant: the operator's. */
export function apiRoutes(app: FastifyInstance, { core, guard, audit }: AdminRouteDeps): void {
  const { read, write } = guard;
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
}
