import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditAction } from '../audit/index.js';
import type { Core } from '../core.js';
import { authzRoutes } from '../authz/routes.js';
import { userRoutes } from '../identity/index.js';
import { apiRoutes } from './apis.js';
import { changesAtomically } from './atomic.js';
import { auditRoutes } from './audit-trail.js';
import { createAdminGuard, securityOf } from './auth.js';
import { clientRoutes } from './clients.js';
import { keyRoutes } from './keys.js';
import type { AdminRouteDeps } from './schemas.js';
import { SUMMARIES } from './summaries.js';
import { tenantRoutes } from './tenants.js';

/**
 * The admin REST API under /api/v1, described by /api/v1/openapi.json: one module per
 * resource (tenants, APIs, clients, keys, the audit trail; the permission service and users
 * in their own folders), all behind the scope guard and the unit of work of atomic.ts.
 */
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
            // An OpenAPI token URL is one URL; the tenant's own is this with {tenant} (percent-encoded here) replaced.
            flows: { clientCredentials: { tokenUrl: `${core.tenants.issuerFor('%7Btenant%7D')}/token`, scopes: {
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
    },
  });
  // Every operation says who may call it (from its guard) and has a stable id.
  app.addHook('onRoute', (route) => {
    // A GET's automatic HEAD route shares its schema object: it must not rename the GET.
    if (!route.schema || (route.schema as { hide?: boolean }).hide || route.method === 'HEAD') return;
    const path = route.url.slice(route.prefix.length);
    const summary = SUMMARIES[`${[route.method].flat()[0]} ${path}`];
    if (!summary) throw new Error(`admin route ${String(route.method)} ${path} has no summary in admin/summaries.ts`);
    Object.assign(route.schema, { summary, operationId: operationIdOf(route.method, path), security: securityOf(route.onRequest) });
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

  // Public by decision: the API description holds no tenant data.
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const deps: AdminRouteDeps = { core, guard: { read, write, clientsRead, clientsWrite, auditRead }, audit };
  await tenantRoutes(app, deps);
  apiRoutes(app, deps);
  clientRoutes(app, deps);
  keyRoutes(app, deps);
  auditRoutes(app, deps);
}

/**
 * `GET /tenants/:tenant/clients/:client` → `getTenantClient`: the method, then each literal
 * segment, singular where a parameter follows it. Unique because method and path are.
 */
function operationIdOf(method: string | string[], url: string): string {
  const segments = url.split('/').filter(Boolean);
  const words = segments.flatMap((segment, i) => {
    if (segment.startsWith(':')) return [];
    const next = segments[i + 1];
    const word = next?.startsWith(':') && segment.endsWith('s') ? segment.slice(0, -1) : segment;
    return word.split(/[-_.]/);
  });
  const verb = [method].flat()[0]!.toLowerCase();
  return verb + words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}
