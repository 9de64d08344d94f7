import { caveatErrors } from './authz/caveats/index.js';
import { cedarErrors } from './authz/cedar/index.js';
import { engineErrors } from './authz/engine/errors.js';
import { rbacErrors } from './authz/rbac.js';
import { authzServiceErrors } from './authz/service-errors.js';
import { relationshipErrors } from './authz/relationships/index.js';
import { schemaErrors } from './authz/schema/index.js';
import { validationFileErrors } from './authz/validation-file.js';
import type { ErrorSpec } from './errors.js';
import { bruteForceErrors } from './identity/brute-force-errors.js';
import { userErrors } from './identity/errors.js';
import { passwordErrors } from './identity/password-errors.js';
import { keyErrors } from './keys/errors.js';
import { oauthErrors } from './oauth/errors.js';
import { storeErrors } from './store/unavailable.js';
import { tenantErrors } from './tenants/service.js';

/** Errors raised outside a catalogue module: HTTP plumbing and the admin guard. */
export const httpErrors = {
  REQUEST_INVALID: { status: 400, message: 'The request does not match the schema of this endpoint' },
  REQUEST_MALFORMED: { status: 400, message: 'The request body could not be parsed' },
  REQUEST_TOO_DEEP: { status: 400, message: 'The JSON body nests objects and arrays deeper than {max} levels' },
  REQUEST_TOO_LARGE: { status: 413, message: 'The request body is larger than this endpoint accepts (GATEHOUSE_BODY_LIMIT, or the endpoint\'s own limit)' },
  REQUEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body has an unsupported content type' },
  NOT_FOUND: { status: 404, message: 'No route for this method and path' },
  INTERNAL_ERROR: { status: 500, message: 'Internal server error (details are in the server log under the request id)' },
  ADMIN_UNAUTHENTICATED: { status: 401, message: 'A valid bearer token for the gatehouse-admin API is required' },
  ADMIN_FORBIDDEN: { status: 403, message: 'The token is valid but not for this call (other tenant, other API or missing scope)' },
} satisfies Record<string, ErrorSpec>;

/** Every error code the server can answer with, by module: the docs and a test read this. */
export const errorCatalogues: Record<string, Record<string, ErrorSpec>> = {
  http: httpErrors,
  store: storeErrors.catalogue,
  tenants: tenantErrors.catalogue,
  keys: keyErrors.catalogue,
  oauth: oauthErrors.catalogue,
  users: userErrors.catalogue,
  passwords: passwordErrors.catalogue,
  'login throttling': bruteForceErrors.catalogue,
  'authz schema': schemaErrors.catalogue,
  'authz caveats': caveatErrors.catalogue,
  'authz relationships': relationshipErrors.catalogue,
  'authz engine': engineErrors.catalogue,
  'authz validation files': validationFileErrors.catalogue,
  'authz service': authzServiceErrors.catalogue,
  'authz policies': cedarErrors.catalogue,
  'authz rbac': rbacErrors.catalogue,
};
