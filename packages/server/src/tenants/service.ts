import { defineErrors } from '../errors.js';
import type { TenantRecord, TenantStore } from './types.js';

export const tenantErrors = defineErrors({
  TENANTS_NOT_FOUND: { status: 404, message: 'Tenant "{tenant}" does not exist' },
  TENANTS_ALREADY_EXISTS: { status: 409, message: 'Tenant "{tenant}" already exists' },
  TENANTS_INVALID_ID: { status: 400, message: 'Tenant id "{tenant}" is invalid: use 1-63 lowercase letters, digits and dashes, starting with a letter or digit' },
  TENANTS_DISPLAY_NAME_INVALID: { status: 400, message: 'A display name has 1-200 characters and no control characters' },
  TENANTS_LOGO_INVALID: { status: 400, message: 'A logo is a PNG, JPEG, GIF or WebP image of at most {maxBytes} bytes whose content matches its type ({detail})' },
});

/** Logo formats people's browsers show without running anything (no SVG: it can carry script). */
const LOGO_SIGNATURES: Record<string, (b: Buffer) => boolean> = {
  'image/png': (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  'image/jpeg': (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff,
  'image/gif': (b) => ['GIF87a', 'GIF89a'].includes(b.subarray(0, 6).toString('latin1')),
  'image/webp': (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP',
};
export const LOGO_TYPES = Object.keys(LOGO_SIGNATURES);
export const MAX_LOGO_BYTES = 256 * 1024;

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
    /** Renames the tenant (what its sign-in pages show). */
    async update(id: string, changes: { displayName?: string }): Promise<TenantRecord> {
      if (changes.displayName !== undefined) {
        // eslint-disable-next-line no-control-regex
        if (changes.displayName.trim().length === 0 || changes.displayName.length > 200 || /[\u0000-\u001f\u007f]/.test(changes.displayName)) {
          throw tenantErrors.create('TENANTS_DISPLAY_NAME_INVALID');
        }
      }
      if (!(await store.update(id, { displayName: changes.displayName?.trim() }))) throw tenantErrors.create('TENANTS_NOT_FOUND', { tenant: id });
      known.delete(id);
      return (await find(id))!;
    },
    /** Sets the logo the sign-in pages show (served from our origin at /t/{tenant}/logo); null removes it. */
    async setLogo(id: string, logo: { type: string; data: Buffer } | null): Promise<void> {
      if (logo) {
        const matches = LOGO_SIGNATURES[logo.type];
        const detail = !matches ? `type ${logo.type}` : logo.data.length > MAX_LOGO_BYTES ? `${logo.data.length} bytes` : !matches(logo.data) ? 'content is not that type' : '';
        if (detail) throw tenantErrors.create('TENANTS_LOGO_INVALID', { maxBytes: MAX_LOGO_BYTES, detail });
      }
      if (!(await store.setLogo(id, logo))) throw tenantErrors.create('TENANTS_NOT_FOUND', { tenant: id });
      known.delete(id);
    },
    getLogo: (id: string) => store.getLogo(id),
    /** Forgets what this process cached of a tenant (a change from another process). */
    forget(id: string): void {
      known.delete(id);
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
