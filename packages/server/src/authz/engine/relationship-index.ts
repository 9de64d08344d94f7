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
export interface RelationshipIndex extends RelationshipReader {
  readonly size: number;
  /** Applies writes in place (touch replaces a relationship with the same tuple). */
  apply(updates: readonly { operation: 'create' | 'touch' | 'delete'; relationship: Relationship }[]): void;
}

const tupleKey = (r: Relationship) => `${r.resourceType}:${r.resourceId}#${r.relation}@${r.subjectType}:${r.subjectId}#${r.subjectRelation ?? '...'}`;

export function createRelationshipIndex(relationships: Iterable<Relationship>): RelationshipIndex {
  const unique = new Map<string, Relationship>();
  for (const r of relationships) unique.set(tupleKey(r), r);
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
  const keysOf = (r: Relationship): [Map<string, Relationship[]>, string][] => [
    [byResource, key3(r.resourceType, r.resourceId, r.relation)],
    [bySubjectType, key3(r.resourceType, r.relation, r.subjectType)],
    [bySubject, key3(r.subjectType, r.subjectId, r.subjectRelation ?? '...')],
    [bySubjectObject, `${r.subjectType}\u0000${r.subjectId}`],
  ];
  const insert = (r: Relationship) => {
    for (const [map, key] of keysOf(r)) push(map, key, r);
    addId(r.resourceType, r.resourceId);
    addId(r.subjectType, r.subjectId);
  };
  const remove = (r: Relationship) => {
    for (const [map, key] of keysOf(r)) {
      const list = map.get(key);
      const at = list?.indexOf(r) ?? -1;
      if (list && at >= 0) list.splice(at, 1);
    }
  };
  for (const r of unique.values()) insert(r);
  const empty: readonly Relationship[] = [];
  const noIds: ReadonlySet<string> = new Set();
  return {
    get size() {
      return unique.size;
    },
    apply(updates) {
      for (const { operation, relationship } of updates) {
        const key = tupleKey(relationship);
        const old = unique.get(key);
        if (old) {
          remove(old);
          unique.delete(key);
        }
        if (operation !== 'delete') {
          unique.set(key, relationship);
          insert(relationship);
        }
      }
    },
    forResource: (type, id, relation) => byResource.get(key3(type, id, relation)) ?? empty,
    forSubjectType: (type, relation, subjectType) => bySubjectType.get(key3(type, relation, subjectType)) ?? empty,
    forSubject: (type, id, relation) => bySubject.get(key3(type, id, relation ?? '...')) ?? empty,
    forSubjectObject: (type, id) => bySubjectObject.get(`${type}\u0000${id}`) ?? empty,
    objectIds: (type) => ids.get(type) ?? noIds,
  };
}
