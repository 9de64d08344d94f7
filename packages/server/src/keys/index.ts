export { createKeyService, ID_TOKEN_DEFAULT_ALG, type KeyService, type TenantKeySet } from './service.js';
export { resolveMasterKey } from './master-key.js';
export { keyErrors } from './errors.js';
export type { KeyStore, SigningKeyRecord, KeyStatus } from './types.js';
