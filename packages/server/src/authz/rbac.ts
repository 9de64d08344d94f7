import { defineErrors } from '../errors.js';
import type { AuthzService } from './service.js';
import type { RelationshipUpdate } from './store-types.js';
import type { Relationship, SubjectRef } from './types.js';

export const rbacErrors = defineErrors({
  AUTHZ_RBAC_NAME_INVALID: { status: 400, message: '"{name}" is not a valid {kind} name: use 1-200 of a-z A-Z 0-9 _ . / | = + -' },
  AUTHZ_RBAC_SUBJECT_INVALID: { status: 400, message: 'Roles can be assigned to users (`user:id`) and groups (`gatehouse/group:id#member`), not "{subject}"' },
});

// Role, group and permission names become object ids, so they use the id charset.
const NAME = /^[a-zA-Z0-9_./|=+-]{1,200}$/;
const ROLE = 'gatehouse/role';
const GROUP = 'gatehouse/group';
// (`permission` is a keyword of the schema language, so the type is called capability.)
const PERMISSION = 'gatehouse/capability';

/**
 * The definitions that hold RBAC in the same engine as everything else. A tenant without a
 * schema gets exactly this; a tenant with one gets it added (and `user` if it has none).
 */
const FRAGMENT = `
definition ${GROUP} {
  relation member: user | ${GROUP}#member
}

definition ${ROLE} {
  relation member: user | ${GROUP}#member
}

definition ${PERMISSION} {
  relation granted: ${ROLE}#member
}
`;

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
  async function ensureSchema(tenantId: string): Promise<void> {
    const stored = await authz.readSchema(tenantId);
    if (stored?.text.includes(`definition ${ROLE} `)) return;
    const base = stored?.text ?? '';
    const needsUser = !/(^|\n)\s*definition user\s*\{/.test(base);
    await authz.writeSchema(tenantId, `${base}${needsUser ? '\ndefinition user {}\n' : ''}${FRAGMENT}`);
  }

  return {
    /** Creates or replaces a role's permissions. */
    async setRole(tenantId: string, role: string, permissions: string[]): Promise<{ token: string }> {
      checkName(role, 'role');
      for (const permission of permissions) checkName(permission, 'permission');
      await ensureSchema(tenantId);
      const roleSet: SubjectRef = { type: ROLE, id: role, relation: 'member' };
      const current = await authz.readRelationships(tenantId, { resourceType: PERMISSION, relation: 'granted', subjectType: ROLE, subjectId: role, subjectRelation: 'member' }, { limit: 1000 });
      const wanted = new Set(permissions);
      const updates: RelationshipUpdate[] = [
        ...current.filter((r) => !wanted.has(r.resourceId)).map((relationship): RelationshipUpdate => ({ operation: 'delete', relationship })),
        ...[...wanted].map((permission): RelationshipUpdate => ({ operation: 'touch', relationship: rel(PERMISSION, permission, 'granted', roleSet) })),
      ];
      if (updates.length === 0) return { token: (await authz.engineFor(tenantId)).token };
      return authz.writeRelationships(tenantId, updates);
    },

    async listRoles(tenantId: string): Promise<{ role: string; permissions: string[] }[]> {
      if (!(await authz.readSchema(tenantId))?.text.includes(`definition ${ROLE} `)) return [];
      const grants = await authz.readRelationships(tenantId, { resourceType: PERMISSION, relation: 'granted' }, { limit: 1000 });
      const roles = new Map<string, string[]>();
      for (const g of grants) roles.set(g.subjectId, [...(roles.get(g.subjectId) ?? []), g.resourceId]);
      return [...roles].map(([role, permissions]) => ({ role, permissions: permissions.sort() })).sort((a, b) => a.role.localeCompare(b.role));
    },

    async deleteRole(tenantId: string, role: string): Promise<{ token: string }> {
      checkName(role, 'role');
      await ensureSchema(tenantId);
      await authz.deleteRelationships(tenantId, { resourceType: PERMISSION, relation: 'granted', subjectType: ROLE, subjectId: role, subjectRelation: 'member' });
      return authz.deleteRelationships(tenantId, { resourceType: ROLE, resourceId: role });
    },

    async assign(tenantId: string, role: string, subject: SubjectRef, remove = false): Promise<{ token: string }> {
      checkName(role, 'role');
      await ensureSchema(tenantId);
      const relationship = rel(ROLE, role, 'member', checkSubject(subject));
      return authz.writeRelationships(tenantId, [{ operation: remove ? 'delete' : 'touch', relationship }]);
    },

    async addToGroup(tenantId: string, group: string, subject: SubjectRef, remove = false): Promise<{ token: string }> {
      checkName(group, 'group');
      await ensureSchema(tenantId);
      const relationship = rel(GROUP, group, 'member', checkSubject(subject));
      return authz.writeRelationships(tenantId, [{ operation: remove ? 'delete' : 'touch', relationship }]);
    },

    /** May the subject use the permission through any of its roles (directly or via groups)? */
    async check(tenantId: string, subject: SubjectRef, permission: string, consistency?: Parameters<AuthzService['check']>[2]) {
      checkName(permission, 'permission');
      await ensureSchema(tenantId);
      return authz.check(tenantId, { resource: { type: PERMISSION, id: permission }, permission: 'granted', subject }, consistency);
    },
  };
}

export type Rbac = ReturnType<typeof createRbac>;
