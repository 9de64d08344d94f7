import { defineErrors } from '../errors.js';
import type { AuthzService } from './service.js';
import type { RelationshipUpdate } from './store-types.js';
import type { Relationship, SubjectRef } from './types.js';

export const rbacErrors = defineErrors({
  AUTHZ_RBAC_NAME_INVALID: { status: 400, message: '"{name}" is not a valid {kind} name: use 1-200 of a-z A-Z 0-9 _ . / | = + -' },
  AUTHZ_RBAC_SUBJECT_INVALID: { status: 400, message: 'Roles can be assigned to users (`user:id`) and groups (`gatehouse/group:id#member`), not "{subject}"' },
  AUTHZ_RBAC_ROLE_NOT_FOUND: { status: 404, message: 'Role "{role}" does not exist; a role exists once it has a permission (PUT …/authz/rbac/roles/{role})' },
  AUTHZ_RBAC_ROLE_EMPTY: { status: 400, message: 'A role needs at least one permission; delete role "{role}" to take all of them away' },
  AUTHZ_RBAC_NOT_INSTALLED: {
    status: 409,
    message: 'RBAC is not set up in tenant "{tenant}": create a role first (PUT …/authz/rbac/roles/{role} with authz:admin), which adds the RBAC definitions to the schema',
  },
});

// Role, group and permission names become object ids, so they use the id charset.
const NAME = /^[a-zA-Z0-9_./|=+-]{1,200}$/;
const ROLE = 'gatehouse/role';
const GROUP = 'gatehouse/group';
// (`permission` is a keyword of the schema language, so the type is called capability.)
const PERMISSION = 'gatehouse/capability';

/**
 * The definitions that hold RBAC in the same engine as everything else. A tenant without a
 * schema gets exactly these; a tenant with one gets those it lacks added (and `user`).
 */
const DEFINITIONS: [string, string][] = [
  [GROUP, `definition ${GROUP} {\n  relation member: user | ${GROUP}#member\n}\n`],
  [ROLE, `definition ${ROLE} {\n  relation member: user | ${GROUP}#member\n}\n`],
  [PERMISSION, `definition ${PERMISSION} {\n  relation granted: ${ROLE}#member\n}\n`],
];

function checkName(name: string, kind: string) {
  if (!NAME.test(name)) throw rbacErrors.create('AUTHZ_RBAC_NAME_INVALID', { name, kind });
}

function checkSubject(subject: SubjectRef): SubjectRef {
  if (subject.type === 'user' && subject.relation === undefined && subject.id !== '*') return subject;
  if (subject.type === GROUP && subject.relation === 'member') return subject;
  throw rbacErrors.create('AUTHZ_RBAC_SUBJECT_INVALID', { subject: `${subject.type}:${subject.id}${subject.relation ? `#${subject.relation}` : ''}` });
}

const rel = (resourceType: string, resourceId: string, relation: string, subject: SubjectRef): Relationship => ({
  resourceType,
  resourceId,
  relation,
  subjectType: subject.type,
  subjectId: subject.id,
  ...(subject.relation ? { subjectRelation: subject.relation } : {}),
});

/**
 * Roles, role permissions and role assignments without writing a schema: stored as
 * relationships (`gatehouse/capability:P#granted@gatehouse/role:R#member`,
 * `gatehouse/role:R#member@user:U`, groups nest) and answered by the same engine.
 */
export function createRbac(authz: AuthzService) {
  /** Whether the tenant's schema holds every RBAC definition (read from the parsed schema, not its text). */
  async function hasRbac(tenantId: string): Promise<boolean> {
    const schema = await authz.schemaOf(tenantId);
    return schema !== undefined && DEFINITIONS.every(([type]) => schema.definitions.has(type));
  }

  /**
   * Adds the RBAC definitions the tenant schema lacks; the schema write's token when it wrote
   * one. Only role creation (authz:admin) calls this: no authz:write path changes the schema.
   */
  async function ensureSchema(tenantId: string): Promise<string | undefined> {
    const schema = await authz.schemaOf(tenantId);
    const missing = DEFINITIONS.filter(([type]) => !schema?.definitions.has(type));
    if (missing.length === 0) return undefined;
    const base = schema ? ((await authz.readSchema(tenantId))?.text ?? '') : '';
    const user = schema?.definitions.has('user') ? '' : '\ndefinition user {}\n';
    return (await authz.writeSchema(tenantId, `${base}${user}${missing.map(([, text]) => `\n${text}`).join('')}`)).token;
  }

  async function requireRbac(tenantId: string): Promise<void> {
    if (!(await hasRbac(tenantId))) throw rbacErrors.create('AUTHZ_RBAC_NOT_INSTALLED', { tenant: tenantId });
  }

  const grantsOf = (role: string) => ({ resourceType: PERMISSION, relation: 'granted', subjectType: ROLE, subjectId: role, subjectRelation: 'member' });

  async function requireRole(tenantId: string, role: string): Promise<void> {
    checkName(role, 'role');
    const exists = (await hasRbac(tenantId)) && (await authz.readRelationships(tenantId, grantsOf(role), { limit: 1 })).length > 0;
    if (!exists) throw rbacErrors.create('AUTHZ_RBAC_ROLE_NOT_FOUND', { role });
  }

  /** What every RBAC write answers: its token, and the token of the schema write it needed first, if any. */
  type Written = { token: string; schemaToken?: string };
  const written = (result: { token: string }, schemaToken: string | undefined): Written => ({ token: result.token, ...(schemaToken ? { schemaToken } : {}) });

  return {
    /** Creates or replaces a role's permissions (at least one). */
    async setRole(tenantId: string, role: string, permissions: string[]): Promise<Written> {
      checkName(role, 'role');
      if (permissions.length === 0) throw rbacErrors.create('AUTHZ_RBAC_ROLE_EMPTY', { role });
      for (const permission of permissions) checkName(permission, 'permission');
      const schemaToken = await ensureSchema(tenantId);
      const roleSet: SubjectRef = { type: ROLE, id: role, relation: 'member' };
      const current = await authz.readRelationships(tenantId, grantsOf(role), { limit: 1000 });
      const wanted = new Set(permissions);
      const updates: RelationshipUpdate[] = [
        ...current.filter((r) => !wanted.has(r.resourceId)).map((relationship): RelationshipUpdate => ({ operation: 'delete', relationship })),
        ...[...wanted].map((permission): RelationshipUpdate => ({ operation: 'touch', relationship: rel(PERMISSION, permission, 'granted', roleSet) })),
      ];
      return written(await authz.rbacStore.writeRelationships(tenantId, updates), schemaToken);
    },

    async listRoles(tenantId: string): Promise<{ role: string; permissions: string[] }[]> {
      if (!(await hasRbac(tenantId))) return [];
      const grants = await authz.readRelationships(tenantId, { resourceType: PERMISSION, relation: 'granted' }, { limit: 1000 });
      const roles = new Map<string, string[]>();
      for (const g of grants) roles.set(g.subjectId, [...(roles.get(g.subjectId) ?? []), g.resourceId]);
      return [...roles].map(([role, permissions]) => ({ role, permissions: permissions.sort() })).sort((a, b) => a.role.localeCompare(b.role));
    },

    /** Deletes the role's permissions and every assignment of it, in one transaction. */
    async deleteRole(tenantId: string, role: string): Promise<{ token: string }> {
      await requireRole(tenantId, role);
      return authz.rbacStore.deleteRelationships(tenantId, [grantsOf(role), { resourceType: ROLE, resourceId: role }]);
    },

    async assign(tenantId: string, role: string, subject: SubjectRef, remove = false): Promise<Written> {
      checkName(role, 'role');
      const relationship = rel(ROLE, role, 'member', checkSubject(subject));
      await requireRole(tenantId, role);
      return written(await authz.rbacStore.writeRelationships(tenantId, [{ operation: remove ? 'delete' : 'touch', relationship }]), undefined);
    },

    async addToGroup(tenantId: string, group: string, subject: SubjectRef, remove = false): Promise<Written> {
      checkName(group, 'group');
      const relationship = rel(GROUP, group, 'member', checkSubject(subject));
      // Group membership is an authz:write call: it never installs RBAC (a schema change).
      await requireRbac(tenantId);
      return written(await authz.rbacStore.writeRelationships(tenantId, [{ operation: remove ? 'delete' : 'touch', relationship }]), undefined);
    },

    /** May the subject use the permission through any of its roles (directly or via groups)? Never writes. */
    async check(tenantId: string, subject: SubjectRef, permission: string, consistency?: Parameters<AuthzService['check']>[2]) {
      checkName(permission, 'permission');
      if (!(await hasRbac(tenantId))) return { permissionship: 'denied' as const, token: await authz.currentToken() };
      return authz.check(tenantId, { resource: { type: PERMISSION, id: permission }, permission: 'granted', subject }, consistency);
    },
  };
}

export type Rbac = ReturnType<typeof createRbac>;
