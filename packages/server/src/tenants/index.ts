export { createTenantService, tenantErrors, DEFAULT_TENANT, LOGO_TYPES, MAX_LOGO_BYTES, type TenantService } from './service.js';
export type { TenantLogo, TenantRecord, TenantStore } from './types.js';
