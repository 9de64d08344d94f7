/**
 * @gatehouse/sdk — verify Gatehouse access tokens and protect Fastify / Express routes.
 * Runtime dependency: jose only.
 */
export { createVerifier } from './verifier.js';
export type { AccessTokenClaims, VerifiedToken, Verifier, VerifierOptions, VerifyOptions } from './verifier.js';
export { hasScopes } from './scopes.js';
export { DEFAULT_ALGORITHMS } from './algorithms.js';
export { VERIFIER_DEFAULTS, verifierOptions } from './defaults.js';
export type { OptionDoc } from './defaults.js';
export { GatehouseTokenError, errorCatalogue } from './errors.js';
export type { ErrorCode, ErrorEntry, GatehouseTokenErrorOptions, OAuthErrorCode } from './errors.js';
export type { FetchLike, FetchResponseLike } from './fetch-json.js';
export type { BearerAuthOptions, BearerErrorBody, TokenVerifier } from './bearer.js';
export { createFastifyAuth, gatehouseAuth } from './fastify.js';
export type {
  FastifyAuthHook,
  FastifyAuthOptions,
  FastifyInstanceLike,
  FastifyReplyLike,
  FastifyRequestLike,
  GatehouseFastifyOptions,
  GatehouseRouteConfig,
} from './fastify.js';
export { expressAuth } from './express.js';
export type {
  ConnectMiddleware,
  ConnectNext,
  ConnectRequestLike,
  ConnectResponseLike,
  ExpressAuthOptions,
} from './express.js';
export { createPermissionsClient, GatehousePermissionsError, permissionsClientErrors } from './permissions.js';
export type {
  CedarEntity,
  CheckAnswer,
  CheckBulkRequest,
  CheckBulkResult,
  CheckItem,
  CheckRequest,
  CheckResult,
  ConsistencyInput,
  DeleteRelationshipsRequest,
  DeleteRelationshipsResult,
  ExpandNode,
  ExpandRequest,
  ExpandResult,
  ExpandSubject,
  GroupMembershipRequest,
  ImportRelationshipsResult,
  LookupResourcesRequest,
  LookupResult,
  LookupSubjectsRequest,
  ObjectRefInput,
  Permissionship,
  PermissionsClient,
  PermissionsClientErrorCode,
  PermissionsClientOptions,
  PermissionsFetch,
  PermissionsFetchResponse,
  PermissionsToken,
  Precondition,
  RbacCheckRequest,
  RbacCheckResult,
  RbacRole,
  ReadRelationshipsRequest,
  ReadRelationshipsResult,
  RelationshipFilter,
  RelationshipInput,
  RelationshipUpdate,
  RoleAssignmentRequest,
  SetRoleRequest,
  SubjectRefInput,
  WriteRelationshipsRequest,
  WriteResult,
} from './permissions.js';
