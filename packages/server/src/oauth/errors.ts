import { defineErrors } from '../errors.js';

export const oauthErrors = defineErrors({
  OAUTH_API_IDENTIFIER_INVALID: { status: 400, message: 'API identifier "{identifier}" must be an absolute URI without a fragment (RFC 8707)' },
  OAUTH_API_IDENTIFIER_TAKEN: { status: 409, message: 'An API with identifier "{identifier}" already exists in this tenant' },
  OAUTH_API_NOT_FOUND: { status: 404, message: 'API "{api}" does not exist in this tenant' },
  OAUTH_API_BUILTIN: { status: 409, message: 'API "{api}" is built in and cannot be changed or deleted' },
  OAUTH_CLIENT_API_UNKNOWN: { status: 400, message: 'API "{api}" does not exist in this tenant; create it first' },
  OAUTH_SCOPE_INVALID: { status: 400, message: 'Scope "{scope}" is not a valid scope token (RFC 6749 §3.3)' },
  OAUTH_SCOPE_NOT_IN_API: { status: 400, message: 'Scope "{scope}" is not defined by API "{api}"' },
  OAUTH_TTL_INVALID: { status: 400, message: 'Access-token lifetime must be between 30 and 86400 seconds' },
  OAUTH_CLIENT_NOT_FOUND: { status: 404, message: 'Client "{client}" does not exist in this tenant' },
  OAUTH_CLIENT_BUILTIN: { status: 409, message: 'Client "{client}" is built in and cannot be changed or deleted (its secret can be rotated)' },
  OAUTH_CLIENT_NAME_INVALID: { status: 400, message: 'Client name must be 1-200 characters' },
  OAUTH_GRANT_TYPE_UNSUPPORTED: { status: 400, message: 'Grant type "{grantType}" is not supported; supported: {supported}' },
  OAUTH_PUBLIC_CLIENT_CREDENTIALS: { status: 400, message: 'A public client cannot use the client_credentials grant: it has no credentials' },
  OAUTH_AUTH_METHOD_INVALID: { status: 400, message: 'Token endpoint auth method "{method}" is not valid for a {type} client' },
  OAUTH_PUBLIC_CLIENT_NO_SECRET: { status: 400, message: 'Client "{client}" is public and has no secret to rotate' },
  OAUTH_GRACE_INVALID: { status: 400, message: 'Grace period must be between 0 and 2592000 seconds' },
});
