import { defineErrors } from '../../errors.js';

/**
 * Nested permission expressions one walk may be inside at once, summed over the relations it
 * follows (a schema allows 64 per expression, a walk 50 relations). Keeps check, explain,
 * expand and the expand tree's serialisation well inside the call stack.
 */
export const MAX_NESTING = 1_000;

export const engineErrors = defineErrors({
  AUTHZ_DEPTH_EXCEEDED: { status: 400, message: 'Check exceeded the maximum depth of {maxDepth}: the permission walks more than {maxDepth} nested relations' },
  AUTHZ_CYCLE: { status: 400, message: 'The relationships form a cycle through an exclusion at {object}: the permission has no sound answer' },
  AUTHZ_NESTING_EXCEEDED: { status: 400, message: 'The walk nests more than {max} permission expressions, counted across every relation it follows: the schema nests its expressions too deeply for relationships this deep' },
  AUTHZ_UNKNOWN_TYPE: { status: 400, message: 'Object type "{type}" is not defined in the schema' },
  AUTHZ_UNKNOWN_PERMISSION: { status: 400, message: '"{name}" is neither a relation nor a permission of "{type}"' },
});
