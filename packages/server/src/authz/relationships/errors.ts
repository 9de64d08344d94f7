import { defineErrors } from '../../errors.js';

export const relationshipErrors = defineErrors({
  /** `where` is `column 12` or, in a block, `line 3, column 12`. */
  AUTHZ_RELATIONSHIP_SYNTAX: { status: 400, message: 'Invalid relationship at {where}: {reason} in "{text}"' },
  AUTHZ_RELATIONSHIP_DUPLICATE: { status: 400, message: 'Relationship "{text}" on line {line} repeats the one on line {first} (caveat and expiration aside)' },
});
