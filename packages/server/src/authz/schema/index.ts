import type { Schema } from '../types.js';
import { parseSchemaWithPositions, type ParseOptions } from './parser.js';
import { validateSchema } from './validate.js';

export { parseSchema, SCHEMA_LIMITS, type ParseOptions } from './parser.js';
export { validateSchema } from './validate.js';
export { schemaErrors, type SchemaErrorCode } from './errors.js';

/**
 * Parses and validates a schema in the SpiceDB schema language: what to call before a
 * schema is stored or evaluated. Throws a GatehouseError from `schemaErrors` whose
 * `details` carry the 1-based `line` and `column` of the problem.
 *
 * @example
 * const schema = compileSchema(`
 *   definition user {}
 *   definition folder {
 *     relation parent: folder
 *     relation viewer: user
 *     permission view = viewer + parent->view
 *   }
 * `);
 */
export function compileSchema(text: string, options: ParseOptions = {}): Schema {
  const { schema, positions } = parseSchemaWithPositions(text, options);
  validateSchema(schema, positions);
  return schema;
}
