import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { AuthorizationAnswer, Context, EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { ObjectRef } from '../types.js';
import { cedarAction, cedarUid } from './names.js';
import type { PolicySet } from './policy-set.js';

/** An entity the policies may read attributes or ancestors of, in our naming (`example/user`). */
export interface CedarEntity {
  uid: ObjectRef;
  /** Cedar JSON values; use `cedarEntityRef` for an attribute that points at an entity. */
  attrs?: Record<string, unknown>;
  parents?: ObjectRef[];
  tags?: Record<string, unknown>;
}

export interface CedarRequest {
  principal: ObjectRef;
  /** Our permission name; Cedar sees `Action::"<permission>"`. */
  action: string;
  resource: ObjectRef;
  /** Cedar JSON values: integers (Cedar longs), strings, booleans, sets, records, `__entity` / `__extn`. */
  context?: Record<string, unknown>;
  entities?: CedarEntity[];
}

export interface CedarDecision {
  /** Cedar's decision, forced to `deny` when anything failed to evaluate. */
  decision: 'allow' | 'deny';
  /** Ids of the policies that determined the decision (satisfied permits on allow, satisfied forbids on deny). */
  reasons: string[];
  /** `policyId: message` for each policy that failed to evaluate, or the request-level failure. */
  errors: string[];
  /** A permit was satisfied and determined the decision. Cedar does not report permits once a forbid applies. */
  permitted: boolean;
  /** A forbid was satisfied. */
  forbidden: boolean;
}

const toEntity = (entity: CedarEntity): EntityJson => ({
  uid: cedarUid(entity.uid),
  attrs: (entity.attrs ?? {}) as EntityJson['attrs'],
  parents: (entity.parents ?? []).map(cedarUid),
  ...(entity.tags ? { tags: entity.tags as EntityJson['tags'] } : {}),
});

function authorize(policySet: PolicySet, request: CedarRequest): AuthorizationAnswer {
  try {
    return cedar.statefulIsAuthorized({
      principal: cedarUid(request.principal),
      action: cedarAction(request.action),
      resource: cedarUid(request.resource),
      context: (request.context ?? {}) as Context,
      entities: (request.entities ?? []).map(toEntity),
      preparsedPolicySetId: policySet.key,
    });
  } catch (error) {
    // A wasm trap or a value serde cannot convert (a BigInt, a function) throws instead of answering.
    return { type: 'failure', errors: [{ message: error instanceof Error ? error.message : String(error), help: null, code: null, url: null, severity: null }], warnings: [] };
  }
}

/**
 * Evaluates one request against a pre-parsed policy set.
 *
 * Cedar *skips* a policy whose evaluation errors (a missing attribute, a type mismatch)
 * and decides with the rest, so a broken `forbid` silently stops forbidding. Here any
 * error — in a policy or in the request itself (a bad type name, a non-integer number) —
 * makes the decision `deny` and is listed in `errors`; `combine` turns it into a denial.
 *
 * @example
 * decide(policies, { principal: { type: 'example/user', id: 'alice' }, action: 'view', resource: { type: 'document', id: 'readme' }, context: { mfa: true } });
 */
export function decide(policySet: PolicySet, request: CedarRequest): CedarDecision {
  const answer = authorize(policySet, request);
  if (answer.type === 'failure') {
    return { decision: 'deny', reasons: [], errors: answer.errors.map((e) => `request: ${e.message}`), permitted: false, forbidden: false };
  }
  const { decision, diagnostics } = answer.response;
  const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
  const reasons = diagnostics.reason;
  return {
    decision: errors.length > 0 ? 'deny' : decision,
    reasons,
    errors,
    permitted: reasons.some((id) => policySet.effectOf(id) === 'permit'),
    forbidden: reasons.some((id) => policySet.effectOf(id) === 'forbid'),
  };
}
