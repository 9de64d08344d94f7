export { parseRelationships, relationshipChunks, relationshipKey } from './block.js';
export { relationshipErrors } from './errors.js';
export { formatRelationship, parseCheckAssertion, parseObjectRef, parseRelationship, parseSubjectRef, type CheckAssertion, type SourceSpot } from './syntax.js';
