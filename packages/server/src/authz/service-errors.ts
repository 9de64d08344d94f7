import { defineErrors } from '../errors.js';

export const authzServiceErrors = defineErrors({
  AUTHZ_NO_SCHEMA: { status: 409, message: 'Tenant "{tenant}" has no permission schema yet; write one first' },
  AUTHZ_SCHEMA_ORPHANS: { status: 409, message: 'The new schema would orphan {count} stored relationships ({shapes}); delete or rewrite them first' },
  AUTHZ_RELATIONSHIP_INVALID: { status: 400, message: 'Relationship {relationship}{at} does not fit the schema: {detail}' },
  AUTHZ_RESERVED_TYPE: {
    status: 403,
    message: 'Type "{type}" is reserved for RBAC: relationships of gatehouse/* types are written only through …/authz/rbac/* (roles need authz:admin)',
  },
  AUTHZ_RELATIONSHIP_EXISTS: { status: 409, message: 'Relationship {relationship} exists already (use touch to overwrite)' },
  AUTHZ_PRECONDITION_FAILED: { status: 409, message: 'Precondition failed: {detail}; nothing was written' },
  AUTHZ_CONSISTENCY_TOKEN_INVALID: { status: 400, message: 'Consistency token "{token}" is not one Gatehouse issued' },
  AUTHZ_CONSISTENCY_TOKEN_REQUIRED: { status: 400, message: 'Consistency at_least_as_fresh needs the token of a write (or of an earlier answer) in "token"' },
});
