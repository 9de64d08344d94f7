import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';
import { errors, iso, TenantParams, type AdminRouteDeps } from './schemas.js';

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

/** The audit trail of a tenant: the operator's, and the tenant's own token's (`audit:read`). */
export function auditRoutes(app: FastifyInstance, { core, guard }: AdminRouteDeps): void {
  const { auditRead } = guard;
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
