import { defineErrors } from '../../errors.js';

export const engineErrors = defineErrors({
  AUTHZ_DEPTH_EXCEEDED: { status: 400, message: 'Check exceeded the maximum depth of {maxDepth}: the permission walks more than {maxDepth} nested relations' },
  AUTHZ_CYCLE: { status: 400, message: 'The relationships form a cycle through an exclusion at {object}: the permission has no sound answer' },
  AUTHZ_UNKNOWN_TYPE: { status: 400, message: 'Object type "{type}" is not defined in the schema' },
  AUTHZ_UNKNOWN_PERMISSION: { status: 400, message: '"{name}" is neither a relation nor a permission of "{type}"' },
});
