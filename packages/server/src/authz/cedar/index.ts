/**
 * Per-tenant Cedar policies for attribute rules on top of the relationship graph:
 * `compilePolicies` once per policy text, `decide` per request, `combine` with the
 * engine's `check()` answer.
 */
export { combine, type CombinedDecision } from './combine.js';
export { decide, type CedarDecision, type CedarEntity, type CedarRequest } from './decide.js';
export { cedarErrors } from './errors.js';
export { cedarAction, cedarEntityRef, cedarTypeName, cedarUid } from './names.js';
export { compilePolicies, PolicySet, type PolicyDiagnostic } from './policy-set.js';
