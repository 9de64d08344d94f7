import type { Permissionship } from '../engine/engine.js';
import type { CedarDecision } from './decide.js';

export interface CombinedDecision {
  permissionship: Permissionship;
  reason: string;
}

/**
 * The relationship graph and the tenant's Cedar policies together, in this order:
 * 1. any Cedar evaluation error → denied (Cedar would have skipped the failing policy —
 *    a broken `forbid` must not turn into an allow);
 * 2. a `forbid` applies → denied, whatever the graph says;
 * 3. the graph allows, or a `permit` applies → allowed;
 * 4. the graph is conditional (caveat parameters missing) and no permit applies → conditional;
 * 5. otherwise denied.
 * Without a policy set the graph's answer stands.
 *
 * @example
 * combine(engine.check(request).permissionship, policies && decide(policies, cedarRequest));
 */
// Cedar's reasons are the satisfied forbids on deny and the satisfied permits on allow,
// so they name exactly the policies behind steps 2 and 3.
export function combine(graph: Permissionship, cedar: CedarDecision | undefined): CombinedDecision {
  if (!cedar) return { permissionship: graph, reason: `relationship graph: ${graph}` };
  if (cedar.errors.length > 0) return { permissionship: 'denied', reason: `policy evaluation error: ${cedar.errors.join('; ')}` };
  if (cedar.forbidden) return { permissionship: 'denied', reason: `forbidden by policy ${cedar.reasons.join(', ')}` };
  if (graph === 'allowed') return { permissionship: 'allowed', reason: 'allowed by the relationship graph' };
  if (cedar.permitted) return { permissionship: 'allowed', reason: `permitted by policy ${cedar.reasons.join(', ')}` };
  if (graph === 'conditional') return { permissionship: 'conditional', reason: 'conditional on missing caveat context; no policy permits' };
  return { permissionship: 'denied', reason: 'neither the relationship graph nor a policy permits' };
}
