import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { LOGO_TYPES, MAX_LOGO_BYTES } from '../tenants/index.js';
import { errors, iso, TenantParams, type AdminRouteDeps } from './schemas.js';

const Tenant = Type.Object({
  id: Type.String(),
  display_name: Type.String(),
  logo: Type.Union([Type.Null(), Type.String({ description: 'Where the sign-in pages load the logo from (our own origin)' })]),
  issuer: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
});
const CreateTenant = Type.Object({ id: Type.String({ minLength: 1, maxLength: 63 }), display_name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false, examples: [{ id: 'shop', display_name: 'Shop' }] });

/** Tenants: the operator's (`admin`, `admin:read`), with their names and logos. */
export async function tenantRoutes(app: FastifyInstance, { core, guard, audit }: AdminRouteDeps): Promise<void> {
  const { read, write } = guard;
  const tenantView = (t: { id: string; displayName: string; logoType?: string | null; createdAt: number }) => ({
    id: t.id,
    display_name: t.displayName,
    logo: t.logoType ? `${core.tenants.issuerFor(t.id)}/logo` : null,
    issuer: core.tenants.issuerFor(t.id),
    created_at: iso(t.createdAt),
  });

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
}
