/**
 * A typed client of Gatehouse's permission service (`/api/v1/tenants/{tenant}/authz`):
 * checks, lookups, expand, schema, relationships, Cedar policies and RBAC. Uses `fetch`, no other
 * dependency.
 */
import { isJsonObject } from './fetch-json.js';

/** The part of the WHATWG `fetch` the permissions client needs; `globalThis.fetch` satisfies it. */
export type PermissionsFetch = (
  url: string,
  init: {
    readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
    readonly headers: Record<string, string>;
    readonly body?: string;
    readonly signal: AbortSignal;
  },
) => Promise<PermissionsFetchResponse>;

/** The part of a fetch `Response` the permissions client reads. */
export interface PermissionsFetchResponse {
  readonly ok: boolean;
  readonly status: number;
  text(): Promise<string>;
}

/** A bearer token, or a function returning one (called once per request, e.g. a token cache). */
export type PermissionsToken = string | (() => string | Promise<string>);

/** Options of {@link createPermissionsClient}. */
export interface PermissionsClientOptions {
  /** Gatehouse base URL, e.g. `https://id.example.com` (no `/api/v1`). https, or http on loopback. */
  readonly baseUrl: string;
  /** The tenant whose permission data is read and written, e.g. `acme`. */
  readonly tenant: string;
  /**
   * An access token for the `urn:gatehouse:admin` API with `authz:check`, `authz:write` or
   * `authz:admin` as the calls need, or a function returning one. The function is called
   * before every request, so it can serve a cached client-credentials token and refresh it.
   */
  readonly token: PermissionsToken;
  /** fetch implementation. Default: `globalThis.fetch`. */
  readonly fetch?: PermissionsFetch;
  /** Timeout of each request. Default: 10. */
  readonly timeoutSeconds?: number;
}

/** An object: `'document:plan'` or `{ type: 'document', id: 'plan' }`. */
export type ObjectRefInput = string | { readonly type: string; readonly id: string };

/** A subject: `'user:ann'`, `'group:eng#member'`, or `{ type, id, relation? }`. */
export type SubjectRefInput = string | { readonly type: string; readonly id: string; readonly relation?: string };

/**
 * How fresh the data a read is answered from must be.
 * - `'after-my-writes'`: at least as fresh as {@link PermissionsClient.lastWriteToken}, the newest
 *   token a write of this client returned (no constraint before the first write).
 * - `'minimize_latency'` (the server default) and `'fully_consistent'`, as strings or `{ mode }`.
 * - `{ mode: 'at_least_as_fresh', token }` with a token of any earlier write.
 */
export type ConsistencyInput =
  | 'after-my-writes'
  | 'minimize_latency'
  | 'fully_consistent'
  | { readonly mode: 'minimize_latency' | 'fully_consistent' }
  | { readonly mode: 'at_least_as_fresh'; readonly token: string };

/** The answer to a permission question; `conditional` when caveat parameters are missing. */
export type Permissionship = 'allowed' | 'denied' | 'conditional';

/** A Cedar entity passed with a check (attributes and parents of principal, resource, …). */
export interface CedarEntity {
  readonly uid: { readonly type: string; readonly id: string };
  readonly attrs?: Record<string, unknown>;
  readonly parents?: readonly { readonly type: string; readonly id: string }[];
}

/** One permission question. */
export interface CheckItem {
  readonly resource: ObjectRefInput;
  readonly permission: string;
  readonly subject: SubjectRefInput;
  /** Caveat context (also the Cedar `context`). */
  readonly context?: Record<string, unknown>;
  /** Entities Cedar policies may read. */
  readonly entities?: readonly CedarEntity[];
}

/** Arguments of {@link PermissionsClient.check}. */
export interface CheckRequest extends CheckItem {
  readonly consistency?: ConsistencyInput;
  /** Also return why: the granting path, the exclusion, or the missing caveat parameters. */
  readonly explain?: boolean;
}

/** One answer of {@link PermissionsClient.check} or {@link PermissionsClient.checkBulk}. */
export interface CheckAnswer {
  readonly permissionship: Permissionship;
  /** `permissionship === 'allowed'`. A `conditional` answer is not allowed. */
  readonly allowed: boolean;
  /** For `conditional`: the caveat parameters that would decide it. */
  readonly missing?: readonly string[];
  /** With Cedar policies: the rule that decided. */
  readonly policy?: string;
}

/** The result of {@link PermissionsClient.check}. */
export interface CheckResult extends CheckAnswer {
  /** Consistency token of the data the answer was computed from. */
  readonly token: string;
  /** With `explain: true`: the server's explanation (its shape is the server's). */
  readonly explanation?: Record<string, unknown>;
}

/** Arguments of {@link PermissionsClient.checkBulk}. */
export interface CheckBulkRequest {
  /** 1 to 1000 questions, answered from one snapshot. */
  readonly items: readonly CheckItem[];
  readonly consistency?: ConsistencyInput;
}

/** The result of {@link PermissionsClient.checkBulk}: one answer per item, in order. */
export interface CheckBulkResult {
  readonly results: readonly CheckAnswer[];
  readonly token: string;
}

/** Arguments of {@link PermissionsClient.lookupResources}. */
export interface LookupResourcesRequest {
  readonly resourceType: string;
  readonly permission: string;
  readonly subject: SubjectRefInput;
  readonly context?: Record<string, unknown>;
  readonly consistency?: ConsistencyInput;
}

/** Arguments of {@link PermissionsClient.lookupSubjects}. */
export interface LookupSubjectsRequest {
  readonly resource: ObjectRefInput;
  readonly permission: string;
  readonly subjectType: string;
  readonly subjectRelation?: string;
  readonly context?: Record<string, unknown>;
  readonly consistency?: ConsistencyInput;
}

/** Ids found by a lookup: `allowed` outright, `conditional` on missing caveat parameters. */
export interface LookupResult {
  readonly allowed: readonly string[];
  readonly conditional: readonly string[];
  readonly token: string;
}

/** Arguments of {@link PermissionsClient.expand}. */
export interface ExpandRequest {
  readonly resource: ObjectRefInput;
  /** A permission or relation of the resource type. */
  readonly permission: string;
  /** Levels of userset subjects to expand, 1 to 50. Server default: 1. */
  readonly depth?: number;
  readonly context?: Record<string, unknown>;
  readonly consistency?: ConsistencyInput;
}

/** A direct subject in an expansion leaf. */
export interface ExpandSubject {
  readonly type: string;
  readonly id: string;
  readonly relation?: string;
  readonly caveat?: string;
  readonly missing?: readonly string[];
  /** Epoch milliseconds. */
  readonly expiresAt?: number;
}

/** One node of the expansion tree (SpiceDB's: one userset rewrite per node). */
export type ExpandNode = {
  readonly expanded: { readonly type: string; readonly id: string; readonly relation: string };
  readonly caveat?: string;
} & (
  | { readonly kind: 'union' | 'intersection' | 'exclusion'; readonly children: readonly ExpandNode[] }
  | { readonly kind: 'leaf'; readonly subjects: readonly ExpandSubject[]; readonly usersets?: readonly ExpandNode[]; readonly cycle?: true }
);

/** The result of {@link PermissionsClient.expand}. */
export interface ExpandResult {
  readonly tree: ExpandNode;
  readonly token: string;
}

/** A relationship as an object; written in SpiceDB syntax on the wire. */
export interface RelationshipInput {
  readonly resource: ObjectRefInput;
  readonly relation: string;
  readonly subject: SubjectRefInput;
  /** A caveat and its (partial) context. */
  readonly caveat?: { readonly name: string; readonly context?: Record<string, unknown> };
  /** When the relationship expires. */
  readonly expiresAt?: Date;
}

/** One update of {@link PermissionsClient.writeRelationships}. */
export interface RelationshipUpdate {
  /** `create` fails if it exists, `touch` creates or replaces, `delete` removes. */
  readonly operation: 'create' | 'touch' | 'delete';
  /** `'document:plan#viewer@group:eng#member'` (SpiceDB syntax) or an object. */
  readonly relationship: string | RelationshipInput;
}

/** Which relationships a read, delete or precondition matches. */
export interface RelationshipFilter {
  readonly resourceType: string;
  readonly resourceId?: string;
  readonly relation?: string;
  readonly subjectType?: string;
  readonly subjectId?: string;
  readonly subjectRelation?: string;
}

/** A condition a write or delete needs to hold, in the same transaction. */
export interface Precondition {
  readonly operation: 'must_match' | 'must_not_match';
  readonly filter: RelationshipFilter;
}

/** Arguments of {@link PermissionsClient.writeRelationships}. */
export interface WriteRelationshipsRequest {
  /** 1 to 1000 updates, applied in one transaction. */
  readonly updates: readonly RelationshipUpdate[];
  readonly preconditions?: readonly Precondition[];
}

/** Arguments of {@link PermissionsClient.readRelationships}. */
export interface ReadRelationshipsRequest {
  readonly filter: RelationshipFilter;
  /** Page size, 1 to 1000. Server default: 100. */
  readonly limit?: number;
  /** The `next` cursor of the previous page. */
  readonly after?: string;
}

/** One page of relationships, in SpiceDB syntax. */
export interface ReadRelationshipsResult {
  readonly relationships: readonly string[];
  /** Cursor of the next page (pass as `after`), or `null` on the last page. */
  readonly next: string | null;
}

/** Arguments of {@link PermissionsClient.deleteRelationships}. */
export interface DeleteRelationshipsRequest {
  readonly filter: RelationshipFilter;
  readonly preconditions?: readonly Precondition[];
}

/** The consistency token of a write. */
export interface WriteResult {
  readonly token: string;
}

/** The result of {@link PermissionsClient.deleteRelationships}. */
export interface DeleteRelationshipsResult extends WriteResult {
  readonly deleted: number;
}

/** The result of {@link PermissionsClient.importRelationships}. */
export interface ImportRelationshipsResult extends WriteResult {
  /** How many relationships were touched. */
  readonly imported: number;
}

/** A role of the schema-less RBAC and the permissions it carries. */
export interface RbacRole {
  readonly role: string;
  /** Sorted. */
  readonly permissions: readonly string[];
}

/** Arguments of {@link PermissionsClient.setRole}. */
export interface SetRoleRequest {
  /** 1-200 of `a-z A-Z 0-9 _ . / | = + -`, e.g. `editor`. */
  readonly role: string;
  /** The role's complete set of permissions (same charset), e.g. `['orders.read']`; replaces the previous one. */
  readonly permissions: readonly string[];
}

/** Arguments of {@link PermissionsClient.assignRole} and {@link PermissionsClient.unassignRole}. */
export interface RoleAssignmentRequest {
  readonly role: string;
  /** `'user:ann'` or a group's members, `'gatehouse/group:staff#member'`. */
  readonly subject: SubjectRefInput;
}

/** Arguments of {@link PermissionsClient.addGroupMember} and {@link PermissionsClient.removeGroupMember}. */
export interface GroupMembershipRequest {
  /** The group's name (same charset as role names), e.g. `staff`. */
  readonly group: string;
  /** `'user:ann'`, or another group's members to nest it: `'gatehouse/group:support#member'`. */
  readonly subject: SubjectRefInput;
}

/** Arguments of {@link PermissionsClient.checkRbac}. */
export interface RbacCheckRequest {
  readonly subject: SubjectRefInput;
  /** A permission given to roles with {@link PermissionsClient.setRole}, e.g. `orders.read`. */
  readonly permission: string;
  readonly consistency?: ConsistencyInput;
}

/** The result of {@link PermissionsClient.checkRbac}. */
export interface RbacCheckResult extends CheckAnswer {
  readonly token: string;
}

/** Codes the client itself raises; every other code comes from the server's error body. */
export const permissionsClientErrors = {
  PERMISSIONS_TOKEN_UNAVAILABLE: 'The token function threw or returned no token',
  PERMISSIONS_REQUEST_FAILED: 'The request to the permission service failed (network error or timeout)',
  PERMISSIONS_HTTP_ERROR: 'The permission service answered an error status without a Gatehouse error body',
  PERMISSIONS_RESPONSE_INVALID: 'The permission service answered with a body the client does not understand',
} as const;

/** A code raised by the client itself (see {@link permissionsClientErrors}). */
export type PermissionsClientErrorCode = keyof typeof permissionsClientErrors;

/**
 * The one error type the permissions client rejects with (argument mistakes throw
 * `TypeError`). `code`, `status`, `message` and `details` are the server's
 * (`AUTHZ_UNKNOWN_TYPE`, `ADMIN_FORBIDDEN`, `REQUEST_INVALID`…); failures without a server
 * answer have a {@link PermissionsClientErrorCode} and `status` 0.
 *
 * @example
 * ```ts
 * try {
 *   await permissions.writeRelationships({ updates });
 * } catch (error) {
 *   if (error instanceof GatehousePermissionsError && error.code === 'AUTHZ_PRECONDITION_FAILED') {
 *     // someone else changed the data first
 *   }
 *   throw error;
 * }
 * ```
 */
export class GatehousePermissionsError extends Error {
  override readonly name = 'GatehousePermissionsError';
  /** The server's error code, or a {@link PermissionsClientErrorCode}. */
  readonly code: string;
  /** HTTP status of the answer; 0 when there was none. */
  readonly status: number;
  /** The server's `details` (e.g. `line` and `column` of a schema error). */
  readonly details: Record<string, unknown>;

  constructor(code: string, status: number, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** A permissions client for one tenant; see {@link createPermissionsClient}. */
export type PermissionsClient = ReturnType<typeof createPermissionsClient>;

/**
 * Creates a client of Gatehouse's permission service for one tenant. Argument mistakes throw
 * `TypeError`; server and network failures reject with {@link GatehousePermissionsError}.
 *
 * @example
 * ```ts
 * const permissions = createPermissionsClient({
 *   baseUrl: 'https://id.example.com',
 *   tenant: 'acme',
 *   token: () => tokenCache.get(), // a client-credentials token with authz:check / authz:write
 * });
 * await permissions.writeRelationships({
 *   updates: [{ operation: 'touch', relationship: 'document:plan#viewer@group:eng#member' }],
 * });
 * const { allowed } = await permissions.check({
 *   resource: 'document:plan',
 *   permission: 'view',
 *   subject: { type: 'user', id: 'ann' },
 *   consistency: 'after-my-writes',
 * });
 * ```
 */
export function createPermissionsClient(options: PermissionsClientOptions) {
  return new GatehousePermissionsClient(options);
}

class GatehousePermissionsClient {
  /** `${baseUrl}/api/v1/tenants/${tenant}/authz`. */
  readonly endpoint: string;
  /** The tenant. */
  readonly tenant: string;

  readonly #token: PermissionsToken;
  readonly #fetch: PermissionsFetch;
  readonly #timeoutMs: number;
  #lastWriteToken: string | undefined;

  constructor(options: PermissionsClientOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('createPermissionsClient: options are required');
    }
    const base = validateBaseUrl(options.baseUrl);
    if (typeof options.tenant !== 'string' || options.tenant === '') {
      throw new TypeError('createPermissionsClient: "tenant" must be a non-empty string');
    }
    this.tenant = options.tenant;
    this.endpoint = `${base}/api/v1/tenants/${encodeURIComponent(options.tenant)}/authz`;
    if (!((typeof options.token === 'string' && options.token !== '') || typeof options.token === 'function')) {
      throw new TypeError('createPermissionsClient: "token" must be a non-empty string or a function returning one');
    }
    this.#token = options.token;
    const fetch = options.fetch ?? (globalThis.fetch as unknown as PermissionsFetch | undefined);
    if (typeof fetch !== 'function') {
      throw new TypeError('createPermissionsClient: "fetch" must be a function (no global fetch is available)');
    }
    this.#fetch = fetch;
    const timeout = options.timeoutSeconds ?? 10;
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
      throw new TypeError('createPermissionsClient: "timeoutSeconds" must be a finite number of seconds > 0');
    }
    this.#timeoutMs = timeout * 1000;
  }

  /**
   * The newest consistency token returned by a write of this client (schema, policies,
   * relationship write, delete or import, RBAC change), or `undefined` before the first.
   * `consistency: 'after-my-writes'` uses it.
   *
   * @example
   * ```ts
   * await permissions.writeRelationships({ updates });
   * await permissions.check({ ...question, consistency: { mode: 'at_least_as_fresh', token: permissions.lastWriteToken! } });
   * ```
   */
  get lastWriteToken(): string | undefined {
    return this.#lastWriteToken;
  }

  /**
   * May the subject do the permission on the resource? Needs `authz:check`.
   *
   * @example
   * ```ts
   * const result = await permissions.check({ resource: 'document:plan', permission: 'view', subject: 'user:ann' });
   * if (result.allowed) { ... }
   * if (result.permissionship === 'conditional') console.log('needs context', result.missing);
   * ```
   */
  async check(request: CheckRequest): Promise<CheckResult> {
    const body = {
      ...checkItemBody(request, 'check'),
      ...this.#consistencyBody(request.consistency),
      ...(request.explain === undefined ? {} : { explain: request.explain }),
    };
    return this.#call('POST', '/check', body, (json) => {
      const answer = checkAnswer(json);
      if (!answer || !isJsonObject(json) || typeof json.token !== 'string') return undefined;
      if (json.explanation !== undefined && !isJsonObject(json.explanation)) return undefined;
      return { ...answer, token: json.token, ...(json.explanation === undefined ? {} : { explanation: json.explanation }) };
    });
  }

  /**
   * Asks up to 1000 questions against one snapshot; answers come in the order of `items`.
   * Needs `authz:check`.
   *
   * @example
   * ```ts
   * const { results } = await permissions.checkBulk({
   *   items: ['plan', 'budget'].map((id) => ({ resource: { type: 'document', id }, permission: 'view', subject: 'user:ann' })),
   * });
   * const visible = results.map((r) => r.allowed);
   * ```
   */
  async checkBulk(request: CheckBulkRequest): Promise<CheckBulkResult> {
    if (!Array.isArray(request?.items)) throw new TypeError('checkBulk: "items" must be an array');
    const body = { items: request.items.map((item) => checkItemBody(item, 'checkBulk')), ...this.#consistencyBody(request.consistency) };
    return this.#call('POST', '/check/bulk', body, (json) => {
      if (!isJsonObject(json) || typeof json.token !== 'string' || !Array.isArray(json.results)) return undefined;
      const results = json.results.map(checkAnswer);
      if (results.length !== request.items.length || results.some((r) => r === undefined)) return undefined;
      return { results: results as CheckAnswer[], token: json.token };
    });
  }

  /**
   * Ids of every resource of a type on which the subject has the permission. Needs `authz:check`.
   *
   * @example
   * ```ts
   * const { allowed } = await permissions.lookupResources({ resourceType: 'document', permission: 'view', subject: 'user:ann' });
   * ```
   */
  async lookupResources(request: LookupResourcesRequest): Promise<LookupResult> {
    const body = {
      resource_type: nonEmpty(request?.resourceType, 'lookupResources "resourceType"'),
      permission: nonEmpty(request.permission, 'lookupResources "permission"'),
      subject: subjectRef(request.subject, 'lookupResources "subject"'),
      ...optional('context', request.context),
      ...this.#consistencyBody(request.consistency),
    };
    return this.#call('POST', '/lookup-resources', body, lookupResult);
  }

  /**
   * Ids of every subject of a type with the permission on the resource (`*` when the resource
   * is public). Needs `authz:check`.
   *
   * @example
   * ```ts
   * const { allowed } = await permissions.lookupSubjects({ resource: 'document:plan', permission: 'view', subjectType: 'user' });
   * ```
   */
  async lookupSubjects(request: LookupSubjectsRequest): Promise<LookupResult> {
    const body = {
      resource: objectRef(request?.resource, 'lookupSubjects "resource"'),
      permission: nonEmpty(request.permission, 'lookupSubjects "permission"'),
      subject_type: nonEmpty(request.subjectType, 'lookupSubjects "subjectType"'),
      ...optional('subject_relation', request.subjectRelation),
      ...optional('context', request.context),
      ...this.#consistencyBody(request.consistency),
    };
    return this.#call('POST', '/lookup-subjects', body, lookupResult);
  }

  /**
   * The tree of subject sets behind a permission or relation. Needs `authz:check`.
   *
   * @example
   * ```ts
   * const { tree } = await permissions.expand({ resource: 'document:plan', permission: 'view', depth: 2 });
   * ```
   */
  async expand(request: ExpandRequest): Promise<ExpandResult> {
    const body = {
      resource: objectRef(request?.resource, 'expand "resource"'),
      permission: nonEmpty(request.permission, 'expand "permission"'),
      ...optional('depth', request.depth),
      ...optional('context', request.context),
      ...this.#consistencyBody(request.consistency),
    };
    return this.#call('POST', '/expand', body, (json) =>
      isJsonObject(json) && typeof json.token === 'string' && isJsonObject(json.tree) && typeof json.tree.kind === 'string'
        ? { tree: json.tree as unknown as ExpandNode, token: json.token }
        : undefined,
    );
  }

  /**
   * Replaces the tenant's schema (SpiceDB schema language). Needs `authz:admin`. An invalid
   * schema rejects with the server's code and `details.line` / `details.column`.
   *
   * @example
   * ```ts
   * await permissions.writeSchema('definition user {}\ndefinition document {\n  relation viewer: user\n  permission view = viewer\n}\n');
   * ```
   */
  async writeSchema(schema: string): Promise<WriteResult> {
    const result = await this.#call('PUT', '/schema', { schema: nonEmpty(schema, 'writeSchema "schema"') }, writeResult);
    this.#recordWrite(result.token);
    return result;
  }

  /**
   * The tenant's schema text; `''` when it has none. The server lets `authz:check` read it.
   *
   * @example
   * ```ts
   * const schema = await permissions.readSchema();
   * ```
   */
  async readSchema(): Promise<string> {
    return this.#call('GET', '/schema', undefined, (json) => (isJsonObject(json) && typeof json.schema === 'string' ? json.schema : undefined));
  }

  /**
   * Creates, touches and deletes relationships in one transaction once every precondition
   * holds. Needs `authz:write`. The returned token becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * await permissions.writeRelationships({
   *   updates: [
   *     { operation: 'touch', relationship: 'group:eng#member@user:ann' },
   *     { operation: 'create', relationship: { resource: 'document:plan', relation: 'viewer', subject: 'group:eng#member' } },
   *   ],
   * });
   * ```
   */
  async writeRelationships(request: WriteRelationshipsRequest): Promise<WriteResult> {
    if (!Array.isArray(request?.updates)) throw new TypeError('writeRelationships: "updates" must be an array');
    const body = {
      updates: request.updates.map((update: RelationshipUpdate) => {
        if (!['create', 'touch', 'delete'].includes(update?.operation)) {
          throw new TypeError('writeRelationships: "operation" must be create, touch or delete');
        }
        return { operation: update.operation, relationship: relationshipText(update.relationship) };
      }),
      ...preconditionsBody(request.preconditions),
    };
    const result = await this.#call('POST', '/relationships/write', body, writeResult);
    this.#recordWrite(result.token);
    return result;
  }

  /**
   * One page of the relationships matching a filter. Needs `authz:write`.
   *
   * @example
   * ```ts
   * let after: string | undefined;
   * do {
   *   const page = await permissions.readRelationships({ filter: { resourceType: 'document' }, after });
   *   page.relationships.forEach((r) => console.log(r));
   *   after = page.next ?? undefined;
   * } while (after);
   * ```
   */
  async readRelationships(request: ReadRelationshipsRequest): Promise<ReadRelationshipsResult> {
    const body = { filter: filterBody(request?.filter), ...optional('limit', request.limit), ...optional('after', request.after) };
    return this.#call('POST', '/relationships/read', body, (json) =>
      isJsonObject(json) &&
      Array.isArray(json.relationships) &&
      json.relationships.every((r) => typeof r === 'string') &&
      (json.next === null || typeof json.next === 'string')
        ? { relationships: json.relationships as string[], next: json.next }
        : undefined,
    );
  }

  /**
   * Deletes every relationship matching a filter once every precondition holds. Needs
   * `authz:write`. The returned token becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * const { deleted } = await permissions.deleteRelationships({ filter: { resourceType: 'document', resourceId: 'plan' } });
   * ```
   */
  async deleteRelationships(request: DeleteRelationshipsRequest): Promise<DeleteRelationshipsResult> {
    const body = { filter: filterBody(request?.filter), ...preconditionsBody(request.preconditions) };
    const result = await this.#call('POST', '/relationships/delete', body, (json) =>
      isJsonObject(json) && typeof json.token === 'string' && typeof json.deleted === 'number' ? { token: json.token, deleted: json.deleted } : undefined,
    );
    this.#recordWrite(result.token);
    return result;
  }

  /**
   * Imports relationships in bulk: touches every one (creates or replaces it) in transactions
   * of 1000, after the server has parsed all of them and checked them against the schema
   * (one bad line refuses the whole import, naming its line). Takes text with one relationship
   * per line (blank lines and `//` comments skipped), or a list. A relationship may not appear
   * twice. Needs `authz:write`. The returned token becomes {@link lastWriteToken}.
   *
   * A failure midway (the database went away) leaves the earlier transactions written;
   * importing the same text again is harmless, since every line is a touch.
   *
   * @example
   * ```ts
   * const { imported } = await permissions.importRelationships(await readFile('relationships.txt', 'utf8'));
   * await permissions.importRelationships(members.map((id) => ({ resource: 'group:eng', relation: 'member', subject: { type: 'user', id } })));
   * ```
   */
  async importRelationships(relationships: string | readonly (string | RelationshipInput)[]): Promise<ImportRelationshipsResult> {
    let text: string;
    if (typeof relationships === 'string') text = relationships;
    else if (Array.isArray(relationships)) text = relationships.map((r) => relationshipText(r, 'importRelationships')).join('\n');
    else throw new TypeError('importRelationships: "relationships" must be text (one per line) or an array');
    const result = await this.#call('POST', '/relationships/import', { relationships: text }, (json) =>
      isJsonObject(json) && typeof json.token === 'string' && typeof json.imported === 'number' ? { imported: json.imported, token: json.token } : undefined,
    );
    this.#recordWrite(result.token);
    return result;
  }

  /**
   * Replaces the tenant's Cedar policies; `''` removes them all. A decision is then allowed
   * when the relationship graph or a `permit` allows it and no `forbid` applies (any policy
   * evaluation error denies). Needs `authz:admin`. Text that does not parse rejects with
   * `AUTHZ_POLICY_INVALID` and changes nothing. The returned token becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * await permissions.writePolicies('@id("mfa") forbid(principal, action, resource) when { context.mfa == false };');
   * ```
   */
  async writePolicies(policies: string): Promise<WriteResult> {
    if (typeof policies !== 'string') throw new TypeError('writePolicies: "policies" must be a string (empty removes every policy)');
    return this.#write('PUT', '/policies', { policies });
  }

  /**
   * The tenant's Cedar policy text; `''` when it has none. Needs `authz:check`.
   *
   * @example
   * ```ts
   * const policies = await permissions.readPolicies();
   * ```
   */
  async readPolicies(): Promise<string> {
    return this.#call('GET', '/policies', undefined, (json) => (isJsonObject(json) && typeof json.policies === 'string' ? json.policies : undefined));
  }

  /**
   * Every RBAC role with its permissions, sorted by name. A role exists while it carries at
   * least one permission. Needs `authz:check`.
   *
   * @example
   * ```ts
   * for (const { role, permissions: granted } of await permissions.listRoles()) console.log(role, granted.join(' '));
   * ```
   */
  async listRoles(): Promise<readonly RbacRole[]> {
    return this.#call('GET', '/rbac/roles', undefined, (json) => {
      if (!isJsonObject(json) || !Array.isArray(json.roles)) return undefined;
      const roles = json.roles.map((r: unknown) =>
        isJsonObject(r) && typeof r.role === 'string' && Array.isArray(r.permissions) && r.permissions.every((p) => typeof p === 'string')
          ? { role: r.role, permissions: r.permissions as string[] }
          : undefined,
      );
      return roles.every((r) => r !== undefined) ? roles : undefined;
    });
  }

  /**
   * Creates an RBAC role or replaces its permissions. The first RBAC call adds the RBAC
   * definitions (`gatehouse/role`, `gatehouse/group`, `gatehouse/capability`) to the tenant's
   * schema. Needs `authz:admin`. A bad name rejects with `AUTHZ_RBAC_NAME_INVALID`. The
   * returned token becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * await permissions.setRole({ role: 'editor', permissions: ['orders.read', 'orders.write'] });
   * ```
   */
  async setRole(request: SetRoleRequest): Promise<WriteResult> {
    const role = nonEmpty(request?.role, 'setRole "role"');
    if (!Array.isArray(request.permissions)) throw new TypeError('setRole: "permissions" must be an array of strings');
    const permissions = request.permissions.map((p: unknown) => nonEmpty(p, 'setRole permission'));
    return this.#write('PUT', `/rbac/roles/${encodeURIComponent(role)}`, { permissions });
  }

  /**
   * Deletes an RBAC role: its permissions and every assignment of it. Deleting a role that
   * does not exist changes nothing and succeeds. Needs `authz:admin`. The returned token
   * becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * await permissions.deleteRole('editor');
   * ```
   */
  async deleteRole(role: string): Promise<WriteResult> {
    return this.#write('DELETE', `/rbac/roles/${encodeURIComponent(nonEmpty(role, 'deleteRole "role"'))}`, undefined);
  }

  /**
   * Assigns an RBAC role to a user (`user:ann`) or to a group's members
   * (`gatehouse/group:staff#member`); other subjects reject with `AUTHZ_RBAC_SUBJECT_INVALID`.
   * Needs `authz:write`. The returned token becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * await permissions.assignRole({ role: 'editor', subject: 'user:ann' });
   * await permissions.assignRole({ role: 'viewer', subject: { type: 'gatehouse/group', id: 'staff', relation: 'member' } });
   * ```
   */
  async assignRole(request: RoleAssignmentRequest): Promise<WriteResult> {
    return this.#write('POST', '/rbac/assignments', this.#assignmentBody(request, 'assignRole', false));
  }

  /**
   * Takes an RBAC role away from a user or group (nothing happens when it was not assigned).
   * Needs `authz:write`. The returned token becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * await permissions.unassignRole({ role: 'editor', subject: 'user:ann' });
   * ```
   */
  async unassignRole(request: RoleAssignmentRequest): Promise<WriteResult> {
    return this.#write('POST', '/rbac/assignments', this.#assignmentBody(request, 'unassignRole', true));
  }

  /**
   * Adds a user, or another group's members (nesting), to an RBAC group; roles assigned to
   * the group reach them. Needs `authz:write`. The returned token becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * await permissions.addGroupMember({ group: 'support', subject: 'user:sam' });
   * await permissions.addGroupMember({ group: 'staff', subject: 'gatehouse/group:support#member' });
   * ```
   */
  async addGroupMember(request: GroupMembershipRequest): Promise<WriteResult> {
    return this.#membership(request, 'addGroupMember', false);
  }

  /**
   * Removes a user or a nested group from an RBAC group. Needs `authz:write`. The returned
   * token becomes {@link lastWriteToken}.
   *
   * @example
   * ```ts
   * await permissions.removeGroupMember({ group: 'support', subject: 'user:sam' });
   * ```
   */
  async removeGroupMember(request: GroupMembershipRequest): Promise<WriteResult> {
    return this.#membership(request, 'removeGroupMember', true);
  }

  /**
   * Does any RBAC role of the subject (assigned directly or through groups) carry the
   * permission? An unknown permission is `denied`. Needs `authz:check`.
   *
   * @example
   * ```ts
   * const { allowed } = await permissions.checkRbac({ subject: 'user:ann', permission: 'orders.write', consistency: 'after-my-writes' });
   * ```
   */
  async checkRbac(request: RbacCheckRequest): Promise<RbacCheckResult> {
    const body = {
      subject: subjectRef(request?.subject, 'checkRbac "subject"'),
      permission: nonEmpty(request.permission, 'checkRbac "permission"'),
      ...this.#consistencyBody(request.consistency),
    };
    return this.#call('POST', '/rbac/check', body, (json) => {
      const answer = checkAnswer(json);
      return answer && isJsonObject(json) && typeof json.token === 'string' ? { ...answer, token: json.token } : undefined;
    });
  }

  #assignmentBody(request: RoleAssignmentRequest, method: string, remove: boolean) {
    return {
      role: nonEmpty(request?.role, `${method} "role"`),
      subject: subjectRef(request.subject, `${method} "subject"`),
      ...(remove ? { remove: true } : {}),
    };
  }

  async #membership(request: GroupMembershipRequest, method: string, remove: boolean): Promise<WriteResult> {
    const group = nonEmpty(request?.group, `${method} "group"`);
    const body = { subject: subjectRef(request.subject, `${method} "subject"`), ...(remove ? { remove: true } : {}) };
    return this.#write('POST', `/rbac/groups/${encodeURIComponent(group)}/members`, body);
  }

  /** A call answering `{ token }` of a write, which becomes {@link lastWriteToken}. */
  async #write(method: 'POST' | 'PUT' | 'DELETE', path: string, body: unknown): Promise<WriteResult> {
    const result = await this.#call(method, path, body, writeResult);
    this.#recordWrite(result.token);
    return result;
  }

  /** Keeps the newest token: concurrent writes may answer out of order. */
  #recordWrite(token: string) {
    const current = this.#lastWriteToken;
    if (current === undefined) {
      this.#lastWriteToken = token;
      return;
    }
    const a = revisionOf(current);
    const b = revisionOf(token);
    // Tokens are opaque; when they are not Gatehouse's `gh1_` revisions, the last one wins.
    if (a === undefined || b === undefined || b >= a) this.#lastWriteToken = token;
  }

  #consistencyBody(consistency: ConsistencyInput | undefined): { consistency?: { mode: string; token?: string } } {
    if (consistency === undefined) return {};
    if (consistency === 'after-my-writes') {
      // Before this client has written anything, every snapshot is fresh enough.
      const token = this.#lastWriteToken;
      return token === undefined ? {} : { consistency: { mode: 'at_least_as_fresh', token } };
    }
    if (consistency === 'minimize_latency' || consistency === 'fully_consistent') return { consistency: { mode: consistency } };
    if (isJsonObject(consistency)) {
      if (consistency.mode === 'minimize_latency' || consistency.mode === 'fully_consistent') return { consistency: { mode: consistency.mode } };
      if (consistency.mode === 'at_least_as_fresh' && typeof consistency.token === 'string' && consistency.token !== '') {
        return { consistency: { mode: consistency.mode, token: consistency.token } };
      }
    }
    throw new TypeError(
      `"consistency" must be 'after-my-writes', 'minimize_latency', 'fully_consistent' or { mode: 'at_least_as_fresh', token }; got ${JSON.stringify(consistency)}`,
    );
  }

  async #bearer(): Promise<string> {
    let token: unknown;
    try {
      token = typeof this.#token === 'function' ? await this.#token() : this.#token;
    } catch (cause) {
      throw clientError('PERMISSIONS_TOKEN_UNAVAILABLE', 0, {}, cause);
    }
    if (typeof token !== 'string' || token === '') throw clientError('PERMISSIONS_TOKEN_UNAVAILABLE', 0, { returned: typeof token });
    return token;
  }

  async #call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body: unknown, parse: (json: unknown) => T | undefined): Promise<T> {
    const url = `${this.endpoint}${path}`;
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${await this.#bearer()}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: PermissionsFetchResponse;
    let text: string;
    try {
      response = await this.#fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(Math.min(Math.ceil(this.#timeoutMs), 2 ** 31 - 1)),
      });
      text = await response.text();
    } catch (cause) {
      throw clientError('PERMISSIONS_REQUEST_FAILED', 0, { method, url }, cause);
    }
    let json: unknown;
    let parsed = false;
    try {
      json = JSON.parse(text);
      parsed = true;
    } catch {
      // handled below
    }
    if (!response.ok) {
      if (parsed && isJsonObject(json) && typeof json.code === 'string' && typeof json.message === 'string') {
        throw new GatehousePermissionsError(json.code, response.status, json.message, isJsonObject(json.details) ? json.details : {});
      }
      throw clientError('PERMISSIONS_HTTP_ERROR', response.status, { method, url, body: text.slice(0, 500) });
    }
    const result = parsed ? parse(json) : undefined;
    if (result === undefined) throw clientError('PERMISSIONS_RESPONSE_INVALID', response.status, { method, url, body: text.slice(0, 500) });
    return result;
  }
}

function clientError(code: PermissionsClientErrorCode, status: number, details: Record<string, unknown>, cause?: unknown) {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new GatehousePermissionsError(code, status, `${permissionsClientErrors[code]}${detail}`, details, cause);
}

function validateBaseUrl(baseUrl: unknown): string {
  if (typeof baseUrl !== 'string' || !URL.canParse(baseUrl)) {
    throw new TypeError('createPermissionsClient: "baseUrl" must be an absolute URL such as https://id.example.com');
  }
  const url = new URL(baseUrl);
  if (url.search !== '' || url.hash !== '') throw new TypeError('createPermissionsClient: "baseUrl" must not have a query or fragment');
  // Every request carries a bearer token; plain http would hand it to anyone on the path.
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new TypeError(`createPermissionsClient: "baseUrl" must use https (plain http is accepted only for localhost, 127.0.0.1 and [::1]); got ${baseUrl}`);
  }
  return url.href.replace(/\/+$/, '');
}

/** The revision of a Gatehouse consistency token (`gh1_<base36>`), else undefined. */
function revisionOf(token: string): number | undefined {
  const match = /^gh1_([0-9a-z]{1,12})$/.exec(token);
  return match ? parseInt(match[1]!, 36) : undefined;
}

function nonEmpty(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${what} must be a non-empty string`);
  return value;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** `'type:id'` from a string or `{ type, id }`. */
function objectRef(ref: ObjectRefInput | undefined, what: string): string {
  if (typeof ref === 'string') {
    if (!/^[^:#@\s]+:[^#@\s]+$/.test(ref)) throw new TypeError(`${what} must look like 'type:id'; got ${JSON.stringify(ref)}`);
    return ref;
  }
  if (isJsonObject(ref) && !('relation' in ref && ref.relation !== undefined)) {
    return `${refPart(ref.type, `${what} type`)}:${refPart(ref.id, `${what} id`)}`;
  }
  throw new TypeError(`${what} must be 'type:id' or { type, id }`);
}

/** `'type:id'` or `'type:id#relation'` from a string or `{ type, id, relation? }`. */
function subjectRef(ref: SubjectRefInput | undefined, what: string): string {
  if (typeof ref === 'string') {
    if (!/^[^:#@\s]+:[^#@\s]+(#[^#@\s]+)?$/.test(ref)) {
      throw new TypeError(`${what} must look like 'type:id' or 'type:id#relation'; got ${JSON.stringify(ref)}`);
    }
    return ref;
  }
  if (isJsonObject(ref)) {
    const base = `${refPart(ref.type, `${what} type`)}:${refPart(ref.id, `${what} id`)}`;
    return ref.relation === undefined ? base : `${base}#${refPart(ref.relation, `${what} relation`)}`;
  }
  throw new TypeError(`${what} must be 'type:id[#relation]' or { type, id, relation? }`);
}

function refPart(value: unknown, what: string): string {
  if (typeof value !== 'string' || !/^[^:#@\s]+$/.test(value)) {
    throw new TypeError(`${what} must be a non-empty string without ':', '#', '@' or spaces`);
  }
  return value;
}

function checkItemBody(item: CheckItem, method: string) {
  return {
    resource: objectRef(item?.resource, `${method} "resource"`),
    permission: nonEmpty(item.permission, `${method} "permission"`),
    subject: subjectRef(item.subject, `${method} "subject"`),
    ...optional('context', item.context),
    ...optional('entities', item.entities),
  };
}

function relationshipText(relationship: string | RelationshipInput, method = 'writeRelationships'): string {
  if (typeof relationship === 'string') return nonEmpty(relationship, `${method} "relationship"`);
  if (!isJsonObject(relationship)) throw new TypeError(`${method}: "relationship" must be a string or { resource, relation, subject }`);
  let text = `${objectRef(relationship.resource, 'relationship "resource"')}#${refPart(relationship.relation, 'relationship "relation"')}@${subjectRef(relationship.subject, 'relationship "subject"')}`;
  if (relationship.caveat !== undefined) {
    const { name, context } = relationship.caveat;
    const json = context !== undefined && Object.keys(context).length > 0 ? `:${JSON.stringify(context)}` : '';
    text += `[${refPart(name, 'relationship caveat "name"')}${json}]`;
  }
  if (relationship.expiresAt !== undefined) {
    if (!(relationship.expiresAt instanceof Date) || Number.isNaN(relationship.expiresAt.getTime())) {
      throw new TypeError('relationship "expiresAt" must be a valid Date');
    }
    text += `[expiration:${relationship.expiresAt.toISOString()}]`;
  }
  return text;
}

function filterBody(filter: RelationshipFilter | undefined) {
  if (!isJsonObject(filter)) throw new TypeError('"filter" must be an object with at least resourceType');
  return {
    resource_type: nonEmpty(filter.resourceType, 'filter "resourceType"'),
    ...optional('resource_id', filter.resourceId),
    ...optional('relation', filter.relation),
    ...optional('subject_type', filter.subjectType),
    ...optional('subject_id', filter.subjectId),
    ...optional('subject_relation', filter.subjectRelation),
  };
}

function preconditionsBody(preconditions: readonly Precondition[] | undefined) {
  if (preconditions === undefined) return {};
  if (!Array.isArray(preconditions)) throw new TypeError('"preconditions" must be an array');
  return {
    preconditions: preconditions.map((p: Precondition) => {
      if (p?.operation !== 'must_match' && p?.operation !== 'must_not_match') {
        throw new TypeError('precondition "operation" must be must_match or must_not_match');
      }
      return { operation: p.operation, filter: filterBody(p.filter) };
    }),
  };
}

const PERMISSIONSHIPS: readonly unknown[] = ['allowed', 'denied', 'conditional'];

function checkAnswer(json: unknown): CheckAnswer | undefined {
  if (!isJsonObject(json) || !PERMISSIONSHIPS.includes(json.permissionship)) return undefined;
  const permissionship = json.permissionship as Permissionship;
  if (json.missing !== undefined && !(Array.isArray(json.missing) && json.missing.every((m) => typeof m === 'string'))) return undefined;
  if (json.policy !== undefined && typeof json.policy !== 'string') return undefined;
  return {
    permissionship,
    allowed: permissionship === 'allowed',
    ...(json.missing === undefined ? {} : { missing: json.missing as string[] }),
    ...(json.policy === undefined ? {} : { policy: json.policy }),
  };
}

function lookupResult(json: unknown): LookupResult | undefined {
  const ids = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');
  return isJsonObject(json) && typeof json.token === 'string' && ids(json.allowed) && ids(json.conditional)
    ? { allowed: json.allowed, conditional: json.conditional, token: json.token }
    : undefined;
}

function writeResult(json: unknown): WriteResult | undefined {
  return isJsonObject(json) && typeof json.token === 'string' ? { token: json.token } : undefined;
}
