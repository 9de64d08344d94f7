import { defineErrors } from '../../errors.js';

/**
 * Why a schema (SpiceDB schema language) is refused. Every error's `details` carries the
 * 1-based `line` and `column` it points at, plus `source` (the import path) when the
 * problem is in an imported file. Callers match on `code`.
 */
export const schemaErrors = defineErrors({
  AUTHZ_SCHEMA_SYNTAX: { status: 400, message: 'Schema syntax error at line {line}, column {column}: {detail}' },
  AUTHZ_SCHEMA_IMPORT: { status: 400, message: 'Schema import failed at line {line}, column {column}: {detail}' },
  AUTHZ_SCHEMA_INVALID_NAME: { status: 400, message: 'Schema error at line {line}, column {column}: "{name}" is not a valid {kind} name ({rule})' },
  AUTHZ_SCHEMA_DUPLICATE: { status: 400, message: 'Schema error at line {line}, column {column}: {kind} "{name}" is declared more than once{scope}' },
  AUTHZ_SCHEMA_UNKNOWN_TYPE: { status: 400, message: 'Schema error at line {line}, column {column}: object type "{type}" is not defined' },
  AUTHZ_SCHEMA_UNKNOWN_RELATION: { status: 400, message: 'Schema error at line {line}, column {column}: {detail}' },
  AUTHZ_SCHEMA_UNKNOWN_PARTIAL: { status: 400, message: 'Schema error at line {line}, column {column}: partial "{name}" is not defined' },
  AUTHZ_SCHEMA_UNKNOWN_CAVEAT: { status: 400, message: 'Schema error at line {line}, column {column}: caveat "{caveat}" is not defined' },
  AUTHZ_SCHEMA_UNKNOWN_PARAMETER_TYPE: { status: 400, message: 'Schema error at line {line}, column {column}: parameter "{parameter}" of caveat "{caveat}" has type "{type}": {detail}' },
  AUTHZ_SCHEMA_ARROW_OVER_PERMISSION: { status: 400, message: 'Schema error at line {line}, column {column}: "{name}" is a permission; the left side of an arrow must be a relation of "{definition}"' },
  AUTHZ_SCHEMA_WILDCARD_MISUSE: { status: 400, message: 'Schema error at line {line}, column {column}: {detail}' },
  AUTHZ_SCHEMA_EXPIRATION_DISABLED: { status: 400, message: 'Schema error at line {line}, column {column}: `with expiration` needs `use expiration` at the top of the schema' },
  AUTHZ_SCHEMA_CYCLE: { status: 400, message: 'Schema error at line {line}, column {column}: {detail}' },
  AUTHZ_SCHEMA_LIMIT: { status: 400, message: 'Schema error at line {line}, column {column}: {detail} (the limit is {max})' },
  AUTHZ_SCHEMA_MALFORMED: { status: 400, message: 'Schema error at line {line}, column {column}: {detail}' },
});

export type SchemaErrorCode = keyof typeof schemaErrors.catalogue;
