import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { Type, type Static } from 'typebox';
import type { AuditAction, AuditWriter } from '../audit/index.js';
import type { SessionService } from '../oauth/index.js';
import type { TenantService } from '../tenants/index.js';
import type { User, UserService } from './users.js';

type Guard = (...scopes: ('admin' | 'admin:read' | 'users:read' | 'users:write')[]) => onRequestAsyncHookHandler;

export interface UserRoutesDeps {
  users: UserService;
  sessions: SessionService;
  tenants: TenantService;
  audit: AuditWriter;
  requireScope: Guard;
  clock: () => number;
}

const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Object({}, { additionalProperties: true }) });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const TenantParams = Type.Object({ tenant: Type.String({ maxLength: 63 }) });
const UserParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), user: Type.String({ maxLength: 64 }) });
const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Optional(Type.Union([Type.Null(), schema]));

// Null first in the unions: Ajv coerces types, and would read null as "" under a string tried first.
const Profile = {
  name: Nullable(Type.String({ maxLength: 256 })),
  given_name: Nullable(Type.String({ maxLength: 256 })),
  family_name: Nullable(Type.String({ maxLength: 256 })),
  picture: Nullable(Type.String({ maxLength: 2048, description: 'https URL (http only for localhost)' })),
  locale: Nullable(Type.String({ maxLength: 35, description: 'BCP 47 language tag, e.g. `en` or `pt-BR`' })),
};
const Email = Type.String({ minLength: 1, maxLength: 254 });
const CreateUser = Type.Object(
  {
    email: Email,
    email_verified: Type.Optional(Type.Boolean()),
    ...Profile,
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Checked against the password policy; stored as an Argon2id hash only' })),
  },
  { additionalProperties: false, examples: [{ email: 'ann@acme.example', email_verified: true, name: 'Ann Example', password: 'correct horse battery staple' }] },
);
const UpdateUser = Type.Object(
  { email: Type.Optional(Email), email_verified: Type.Optional(Type.Boolean()), ...Profile },
  { additionalProperties: false, minProperties: 1 },
);
const ResetPassword = Type.Object({ password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    email_prefix: Type.Optional(Type.String({ maxLength: 254 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    after: Type.Optional(Type.String({ maxLength: 400, description: '`next_after` of the previous page' })),
  },
  { additionalProperties: false },
);
const UserBody = Type.Object({
  id: Type.String(),
  email: Type.String(),
  email_verified: Type.Boolean(),
  name: Type.Union([Type.Null(), Type.String()]),
  given_name: Type.Union([Type.Null(), Type.String()]),
  family_name: Type.Union([Type.Null(), Type.String()]),
  picture: Type.Union([Type.Null(), Type.String()]),
  locale: Type.Union([Type.Null(), Type.String()]),
  disabled: Type.Boolean(),
  has_password: Type.Boolean(),
  password_changed_at: Type.Union([Type.Null(), Type.String({ format: 'date-time' })]),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

const iso = (ms: number) => new Date(ms).toISOString();

/** The wire form of a user (admin API and `--json`): never the password hash. */
export const userView = (u: User) => ({
  id: u.id,
  email: u.email,
  email_verified: u.emailVerified,
  name: u.name,
  given_name: u.givenName,
  family_name: u.familyName,
  picture: u.picture,
  locale: u.locale,
  disabled: u.disabled,
  has_password: u.hasPassword,
  password_changed_at: u.passwordChangedAt === null ? null : iso(u.passwordChangedAt),
  created_at: iso(u.createdAt),
  updated_at: iso(u.updatedAt),
});

const profileOf = (b: Static<typeof UpdateUser>) => ({ name: b.name, givenName: b.given_name, familyName: b.family_name, picture: b.picture, locale: b.locale });

/**
 * Users of a tenant under /api/v1/tenants/{t}/users: reads need `admin:read`, writes `admin`.
 * Every write is audited with the user id as target; emails, profile values and passwords
 * stay out of the audit trail (only the names of changed fields go in).
 */
export async function userRoutes(app: FastifyInstance, { users, sessions, tenants, audit, requireScope, clock }: UserRoutesDeps) {
  // A tenant's own gatehouse-tenant token manages that tenant's users too.
  const read = requireScope('admin:read', 'users:read', 'users:write');
  const write = requireScope('admin', 'users:write');

  /** Written in the change's own transaction (admin/atomic.ts): the two commit together. */
  function record(request: FastifyRequest, tenantId: string, action: AuditAction, target: string, details?: Record<string, unknown>): Promise<void> {
    return audit.recordDurable({ tenantId, time: clock(), actor: request.admin?.actor ?? null, action, target, result: 'success', requestId: String(request.id), ip: request.ip, details: details ?? null });
  }

  app.get<{ Params: Static<typeof TenantParams>; Querystring: Static<typeof ListQuery> }>(
    '/tenants/:tenant/users',
    {
      onRequest: read,
      schema: {
        tags: ['users'],
        description: 'Users ordered by email. `email_prefix` is compared case-insensitively; page with `after` = the `next_after` of the previous page.',
        params: TenantParams,
        querystring: ListQuery,
        response: { 200: Type.Object({ users: Type.Array(UserBody), next_after: Type.Union([Type.Null(), Type.String()]) }), ...errors },
      },
    },
    async (request) => {
      await tenants.get(request.params.tenant);
      const { email_prefix: emailPrefix, limit, after } = request.query;
      const page = await users.list(request.params.tenant, { emailPrefix, limit, after });
      return { users: page.users.map(userView), next_after: page.next };
    },
  );

  app.post<{ Params: Static<typeof TenantParams>; Body: Static<typeof CreateUser> }>(
    '/tenants/:tenant/users',
    {
      onRequest: write,
      schema: {
        tags: ['users'],
        description: 'Creates a user. The email is unique in the tenant, compared case-insensitively (409 `USERS_EMAIL_TAKEN`). Without `password` the user has none yet.',
        params: TenantParams,
        body: CreateUser,
        response: { 201: UserBody, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      await tenants.get(tenant);
      const b = request.body;
      const user = await users.create(tenant, { email: b.email, emailVerified: b.email_verified, ...profileOf(b), password: b.password });
      await record(request, tenant, 'user.created', user.id, { email_verified: user.emailVerified, has_password: user.hasPassword });
      return reply.code(201).send(userView(user));
    },
  );

  app.get<{ Params: Static<typeof UserParams> }>(
    '/tenants/:tenant/users/:user',
    { onRequest: read, schema: { tags: ['users'], params: UserParams, response: { 200: UserBody, ...errors } } },
    async (request) => {
      await tenants.get(request.params.tenant);
      return userView(await users.get(request.params.tenant, request.params.user));
    },
  );

  app.patch<{ Params: Static<typeof UserParams>; Body: Static<typeof UpdateUser> }>(
    '/tenants/:tenant/users/:user',
    {
      onRequest: write,
      schema: {
        tags: ['users'],
        description: 'Changes the email or profile claims; absent fields stay, `null` clears one. A changed email is unverified unless `email_verified` is sent with it.',
        params: UserParams,
        body: UpdateUser,
        response: { 200: UserBody, ...errors },
      },
    },
    async (request) => {
      const { tenant, user } = request.params;
      await tenants.get(tenant);
      const b = request.body;
      const updated = await users.update(tenant, user, { email: b.email, emailVerified: b.email_verified, ...profileOf(b) });
      await record(request, tenant, 'user.updated', user, { changed: Object.keys(b) });
      return userView(updated);
    },
  );

  app.post<{ Params: Static<typeof UserParams> }>(
    '/tenants/:tenant/users/:user/disable',
    { onRequest: write, schema: { tags: ['users'], description: 'The user can no longer sign in; their sessions end and their refresh tokens are revoked.', params: UserParams, response: { 200: UserBody, ...errors } } },
    async (request) => {
      const { tenant, user } = request.params;
      await tenants.get(tenant);
      const disabled = await users.disable(tenant, user);
      await record(request, tenant, 'user.disabled', user);
      return userView(disabled);
    },
  );

  app.post<{ Params: Static<typeof UserParams> }>(
    '/tenants/:tenant/users/:user/enable',
    { onRequest: write, schema: { tags: ['users'], params: UserParams, response: { 200: UserBody, ...errors } } },
    async (request) => {
      const { tenant, user } = request.params;
      await tenants.get(tenant);
      const enabled = await users.enable(tenant, user);
      await record(request, tenant, 'user.enabled', user);
      return userView(enabled);
    },
  );

  app.post<{ Params: Static<typeof UserParams>; Body: Static<typeof ResetPassword> }>(
    '/tenants/:tenant/users/:user/password',
    {
      onRequest: write,
      schema: {
        tags: ['users'],
        description: 'Sets a new password (checked against the password policy). The user\'s sessions end and their refresh tokens are revoked.',
        params: UserParams,
        body: ResetPassword,
        response: { 200: UserBody, ...errors },
      },
    },
    async (request) => {
      const { tenant, user } = request.params;
      await tenants.get(tenant);
      const updated = await users.setPassword(tenant, user, request.body.password);
      await record(request, tenant, 'user.password_reset', user);
      return userView(updated);
    },
  );

  app.delete<{ Params: Static<typeof UserParams> }>(
    '/tenants/:tenant/users/:user',
    { onRequest: write, schema: { tags: ['users'], description: 'Deletes the user, ends their sessions and revokes their refresh tokens. The id is never reused.', params: UserParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { tenant, user } = request.params;
      await tenants.get(tenant);
      await users.delete(tenant, user);
      await record(request, tenant, 'user.deleted', user);
      return reply.code(204).send();
    },
  );

  const SessionBody = Type.Object({
    id: Type.String(),
    signed_in_at: Type.Union([Type.Null(), Type.String({ format: 'date-time' })]),
    expires_at: Type.Union([Type.Null(), Type.String({ format: 'date-time' })]),
    clients: Type.Array(Type.String()),
  });
  const SessionParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), user: Type.String({ maxLength: 64 }), session: Type.String({ maxLength: 200 }) });

  app.get<{ Params: Static<typeof UserParams> }>(
    '/tenants/:tenant/users/:user/sessions',
    { onRequest: read, schema: { tags: ['users'], description: "The user's sign-in sessions, newest first.", params: UserParams, response: { 200: Type.Object({ sessions: Type.Array(SessionBody) }), ...errors } } },
    async (request) => {
      const { tenant, user } = request.params;
      await tenants.get(tenant);
      await users.get(tenant, user);
      const list = await sessions.list(tenant, user);
      return {
        sessions: list.map((s) => ({ id: s.id, signed_in_at: s.signedInAt === null ? null : iso(s.signedInAt), expires_at: s.expiresAt === null ? null : iso(s.expiresAt), clients: s.clients })),
      };
    },
  );

  app.delete<{ Params: Static<typeof UserParams> }>(
    '/tenants/:tenant/users/:user/sessions',
    {
      onRequest: write,
      schema: { tags: ['users'], description: 'Sign out everywhere: ends every session of the user and revokes their grants and refresh tokens.', params: UserParams, response: { 204: Type.Null(), ...errors } },
    },
    async (request, reply) => {
      const { tenant, user } = request.params;
      await tenants.get(tenant);
      await users.get(tenant, user);
      const ended = await sessions.endAll(tenant, user);
      await record(request, tenant, 'user.signed_out_everywhere', user, { rows: ended });
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: Static<typeof SessionParams> }>(
    '/tenants/:tenant/users/:user/sessions/:session',
    { onRequest: write, schema: { tags: ['users'], description: 'Ends one session of the user and revokes the grants made in it.', params: SessionParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { tenant, user, session } = request.params;
      await tenants.get(tenant);
      await sessions.end(tenant, user, session);
      await record(request, tenant, 'user.session_ended', user, { session });
      return reply.code(204).send();
    },
  );

  const GrantBody = Type.Object({
    id: Type.String(),
    client_id: Type.String(),
    scopes: Type.Array(Type.String()),
    resources: Type.Record(Type.String(), Type.Array(Type.String())),
    expires_at: Type.Union([Type.Null(), Type.String({ format: 'date-time' })]),
  });
  const GrantParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), user: Type.String({ maxLength: 64 }), grant: Type.String({ maxLength: 200 }) });

  app.get<{ Params: Static<typeof UserParams> }>(
    '/tenants/:tenant/users/:user/grants',
    { onRequest: read, schema: { tags: ['users'], description: 'What the user allowed each application (remembered consents).', params: UserParams, response: { 200: Type.Object({ grants: Type.Array(GrantBody) }), ...errors } } },
    async (request) => {
      const { tenant, user } = request.params;
      await tenants.get(tenant);
      await users.get(tenant, user);
      const grants = await sessions.grants(tenant, user);
      return { grants: grants.map((g) => ({ id: g.id, client_id: g.clientId, scopes: g.scopes, resources: g.resources, expires_at: g.expiresAt === null ? null : iso(g.expiresAt) })) };
    },
  );

  app.delete<{ Params: Static<typeof GrantParams> }>(
    '/tenants/:tenant/users/:user/grants/:grant',
    {
      onRequest: write,
      schema: { tags: ['users'], description: 'Takes a consent back: the grant, and every code and token issued under it. The application asks for consent again.', params: GrantParams, response: { 204: Type.Null(), ...errors } },
    },
    async (request, reply) => {
      const { tenant, user, grant } = request.params;
      await tenants.get(tenant);
      await sessions.revokeGrant(tenant, user, grant);
      await record(request, tenant, 'user.grant_revoked', user, { grant });
      return reply.code(204).send();
    },
  );
}
