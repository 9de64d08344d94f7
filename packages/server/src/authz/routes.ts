import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuditAction, AuditEvent, AuditWriter } from '../audit/index.js';
import type { TenantService } from '../tenants/index.js';
import { formatRelationship, parseObjectRef as parseObject, parseRelationship, parseSubjectRef as parseSubject } from './relationships/index.js';
import { createRbac } from './rbac.js';
import type { AuthzService, Consistency, Decision } from './service.js';
import { authzServiceErrors } from './service-errors.js';

type Guard = (...scopes: ('authz:check' | 'authz:write' | 'authz:admin')[]) => onRequestAsyncHookHandler;

export interface AuthzRoutesDeps {
  authz: AuthzService;
  tenants: TenantService;
  audit: AuditWriter;
  requireScope: Guard;
  clock: () => number;
}

const ObjectText = Type.String({ minLength: 3, maxLength: 1200, description: '`type:id`' });
const SubjectText = Type.String({ minLength: 3, maxLength: 1300, description: '`type:id` or `type:id#relation`' });
const Context = Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Caveat context, also the Cedar `context`' }));
const Entities = Type.Optional(
  Type.Array(
    Type.Object(
      {
        uid: Type.Object({ type: Type.String({ maxLength: 200 }), id: Type.String({ maxLength: 1024 }) }, { additionalProperties: false }),
        attrs: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        parents: Type.Optional(Type.Array(Type.Object({ type: Type.String({ maxLength: 200 }), id: Type.String({ maxLength: 1024 }) }, { additionalProperties: false }), { maxItems: 100 })),
      },
      { additionalProperties: false },
    ),
    { maxItems: 100, description: 'Entities Cedar policies may read (attributes and parents of principal, resource, …)' },
  ),
);
const ConsistencyBody = Type.Optional(
  Type.Object(
    {
      mode: Type.Union([Type.Literal('minimize_latency'), Type.Literal('at_least_as_fresh'), Type.Literal('fully_consistent')]),
      token: Type.Optional(Type.String({ maxLength: 40 })),
    },
    { additionalProperties: false },
  ),
);
const Filter = Type.Object(
  {
    resource_type: Type.String({ minLength: 1, maxLength: 200 }),
    resource_id: Type.Optional(Type.String({ maxLength: 1024 })),
    relation: Type.Optional(Type.String({ maxLength: 64 })),
    subject_type: Type.Optional(Type.String({ maxLength: 200 })),
    subject_id: Type.Optional(Type.String({ maxLength: 1024 })),
    subject_relation: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
const Preconditions = Type.Optional(
  Type.Array(Type.Object({ operation: Type.Union([Type.Literal('must_match'), Type.Literal('must_not_match')]), filter: Filter }, { additionalProperties: false }), { maxItems: 100 }),
);
const TenantParams = Type.Object({ tenant: Type.String({ maxLength: 63 }) });
const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Object({}, { additionalProperties: true }) });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/**
 * Body limits of the endpoints whose documented payloads outgrow GATEHOUSE_BODY_LIMIT. Like
 * every body, these are read only after the token is checked (the guard runs in onRequest),
 * so an unauthenticated caller cannot make the server take them in.
 */
export const BODY_LIMITS = {
  /** 1,000 check items (or relationship updates) of up to ~4 KiB each. */
  batch: 8 * 1024 * 1024,
  /** A schema or policy text of 1,000,000 characters, JSON-escaped. */
  text: 4 * 1024 * 1024,
  /** A relationship import: one relationship per line. */
  import: 16 * 1024 * 1024,
} as const;

const SchemaBody = Type.Object({ schema: Type.String({ minLength: 1, maxLength: 1_000_000 }) }, { additionalProperties: false });
const WriteBody = Type.Object(
  {
    updates: Type.Array(
      Type.Object(
        {
          operation: Type.Union([Type.Literal('create'), Type.Literal('touch'), Type.Literal('delete')]),
          relationship: Type.String({ minLength: 1, maxLength: 4096, description: 'SpiceDB syntax: `type:id#rel@stype:sid[#srel][caveat[:{json}]][expiration:RFC3339]`' }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 1000 },
    ),
    preconditions: Preconditions,
  },
  { additionalProperties: false },
);
const ReadBody = Type.Object(
  { filter: Filter, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), after: Type.Optional(Type.String({ maxLength: 5000 })) },
  { additionalProperties: false },
);
const DeleteBody = Type.Object({ filter: Filter, preconditions: Preconditions }, { additionalProperties: false });
const Explain = Type.Optional(Type.Boolean({ description: 'Also return why: the granting path, the exclusion, or the missing caveat parameters' }));
const CheckItem = Type.Object(
  { resource: ObjectText, permission: Type.String({ minLength: 1, maxLength: 64 }), subject: SubjectText, context: Context, entities: Entities, explain: Explain },
  { additionalProperties: false },
);
const CheckBody = Type.Object(
  {
    resource: ObjectText,
    permission: Type.String({ minLength: 1, maxLength: 64 }),
    subject: SubjectText,
    context: Context,
    entities: Entities,
    consistency: ConsistencyBody,
    explain: Explain,
  },
  { additionalProperties: false },
);
const ExpandBody = Type.Object(
  {
    resource: ObjectText,
    permission: Type.String({ minLength: 1, maxLength: 64 }),
    depth: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
    context: Context,
    consistency: ConsistencyBody,
  },
  { additionalProperties: false },
);
const BulkBody = Type.Object({ items: Type.Array(CheckItem, { minItems: 1, maxItems: 1000 }), consistency: ConsistencyBody }, { additionalProperties: false });
const LookupResourcesBody = Type.Object(
  { resource_type: Type.String({ minLength: 1, maxLength: 200 }), permission: Type.String({ minLength: 1, maxLength: 64 }), subject: SubjectText, context: Context, consistency: ConsistencyBody },
  { additionalProperties: false },
);
const LookupSubjectsBody = Type.Object(
  {
    resource: ObjectText,
    permission: Type.String({ minLength: 1, maxLength: 64 }),
    subject_type: Type.String({ minLength: 1, maxLength: 200 }),
    subject_relation: Type.Optional(Type.String({ maxLength: 64 })),
    context: Context,
    consistency: ConsistencyBody,
  },
  { additionalProperties: false },
);
const CheckAnswer = Type.Object({
  permissionship: Type.Union([Type.Literal('allowed'), Type.Literal('denied'), Type.Literal('conditional')]),
  missing: Type.Optional(Type.Array(Type.String())),
  policy: Type.Optional(Type.String({ description: 'With Cedar policies: the rule that decided' })),
  explanation: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'With `explain: true`' })),
});
const PoliciesBody = Type.Object({ policies: Type.String({ maxLength: 1_000_000, description: 'Cedar policy text; empty removes every policy' }) }, { additionalProperties: false });

const filterOf = (f: Static<typeof Filter>) => ({
  resourceType: f.resource_type,
  resourceId: f.resource_id,
  relation: f.relation,
  subjectType: f.subject_type,
  subjectId: f.subject_id,
  subjectRelation: f.subject_relation,
});
function consistencyOf(c: Static<typeof ConsistencyBody> | undefined): Consistency | undefined {
  if (c === undefined) return undefined;
  if (c.mode !== 'at_least_as_fresh') return { mode: c.mode };
  if (c.token === undefined) throw authzServiceErrors.create('AUTHZ_CONSISTENCY_TOKEN_REQUIRED', {});
  return { mode: c.mode, token: c.token };
}

/**
 * The permission service API under /api/v1/tenants/{t}/authz. Checks need `authz:check`,
 * writes `authz:write`, the schema `authz:admin` (`admin` grants all), so a service can be
 * allowed to ask without being able to change anything.
 */
export async function authzRoutes(app: FastifyInstance, { authz, tenants, audit, requireScope, clock }: AuthzRoutesDeps) {
  const check = requireScope('authz:check', 'authz:write', 'authz:admin');
  const write = requireScope('authz:write', 'authz:admin');
  const admin = requireScope('authz:admin');

  /**
   * Changes: written in the change's own transaction (admin/atomic.ts). Decisions: the answer
   * leaves only once its event is written (GATEHOUSE_AUDIT_MODE).
   */
  function eventOf(request: FastifyRequest, tenantId: string, action: AuditAction, target: string, result: 'success' | 'failure', details: Record<string, unknown>): AuditEvent {
    return { tenantId, time: clock(), actor: request.admin?.actor ?? null, action, target, result, requestId: String(request.id), ip: request.ip, details };
  }
  function record(request: FastifyRequest, tenantId: string, action: AuditAction, target: string, result: 'success' | 'failure', details: Record<string, unknown>): Promise<void> {
    return audit.recordDurable(eventOf(request, tenantId, action, target, result, details));
  }

  /** The first role of a tenant adds the RBAC definitions to its schema: a schema change like any other (authz:admin). */
  async function recordRbacSchema(request: FastifyRequest, tenantId: string, result: { schemaToken?: string }): Promise<void> {
    if (result.schemaToken) await record(request, tenantId, 'authz.schema_written', 'schema', 'success', { token: result.schemaToken, reason: 'rbac definitions added' });
  }

  app.put<{ Params: Static<typeof TenantParams>; Body: Static<typeof SchemaBody> }>(
    '/tenants/:tenant/authz/schema',
    { onRequest: admin, bodyLimit: BODY_LIMITS.text, schema: { tags: ['authz'], description: 'Replaces the SpiceDB-language schema. Refused with line and column when invalid, and with the count when stored relationships would no longer fit.', params: TenantParams, body: SchemaBody, response: { 200: Type.Object({ token: Type.String() }), ...errors } } },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const result = await authz.writeSchema(tenant, request.body.schema);
      await record(request, tenant, 'authz.schema_written', 'schema', 'success', { token: result.token });
      return result;
    },
  );

  app.get<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant/authz/schema',
    { onRequest: check, schema: { tags: ['authz'], params: TenantParams, response: { 200: Type.Object({ schema: Type.String() }), ...errors } } },
    async (request) => {
      await tenants.get(request.params.tenant);
      const stored = await authz.readSchema(request.params.tenant);
      return { schema: stored?.text ?? '' };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof WriteBody> }>(
    '/tenants/:tenant/authz/relationships/write',
    { onRequest: write, bodyLimit: BODY_LIMITS.batch, schema: { tags: ['authz'], description: 'Creates, touches and deletes relationships in one transaction once every precondition holds. Returns a consistency token. The RBAC types (`gatehouse/*`, as resource or subject) are refused with 403 `AUTHZ_RESERVED_TYPE`: use the RBAC endpoints.', params: TenantParams, body: WriteBody, response: { 200: Type.Object({ token: Type.String() }), ...errors } } },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const updates = request.body.updates.map((u) => ({ operation: u.operation, relationship: parseRelationship(u.relationship) }));
      const result = await authz.writeRelationships(tenant, updates, (request.body.preconditions ?? []).map((p) => ({ operation: p.operation, filter: filterOf(p.filter) })));
      await record(request, tenant, 'authz.relationships_written', `${updates.length} updates`, 'success', { token: result.token, updates: updates.slice(0, 20).map((u) => `${u.operation} ${formatRelationship(u.relationship)}`) });
      return result;
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: { relationships: string } }>(
    '/tenants/:tenant/authz/relationships/import',
    {
      onRequest: write,
      // Not one transaction: each chunk commits with its own audit event (see importRelationships).
      config: { transaction: false },
      // Imports are large by nature: 16 MiB here, the server-wide limit elsewhere.
      bodyLimit: BODY_LIMITS.import,
      schema: {
        tags: ['authz'],
        description:
          'Bulk import: one relationship per line in SpiceDB syntax (blank, `//` and `#` lines ignored). Every line is parsed and checked against the schema (and refused for the reserved `gatehouse/*` types) before anything is written; then the lines are touched in transactions of 2000, yielding to other requests between them. A database failure midway leaves the earlier transactions written (a retry with the same text is idempotent).',
        params: TenantParams,
        body: Type.Object({ relationships: Type.String({ maxLength: BODY_LIMITS.import }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ imported: Type.Integer(), token: Type.String() }), ...errors },
      },
    },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      // Each chunk's event is written in the chunk's own transaction.
      return authz.importRelationships(tenant, request.body.relationships, ({ index, written, token }) =>
        record(request, tenant, 'authz.relationships_written', `import of ${written}`, 'success', { import_chunk: index, imported: written, token }),
      );
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof ReadBody> }>(
    '/tenants/:tenant/authz/relationships/read',
    { onRequest: write, config: { transaction: false }, schema: { tags: ['authz'], params: TenantParams, body: ReadBody, response: { 200: Type.Object({ relationships: Type.Array(Type.String()), next: Type.Union([Type.String(), Type.Null()]) }), ...errors } } },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const limit = request.body.limit ?? 100;
      const found = await authz.readRelationships(tenant, filterOf(request.body.filter), { limit, after: request.body.after });
      const last = found[found.length - 1];
      return {
        relationships: found.map(formatRelationship),
        next: found.length === limit && last ? JSON.stringify([last.resourceId, last.relation, last.subjectType, last.subjectId, last.subjectRelation ?? '...']) : null,
      };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof DeleteBody> }>(
    '/tenants/:tenant/authz/relationships/delete',
    { onRequest: write, schema: { tags: ['authz'], params: TenantParams, body: DeleteBody, response: { 200: Type.Object({ token: Type.String(), deleted: Type.Integer() }), ...errors } } },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const result = await authz.deleteRelationships(tenant, filterOf(request.body.filter), (request.body.preconditions ?? []).map((p) => ({ operation: p.operation, filter: filterOf(p.filter) })));
      await record(request, tenant, 'authz.relationships_deleted', request.body.filter.resource_type, 'success', { token: result.token, deleted: result.deleted });
      return result;
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof CheckBody> }>(
    '/tenants/:tenant/authz/check',
    {
      onRequest: check,
      config: { transaction: false },
      schema: {
        tags: ['authz'],
        description: 'May the subject do the permission on the resource? `conditional` lists the caveat parameters that would decide it.',
        params: TenantParams,
        body: CheckBody,
        response: { 200: Type.Intersect([CheckAnswer, Type.Object({ token: Type.String() })]), ...errors },
      },
    },
    // Not async: the hot path (tenant known, snapshot at hand) answers without a single promise.
    (request) => (tenants.known(request.params.tenant) ? decideCheck(request) : tenants.get(request.params.tenant).then(() => decideCheck(request))),
  );

  function decideCheck(request: FastifyRequest<{ Params: Static<typeof TenantParams>; Body: Static<typeof CheckBody> }>) {
    const { tenant } = request.params;
    const b = request.body;
    const decision = { resource: parseObject(b.resource), permission: b.permission, subject: parseSubject(b.subject), context: b.context, entities: b.entities, explain: b.explain };
    const consistency = consistencyOf(b.consistency);
    const answered = (result: Decision & { token: string }) => {
      const event = eventOf(request, tenant, 'authz.check', `${b.resource}#${b.permission}@${b.subject}`, result.permissionship === 'allowed' ? 'success' : 'failure', {
        permissionship: result.permissionship,
        token: result.token,
        ...(result.policy ? { policy: result.policy } : {}),
      });
      // Durable: the answer waits for its event's batch. Async keeps the promise-free hot path.
      if (audit.mode === 'async') {
        audit.record(event);
        return result;
      }
      return audit.recordDurable(event).then(() => result);
    };
    const now = authz.checkNow(tenant, decision, consistency);
    return now ? answered(now) : authz.check(tenant, decision, consistency).then(answered);
  }

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof BulkBody> }>(
    '/tenants/:tenant/authz/check/bulk',
    { onRequest: check, config: { transaction: false }, bodyLimit: BODY_LIMITS.batch, schema: { tags: ['authz'], params: TenantParams, body: BulkBody, response: { 200: Type.Object({ results: Type.Array(CheckAnswer), token: Type.String() }), ...errors } } },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const items = request.body.items;
      const { results, token } = await authz.checkBulk(
        tenant,
        items.map((item) => ({ resource: parseObject(item.resource), permission: item.permission, subject: parseSubject(item.subject), context: item.context, entities: item.entities, explain: item.explain })),
        consistencyOf(request.body.consistency),
      );
      // One batch for all of them (group commit), not one write each.
      await Promise.all(
        results.map((result, i) => {
          const item = items[i]!;
          return record(request, tenant, 'authz.check', `${item.resource}#${item.permission}@${item.subject}`, result.permissionship === 'allowed' ? 'success' : 'failure', { permissionship: result.permissionship, token, bulk: true });
        }),
      );
      return { results, token };
    },
  );

  const Lookup = Type.Object({ allowed: Type.Array(Type.String()), conditional: Type.Array(Type.String()), token: Type.String() });
  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof LookupResourcesBody> }>(
    '/tenants/:tenant/authz/lookup-resources',
    { onRequest: check, config: { transaction: false }, schema: { tags: ['authz'], description: 'Ids of every resource of the type on which the subject has the permission.', params: TenantParams, body: LookupResourcesBody, response: { 200: Lookup, ...errors } } },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const b = request.body;
      const found = await authz.lookupResources(tenant, { resourceType: b.resource_type, permission: b.permission, subject: parseSubject(b.subject), context: b.context }, consistencyOf(b.consistency));
      await record(request, tenant, 'authz.lookup', `${b.resource_type}#${b.permission}@${b.subject}`, 'success', { found: found.allowed.length, conditional: found.conditional.length, token: found.token });
      return found;
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof LookupSubjectsBody> }>(
    '/tenants/:tenant/authz/lookup-subjects',
    { onRequest: check, config: { transaction: false }, schema: { tags: ['authz'], description: 'Ids of every subject of the type with the permission on the resource (`*` when the resource is public).', params: TenantParams, body: LookupSubjectsBody, response: { 200: Lookup, ...errors } } },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const b = request.body;
      const found = await authz.lookupSubjects(
        tenant,
        { resource: parseObject(b.resource), permission: b.permission, subjectType: b.subject_type, subjectRelation: b.subject_relation, context: b.context },
        consistencyOf(b.consistency),
      );
      await record(request, tenant, 'authz.lookup', `${b.resource}#${b.permission}@${b.subject_type}`, 'success', { found: found.allowed.length, conditional: found.conditional.length, token: found.token });
      return found;
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof ExpandBody> }>(
    '/tenants/:tenant/authz/expand',
    { onRequest: check, config: { transaction: false }, schema: { tags: ['authz'], description: 'The tree of subject sets behind a permission (one level of usersets by default).', params: TenantParams, body: ExpandBody, response: { 200: Type.Object({ tree: Type.Object({}, { additionalProperties: true }), token: Type.String() }), ...errors } } },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const b = request.body;
      const { engine, token } = await authz.engineFor(tenant, consistencyOf(b.consistency));
      const tree = engine.expand({ resource: parseObject(b.resource), permission: b.permission, depth: b.depth, context: b.context });
      // Who can reach a resource is as sensitive as a lookup: audited like one.
      await record(request, tenant, 'authz.expand', `${b.resource}#${b.permission}`, 'success', { depth: b.depth ?? 1, token });
      return { tree, token };
    },
  );

  app.put<{ Params: Static<typeof TenantParams>; Body: Static<typeof PoliciesBody> }>(
    '/tenants/:tenant/authz/policies',
    {
      onRequest: admin,
      bodyLimit: BODY_LIMITS.text,
      schema: {
        tags: ['authz'],
        description: 'Replaces the Cedar policies. A decision is allowed when the graph or a permit allows it and no forbid applies; any policy evaluation error denies.',
        params: TenantParams,
        body: PoliciesBody,
        response: { 200: Type.Object({ token: Type.String() }), ...errors },
      },
    },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const result = await authz.writePolicies(tenant, request.body.policies);
      await record(request, tenant, 'authz.policies_written', 'policies', 'success', { token: result.token });
      return result;
    },
  );

  app.get<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant/authz/policies',
    { onRequest: check, schema: { tags: ['authz'], params: TenantParams, response: { 200: Type.Object({ policies: Type.String() }), ...errors } } },
    async (request) => {
      await tenants.get(request.params.tenant);
      return { policies: (await authz.readPolicies(request.params.tenant))?.text ?? '' };
    },
  );

  // RBAC without a schema: roles with permissions, assigned to users and groups.
  const rbac = createRbac(authz);
  const RoleParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), role: Type.String({ maxLength: 200 }) });
  const GroupParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), group: Type.String({ maxLength: 200 }) });
  const Membership = Type.Object({ subject: SubjectText, remove: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
  const Token = Type.Object({ token: Type.String() });

  app.get<{ Params: Static<typeof TenantParams> }>(
    '/tenants/:tenant/authz/rbac/roles',
    { onRequest: check, schema: { tags: ['rbac'], params: TenantParams, response: { 200: Type.Object({ roles: Type.Array(Type.Object({ role: Type.String(), permissions: Type.Array(Type.String()) })) }), ...errors } } },
    async (request) => {
      await tenants.get(request.params.tenant);
      return { roles: await rbac.listRoles(request.params.tenant) };
    },
  );

  app.put<{ Params: Static<typeof RoleParams>; Body: { permissions: string[] } }>(
    '/tenants/:tenant/authz/rbac/roles/:role',
    {
      onRequest: admin,
      schema: {
        tags: ['rbac'],
        description: 'Creates a role or replaces its permissions (at least one; DELETE the role to take all away). The first role adds the RBAC definitions to the tenant schema (audited as a schema write); no other RBAC call changes the schema.',
        params: RoleParams,
        body: Type.Object({ permissions: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 500 }) }, { additionalProperties: false }),
        response: { 200: Token, ...errors },
      },
    },
    async (request) => {
      const { tenant, role } = request.params;
      await tenants.get(tenant);
      const result = await rbac.setRole(tenant, role, request.body.permissions);
      await recordRbacSchema(request, tenant, result);
      await record(request, tenant, 'authz.relationships_written', `role ${role}`, 'success', { permissions: request.body.permissions, token: result.token });
      return result;
    },
  );

  app.delete<{ Params: Static<typeof RoleParams> }>(
    '/tenants/:tenant/authz/rbac/roles/:role',
    { onRequest: admin, schema: { tags: ['rbac'], params: RoleParams, response: { 200: Token, ...errors } } },
    async (request) => {
      const { tenant, role } = request.params;
      await tenants.get(tenant);
      const result = await rbac.deleteRole(tenant, role);
      await record(request, tenant, 'authz.relationships_deleted', `role ${role}`, 'success', { token: result.token });
      return { token: result.token };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: { role: string; subject: string; remove?: boolean } }>(
    '/tenants/:tenant/authz/rbac/assignments',
    {
      onRequest: write,
      schema: {
        tags: ['rbac'],
        description: 'Assigns a role to `user:id` or `gatehouse/group:id#member` (or removes it with `remove: true`).',
        params: TenantParams,
        body: Type.Object({ role: Type.String({ minLength: 1, maxLength: 200 }), subject: SubjectText, remove: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 200: Token, ...errors },
      },
    },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const { role, subject, remove } = request.body;
      const result = await rbac.assign(tenant, role, parseSubject(subject), remove);
      await record(request, tenant, 'authz.relationships_written', `role ${role}`, 'success', { subject, remove: Boolean(remove), token: result.token });
      return result;
    },
  );

  app.post<{ Params: Static<typeof GroupParams>; Body: Static<typeof Membership> }>(
    '/tenants/:tenant/authz/rbac/groups/:group/members',
    {
      onRequest: write,
      schema: {
        tags: ['rbac'],
        description: 'Adds `user:id` or `gatehouse/group:id#member` to the group (or removes it with `remove: true`). Never changes the schema: refused with 409 `AUTHZ_RBAC_NOT_INSTALLED` until a role exists.',
        params: GroupParams,
        body: Membership,
        response: { 200: Token, ...errors },
      },
    },
    async (request) => {
      const { tenant, group } = request.params;
      await tenants.get(tenant);
      const result = await rbac.addToGroup(tenant, group, parseSubject(request.body.subject), request.body.remove);
      await record(request, tenant, 'authz.relationships_written', `group ${group}`, 'success', { subject: request.body.subject, remove: Boolean(request.body.remove), token: result.token });
      return result;
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: { subject: string; permission: string; consistency?: Static<typeof ConsistencyBody> } }>(
    '/tenants/:tenant/authz/rbac/check',
    {
      onRequest: check,
      config: { transaction: false },
      schema: {
        tags: ['rbac'],
        description: 'Does any role of the subject (directly or through groups) carry the permission?',
        params: TenantParams,
        body: Type.Object({ subject: SubjectText, permission: Type.String({ minLength: 1, maxLength: 200 }), consistency: ConsistencyBody }, { additionalProperties: false }),
        response: { 200: Type.Intersect([CheckAnswer, Token]), ...errors },
      },
    },
    async (request) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const { subject, permission } = request.body;
      const result = await rbac.check(tenant, parseSubject(subject), permission, consistencyOf(request.body.consistency));
      await record(request, tenant, 'authz.check', `rbac ${permission}@${subject}`, result.permissionship === 'allowed' ? 'success' : 'failure', { permissionship: result.permissionship, token: result.token });
      return result;
    },
  );
}
