export { createOAuthCatalog, hashSecret, type OAuthCatalog, type CreateApiInput, type CreateClientInput } from './catalog.js';
export { supportedGrantTypes } from './client-rules.js';
export { createProviderPool, type ProviderPool } from './provider.js';
export { createAccessTokenVerifier, AccessTokenInvalid, type AccessTokenVerifier, type VerifiedAccessToken } from './access-tokens.js';
export { oauthRoutes } from './routes.js';
export { createEngineHandler, requestIdOf, type EngineHandler } from './engine-handler.js';
export { oauthErrors } from './errors.js';
export type { ApiRecord, ClientRecord, ClientType, OAuthStore } from './types.js';
