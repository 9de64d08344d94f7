import type { Relationship } from '../types.js';
import { relationshipErrors } from './errors.js';
import { parseRelationship } from './syntax.js';

const keyOf = (r: Relationship) => `${r.resourceType}:${r.resourceId}#${r.relation}@${r.subjectType}:${r.subjectId}#${r.subjectRelation ?? '...'}`;

/**
 * Parses a block of relationships, one per line, as in a validation file: blank lines and
 * lines starting with `//` or `#` are skipped (no relationship starts with either), and (as SpiceDB does) a relationship may not appear
 * twice, whatever its caveat or expiration. Errors name the 1-based line in the block.
 *
 * @example
 * parseRelationships('// the team\nteam:eng#member@user:tom\n\ngroup:eng#member@group:eng#member');
 */
export function parseRelationships(block: string): Relationship[] {
  const relationships: Relationship[] = [];
  const seen = new Map<string, number>();
  block.split('\n').forEach((raw, index) => {
    const text = raw.trim();
    if (text === '' || text.startsWith('//') || text.startsWith('#')) return;
    const line = index + 1;
    const relationship = parseRelationship(raw, { line });
    const key = keyOf(relationship);
    const first = seen.get(key);
    if (first !== undefined) throw relationshipErrors.create('AUTHZ_RELATIONSHIP_DUPLICATE', { text, line, first });
    seen.set(key, line);
    relationships.push(relationship);
  });
  return relationships;
}
