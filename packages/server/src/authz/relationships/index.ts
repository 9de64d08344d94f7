export { parseRelationships } from './block.js';
export { relationshipErrors } from './errors.js';
export { formatRelationship, parseCheckAssertion, parseRelationship, type CheckAssertion, type SourceSpot } from './syntax.js';
