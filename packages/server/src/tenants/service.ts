import { defineErrors } from '../errors.js';
import type { TenantRecord, TenantStore } from './types.js';

export const tenantErrors = defineErrors({
  TENANTS_NOT_FOUND: { status: 404, message: 'Tenant "{tenant}" does not exist' },
  TENANTS_ALREADY_EXISTS: { status: 409, message: 'Tenant "{tenant}" already exists' },
  TENANTS_INVALID_ID: { status: 400, message: 'Tenant id "{tenant}" is invalid: use 1-63 lowercase letters, digits and dashes, starting with a letter or digit' },
});

export const DEFAULT_TENANT = 'default';
const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface TenantServiceDeps {
  store: TenantStore;
  publicUrl: string;
  /** Called after a tenant row exists, to give it its first signing key. */
  onCreated(tenantId: string): Promise<void>;
  clock?: () => number;
}

/** Tenants and their issuers: `{publicUrl}/t/{tenant}`. Lookups are cached; tenants are never deleted here. */
export function createTenantService({ store, publicUrl, onCreated, clock = Date.now }: TenantServiceDeps) {
  const known = new Map<string, TenantRecord>();

  async function find(id: string): Promise<TenantRecord | undefined> {
    const cached = known.get(id);
    if (cached) return cached;
    if (!TENANT_ID.test(id)) return undefined;
    const tenant = await store.get(id);
    if (tenant) known.set(id, tenant);
    return tenant;
  }

  return {
    issuerFor: (tenantId: string) => `${publicUrl}/t/${tenantId}`,
    /** The tenant an issuer URL belongs to, by shape only (callers still look it up). */
    tenantOfIssuer(issuer: string): string | undefined {
      const prefix = `${publicUrl}/t/`;
      if (!issuer.startsWith(prefix)) return undefined;
      const id = issuer.slice(prefix.length);
      return TENANT_ID.test(id) ? id : undefined;
    },
    find,
    /** The tenant if this process has already seen it, without waiting (hot paths fall back to `get`). */
    known: (id: string): TenantRecord | undefined => known.get(id),
    async get(id: string): Promise<TenantRecord> {
      const tenant = await find(id);
      if (!tenant) throw tenantErrors.create('TENANTS_NOT_FOUND', { tenant: id });
      return tenant;
    },
    list: () => store.list(),
    async create(id: string, displayName?: string): Promise<TenantRecord> {
      if (!TENANT_ID.test(id)) throw tenantErrors.create('TENANTS_INVALID_ID', { tenant: id });
      const tenant = { id, displayName: displayName ?? id, createdAt: clock() };
      if (!(await store.create(tenant))) throw tenantErrors.create('TENANTS_ALREADY_EXISTS', { tenant: id });
      await onCreated(id);
      return tenant;
    },
    /** Creates the tenant unless it exists; true when this call created it. */
    async ensure(id: string, displayName?: string): Promise<boolean> {
      if (await find(id)) {
        await onCreated(id);
        return false;
      }
      const created = await store.create({ id, displayName: displayName ?? id, createdAt: clock() });
      await onCreated(id);
      return created;
    },
  };
}

export type TenantService = ReturnType<typeof createTenantService>;
