import type { Relationship } from '../types.js';
import { relationshipErrors } from './errors.js';
import { parseRelationship } from './syntax.js';

/** What makes two relationships the same one (a touch of one replaces the other). */
export const relationshipKey = (r: Relationship) => `${r.resourceType}:${r.resourceId}#${r.relation}@${r.subjectType}:${r.subjectId}#${r.subjectRelation ?? '...'}`;

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
  for (const chunk of relationshipChunks(block, Number.POSITIVE_INFINITY, new Map())) relationships.push(...chunk);
  return relationships;
}

/**
 * The same block read lazily, `size` relationships at a time, so a caller can work through
 * (and yield between) the chunks of a large import without holding every parsed line: only
 * the chunk at hand is kept, and with `seen` the key and line of each relationship so far
 * (to refuse duplicates as `parseRelationships` does). Lines are numbered in the whole block.
 */
export function* relationshipChunks(block: string, size: number, seen?: Map<string, number>): Generator<Relationship[]> {
  let chunk: Relationship[] = [];
  let line = 0;
  for (let start = 0; start <= block.length; ) {
    let end = block.indexOf('\n', start);
    if (end < 0) end = block.length;
    const raw = block.slice(start, end);
    start = end + 1;
    line += 1;
    const text = raw.trim();
    if (text === '' || text.startsWith('//') || text.startsWith('#')) continue;
    const relationship = parseRelationship(raw, { line });
    if (seen) {
      const key = relationshipKey(relationship);
      const first = seen.get(key);
      if (first !== undefined) throw relationshipErrors.create('AUTHZ_RELATIONSHIP_DUPLICATE', { text, line, first });
      seen.set(key, line);
    }
    chunk.push(relationship);
    if (chunk.length >= size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}
