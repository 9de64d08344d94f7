export { createOAuthCatalog, hashSecret, type OAuthCatalog, type CreateApiInput, type CreateClientInput } from './catalog.js';
export { supportedGrantTypes } from './client-rules.js';
export { createProviderPool, type ProviderPool } from './provider.js';
export { createAccessTokenVerifier, AccessTokenInvalid, type AccessTokenVerifier, type VerifiedAccessToken } from './access-tokens.js';
export { oauthRoutes } from './routes.js';
export { createEngineHandler, requestIdOf, type EngineHandler } from './engine-handler.js';
export { oauthErrors } from './errors.js';
export type { AccountClaims, ApiRecord, ClientRecord, ClientType, OAuthStore, SignInAccounts, SignInOutcome } from './types.js';
export { interactionRoutes } from './interactions.js';
