export { createTenantService, tenantErrors, DEFAULT_TENANT, type TenantService } from './service.js';
export type { TenantRecord, TenantStore } from './types.js';
