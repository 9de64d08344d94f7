import type { GatehouseError } from '../../errors.js';
import { parseTimestamp } from '../caveats/index.js';
import type { ObjectRef, Relationship, SubjectRef } from '../types.js';
import { relationshipErrors } from './errors.js';

// SpiceDB pkg/tuple/parsing.go. Type and caveat names: optional `prefix/` segments, 3–64 chars each.
const TYPE_NAME = /^(?:[a-z][a-z0-9_]{1,61}[a-z0-9]\/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$/;
const RELATION_NAME = /^[a-z][a-z0-9_]{1,62}[a-z0-9]$/;
const MAX_ID_LENGTH = 1024;
const ELLIPSIS = '...';

/** `resource#permission@subject[ with {context}]`: one line of a validation file's assertions. */
export interface CheckAssertion {
  resource: ObjectRef;
  permission: string;
  subject: SubjectRef;
  context?: Record<string, unknown>;
}

/** Where a piece of text sits in a larger source, for error messages. */
export interface SourceSpot {
  /** 1-based line in a block (absent for a lone relationship). */
  line?: number;
  /** 0-based offset of the text in its line. */
  offset?: number;
}

// Characters that may make up each part; a part ends at the first other character.
const NAME_CHAR = /[a-z0-9_/]/;
const RELATION_CHAR = /[a-z0-9_]/;
const ID_CHAR = /[a-zA-Z0-9/_|\-=+]/;
const TIMESTAMP_CHAR = /[0-9TZ:.+-]/;

/**
 * A cursor over one relationship string. Every error names the 1-based column where the
 * offending part starts, or where the expected character is missing.
 */
class Scanner {
  pos = 0;

  constructor(
    readonly text: string,
    readonly spot: SourceSpot,
  ) {}

  fail(reason: string, at = this.pos): GatehouseError {
    const column = (this.spot.offset ?? 0) + at + 1;
    const where = this.spot.line === undefined ? `column ${column}` : `line ${this.spot.line}, column ${column}`;
    return relationshipErrors.create('AUTHZ_RELATIONSHIP_SYNTAX', { text: this.text, reason, where, column, ...(this.spot.line === undefined ? {} : { line: this.spot.line }) });
  }

  /** What stands at the cursor, for "expected …" messages. */
  found(): string {
    return this.atEnd() ? ' at the end' : `, found "${this.text[this.pos]}"`;
  }

  run(allowed: RegExp): string {
    const start = this.pos;
    while (this.pos < this.text.length && allowed.test(this.text[this.pos]!)) this.pos++;
    return this.text.slice(start, this.pos);
  }

  expect(char: string, what: string): void {
    if (this.text[this.pos] !== char) throw this.fail(`expected ${what}${this.found()}`);
    this.pos++;
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string | undefined {
    return this.text[this.pos];
  }

  typeName(what: string): string {
    const start = this.pos;
    const name = this.run(NAME_CHAR);
    if (name === '') throw this.fail(`expected ${what}${this.found()}`);
    if (!TYPE_NAME.test(name)) throw this.fail(`"${name}" is not a valid ${what.replace(/^an? /, '')} (lowercase letters, digits and _, 3 to 64 characters, optionally prefixed by "prefix/")`, start);
    return name;
  }

  relationName(what: string): string {
    const start = this.pos;
    const name = this.run(RELATION_CHAR);
    if (name === '') throw this.fail(`expected ${what}${this.found()}`);
    if (!RELATION_NAME.test(name)) throw this.fail(`"${name}" is not a valid ${what.replace(/^an? /, '')} (lowercase letters, digits and _, 3 to 64 characters)`, start);
    return name;
  }

  objectId(what: string, wildcardOk: boolean): string {
    const start = this.pos;
    if (this.peek() === '*') {
      if (!wildcardOk) throw this.fail('the wildcard "*" is only allowed as a subject id');
      this.pos++;
      return '*';
    }
    const id = this.run(ID_CHAR);
    if (id === '') throw this.fail(`expected ${what} (letters, digits and / _ | - = +)${this.found()}`);
    if (id.length > MAX_ID_LENGTH) throw this.fail(`the object id is longer than ${MAX_ID_LENGTH} characters`, start);
    return id;
  }

  /** A JSON object starting here, up to its matching brace (strings and escapes respected). */
  jsonObject(): Record<string, unknown> {
    const start = this.pos;
    if (this.peek() !== '{') throw this.fail(`expected a JSON object "{…}"${this.found()}`);
    let depth = 0;
    let inString = false;
    for (; this.pos < this.text.length; this.pos++) {
      const c = this.text[this.pos];
      if (inString) {
        if (c === '\\') this.pos++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) break;
      }
    }
    if (this.atEnd()) throw this.fail('unterminated JSON object', start);
    this.pos++;
    return parseJsonObject(this.text.slice(start, this.pos), (reason) => this.fail(reason, start));
  }
}

/** Parses JSON that must be an object: caveat context. */
export function parseJsonObject(json: string, fail: (reason: string) => GatehouseError): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw fail(`invalid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('the caveat context must be a JSON object');
  return value as Record<string, unknown>;
}

interface Scanned {
  resource: ObjectRef;
  relation: string;
  subject: SubjectRef;
  caveat?: { name: string; context?: Record<string, unknown>; at: number };
  expiration?: { expiresAt: number; at: number };
}

/** `type:id#rel@stype:sid[#srel|#...][caveat[:{json}]][expiration:RFC3339]` */
function scan(s: Scanner): Scanned {
  const resourceType = s.typeName('an object type');
  s.expect(':', '":" after the object type');
  const resourceId = s.objectId('an object id', false);
  s.expect('#', '"#" and a relation after the object id');
  const relation = s.relationName('a relation');
  s.expect('@', '"@" and a subject after the relation');
  const subjectType = s.typeName('a subject type');
  s.expect(':', '":" after the subject type');
  const subjectId = s.objectId('a subject id', true);
  let subjectRelation: string | undefined;
  if (s.peek() === '#') {
    s.pos++;
    if (s.text.startsWith(ELLIPSIS, s.pos)) s.pos += ELLIPSIS.length;
    else {
      const at = s.pos;
      subjectRelation = s.relationName('a subject relation or "..."');
      if (subjectId === '*') throw s.fail('a wildcard subject cannot name a relation', at);
    }
  }
  const scanned: Scanned = {
    resource: { type: resourceType, id: resourceId },
    relation,
    subject: { type: subjectType, id: subjectId, ...(subjectRelation === undefined ? {} : { relation: subjectRelation }) },
  };
  while (!s.atEnd()) {
    const at = s.pos;
    s.expect('[', `"[" (a caveat or an expiration) or the end`);
    const name = s.run(NAME_CHAR);
    // `[expiration:2300-01-01T00:00:00Z]` vs a caveat named `expiration` with context `[expiration:{…}]`.
    if (name === 'expiration' && s.peek() === ':' && s.text[s.pos + 1] !== '{') {
      if (scanned.expiration) throw s.fail('the expiration is given twice', at);
      s.pos++;
      const start = s.pos;
      const text = s.run(TIMESTAMP_CHAR);
      const expiresAt = parseTimestamp(text);
      if (expiresAt === undefined) throw s.fail('expected an RFC 3339 timestamp such as 2300-01-01T00:00:00Z', start);
      scanned.expiration = { expiresAt, at };
      s.expect(']', '"]" closing the expiration');
    } else {
      if (name === '') throw s.fail(`expected a caveat name or "expiration:"${s.found()}`);
      if (scanned.caveat) throw s.fail('a relationship carries at most one caveat', at);
      if (scanned.expiration) throw s.fail('the caveat comes before the expiration', at);
      if (!TYPE_NAME.test(name)) throw s.fail(`"${name}" is not a valid caveat name`, at + 1);
      let context: Record<string, unknown> | undefined;
      if (s.peek() === ':') {
        s.pos++;
        context = s.jsonObject();
      }
      scanned.caveat = { name, at, ...(context && Object.keys(context).length > 0 ? { context } : {}) };
      s.expect(']', '"]" closing the caveat');
    }
  }
  return scanned;
}

function trimmed(text: string, spot: SourceSpot): Scanner {
  const lead = text.length - text.trimStart().length;
  return new Scanner(text.trim(), { ...spot, offset: (spot.offset ?? 0) + lead });
}

/**
 * Parses SpiceDB's relationship syntax. `#...` (or no `#`) after the subject means a direct
 * subject: `subjectRelation` is then absent.
 *
 * @example
 * parseRelationship('document:firstdoc#viewer@user:tom[is_valid_ip:{"cidr":"10.0.0.0/8"}]');
 * // { resourceType: 'document', resourceId: 'firstdoc', relation: 'viewer', subjectType: 'user',
 * //   subjectId: 'tom', caveat: { name: 'is_valid_ip', context: { cidr: '10.0.0.0/8' } } }
 */
export function parseRelationship(text: string, spot: SourceSpot = {}): Relationship {
  const { resource, relation, subject, caveat, expiration } = scan(trimmed(text, spot));
  return {
    resourceType: resource.type,
    resourceId: resource.id,
    relation,
    subjectType: subject.type,
    subjectId: subject.id,
    ...(subject.relation === undefined ? {} : { subjectRelation: subject.relation }),
    ...(caveat ? { caveat: caveat.context ? { name: caveat.name, context: caveat.context } : { name: caveat.name } } : {}),
    ...(expiration ? { expiresAt: expiration.expiresAt } : {}),
  };
}

/** RFC 3339 in UTC, milliseconds only when there are some (as Go's RFC3339Nano prints). */
function formatExpiration(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d*?)0*Z$/, (_, ms: string) => (ms ? `.${ms}Z` : 'Z'));
}

/**
 * The SpiceDB string form of a relationship; `parseRelationship(formatRelationship(r))` gives `r`.
 *
 * @example
 * formatRelationship({ resourceType: 'group', resourceId: 'eng', relation: 'member',
 *   subjectType: 'group', subjectId: 'eng', subjectRelation: 'member' }); // 'group:eng#member@group:eng#member'
 */
export function formatRelationship(r: Relationship): string {
  let text = `${r.resourceType}:${r.resourceId}#${r.relation}@${r.subjectType}:${r.subjectId}`;
  if (r.subjectRelation !== undefined && r.subjectRelation !== ELLIPSIS) text += `#${r.subjectRelation}`;
  if (r.caveat) {
    const context = r.caveat.context && Object.keys(r.caveat.context).length > 0 ? `:${JSON.stringify(r.caveat.context)}` : '';
    text += `[${r.caveat.name}${context}]`;
  }
  if (r.expiresAt !== undefined) text += `[expiration:${formatExpiration(r.expiresAt)}]`;
  return text;
}

/**
 * Parses a check assertion, `resource#permission@subject`, optionally followed by
 * ` with {json}`: the caveat context of the check (SpiceDB splits at the first " with ").
 *
 * @example
 * parseCheckAssertion('document:firstdoc#view@user:tom with {"somecondition": 42}');
 * // { resource: { type: 'document', id: 'firstdoc' }, permission: 'view',
 * //   subject: { type: 'user', id: 'tom' }, context: { somecondition: 42 } }
 */
export function parseCheckAssertion(text: string, spot: SourceSpot = {}): CheckAssertion {
  const split = text.indexOf(' with ');
  const head = split < 0 ? text : text.slice(0, split);
  const s = trimmed(head, spot);
  const { resource, relation, subject, caveat, expiration } = scan(s);
  const extra = caveat ?? expiration;
  if (extra) throw s.fail('an assertion carries no caveat or expiration; give caveat context with " with {…}"', extra.at);
  const assertion: CheckAssertion = { resource, permission: relation, subject };
  if (split >= 0) {
    const json = text.slice(split + ' with '.length);
    const start = split + ' with '.length + (json.length - json.trimStart().length);
    assertion.context = parseJsonObject(json.trim(), (reason) => new Scanner(text, spot).fail(reason, start));
  }
  return assertion;
}

/** `type:id` alone (an API's resource field). */
export function parseObjectRef(text: string, spot: SourceSpot = {}): ObjectRef {
  const s = trimmed(text, spot);
  const type = s.typeName('an object type');
  s.expect(':', '":" after the object type');
  const id = s.objectId('an object id', false);
  if (!s.atEnd()) throw s.fail(`expected the end after the object id${s.found()}`);
  return { type, id };
}

/** `type:id`, `type:id#relation`, `type:id#...` or `type:*` (an API's subject field). */
export function parseSubjectRef(text: string, spot: SourceSpot = {}): SubjectRef {
  const s = trimmed(text, spot);
  const type = s.typeName('a subject type');
  s.expect(':', '":" after the subject type');
  const id = s.objectId('a subject id', true);
  let relation: string | undefined;
  if (s.peek() === '#') {
    s.pos++;
    if (s.text.startsWith(ELLIPSIS, s.pos)) s.pos += ELLIPSIS.length;
    else {
      const at = s.pos;
      relation = s.relationName('a subject relation or "..."');
      if (id === '*') throw s.fail('a wildcard subject cannot name a relation', at);
    }
  }
  if (!s.atEnd()) throw s.fail(`expected the end after the subject${s.found()}`);
  return { type, id, ...(relation === undefined ? {} : { relation }) };
}
