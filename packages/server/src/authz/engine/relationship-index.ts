import type { Relationship } from '../types.js';

/**
 * What the engine reads: relationships at one revision. The engine never sees SQL; a
 * storage-backed reader materialises this index per revision.
 */
export interface RelationshipReader {
  /** Relationships `resourceType:resourceId#relation@…`. */
  forResource(resourceType: string, resourceId: string, relation: string): readonly Relationship[];
  /** Relationships `resourceType:…#relation@subjectType:…`, any resource id (reverse walks). */
  forSubjectType(resourceType: string, relation: string, subjectType: string): readonly Relationship[];
  /** Relationships whose subject is exactly `subjectType:subjectId[#subjectRelation]` (`*` for wildcard ones). */
  forSubject(subjectType: string, subjectId: string, subjectRelation: string | undefined): readonly Relationship[];
  /** Relationships whose subject object is `subjectType:subjectId`, whatever its relation (arrows walk these). */
  forSubjectObject(subjectType: string, subjectId: string): readonly Relationship[];
  /** Every object id of a type that appears anywhere, as resource or subject. */
  objectIds(type: string): ReadonlySet<string>;
}

const key3 = (a: string, b: string, c: string) => `${a}\u0000${b}\u0000${c}`;

/** An in-memory index over a list of relationships. Last write of an identical tuple wins. */
export function createRelationshipIndex(relationships: Iterable<Relationship>): RelationshipReader & { size: number } {
  const unique = new Map<string, Relationship>();
  for (const r of relationships) {
    unique.set(`${r.resourceType}:${r.resourceId}#${r.relation}@${r.subjectType}:${r.subjectId}#${r.subjectRelation ?? '...'}`, r);
  }
  const byResource = new Map<string, Relationship[]>();
  const bySubjectType = new Map<string, Relationship[]>();
  const bySubject = new Map<string, Relationship[]>();
  const bySubjectObject = new Map<string, Relationship[]>();
  const ids = new Map<string, Set<string>>();
  const addId = (type: string, id: string) => {
    if (id === '*') return;
    let set = ids.get(type);
    if (!set) ids.set(type, (set = new Set()));
    set.add(id);
  };
  const push = (map: Map<string, Relationship[]>, key: string, r: Relationship) => {
    const list = map.get(key);
    if (list) list.push(r);
    else map.set(key, [r]);
  };
  for (const r of unique.values()) {
    push(byResource, key3(r.resourceType, r.resourceId, r.relation), r);
    push(bySubjectType, key3(r.resourceType, r.relation, r.subjectType), r);
    push(bySubject, key3(r.subjectType, r.subjectId, r.subjectRelation ?? '...'), r);
    push(bySubjectObject, `${r.subjectType}\u0000${r.subjectId}`, r);
    addId(r.resourceType, r.resourceId);
    addId(r.subjectType, r.subjectId);
  }
  const empty: readonly Relationship[] = [];
  const noIds: ReadonlySet<string> = new Set();
  return {
    size: unique.size,
    forResource: (type, id, relation) => byResource.get(key3(type, id, relation)) ?? empty,
    forSubjectType: (type, relation, subjectType) => bySubjectType.get(key3(type, relation, subjectType)) ?? empty,
    forSubject: (type, id, relation) => bySubject.get(key3(type, id, relation ?? '...')) ?? empty,
    forSubjectObject: (type, id) => bySubjectObject.get(`${type}\u0000${id}`) ?? empty,
    objectIds: (type) => ids.get(type) ?? noIds,
  };
}
