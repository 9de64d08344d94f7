import { defineErrors } from '../../errors.js';

/**
 * Caveat errors. Compile-time ones (expression, parameter, duplicate) are schema mistakes and
 * surface when the schema is written; the evaluation-time ones come from the context a caller
 * or a stored relationship supplied, and the engine fails every answer that depends on them
 * (never a denial: under an exclusion a denial would grant).
 */
export const caveatErrors = defineErrors({
  AUTHZ_CAVEAT_INVALID_EXPRESSION: { status: 400, message: 'Caveat "{caveat}" has an invalid expression: {reason}' },
  AUTHZ_CAVEAT_INVALID_PARAMETER: { status: 400, message: 'Caveat "{caveat}" declares an invalid parameter "{parameter}": {reason}' },
  AUTHZ_CAVEAT_DUPLICATE: { status: 400, message: 'Caveat "{caveat}" is defined more than once' },
  AUTHZ_CAVEAT_UNKNOWN: { status: 400, message: 'Caveat "{caveat}" is not defined in the schema' },
  AUTHZ_CAVEAT_CONTEXT_INVALID: { status: 400, message: 'Caveat "{caveat}": context value "{parameter}" is not a valid {type}: {reason}' },
  AUTHZ_CAVEAT_EVALUATION_FAILED: { status: 400, message: 'Caveat "{caveat}" could not be evaluated: {reason}' },
});
