import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { DetailedError, Effect, Policy } from '@cedar-policy/cedar-wasm/nodejs';
import { cedarErrors } from './errors.js';

/** One Cedar diagnostic, located in the policy text when Cedar gives a location. */
export interface PolicyDiagnostic {
  message: string;
  help?: string;
  /** 1-based, in the text given to `compilePolicies`. */
  line?: number;
  column?: number;
}

/**
 * A parsed Cedar policy set, held in cedar-wasm's pre-parsed cache so a decision never
 * re-parses policy text. Immutable; one per tenant policy text.
 */
export class PolicySet {
  readonly #key: string;
  readonly #effects: ReadonlyMap<string, Effect>;

  /** @internal Use `compilePolicies`. */
  constructor(key: string, effects: ReadonlyMap<string, Effect>) {
    this.#key = key;
    this.#effects = effects;
  }

  /** The key of the pre-parsed set inside cedar-wasm. */
  get key(): string {
    return this.#key;
  }

  /** Policy ids: the `@id("…")` annotation, else Cedar's own `policy<N>` (N = position in the text, from 0). */
  get ids(): string[] {
    return [...this.#effects.keys()];
  }

  effectOf(id: string): Effect | undefined {
    return this.#effects.get(id);
  }
}

/** Cedar reports byte offsets into the UTF-8 text; turn one into a 1-based line and column. */
function locate(text: Buffer, offset: number): { line: number; column: number } {
  const before = text.subarray(0, offset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: [...lines.at(-1)!].length + 1 };
}

function diagnose(text: string, errors: DetailedError[]): PolicyDiagnostic[] {
  const bytes = Buffer.from(text, 'utf8');
  return errors.map((error) => {
    const at = error.sourceLocations?.[0];
    const label = at?.label ? ` (${at.label})` : '';
    return {
      message: `${error.message}${label}`,
      ...(error.help ? { help: error.help } : {}),
      ...(at ? locate(bytes, at.start) : {}),
    };
  });
}

function invalid(diagnostics: PolicyDiagnostic[]) {
  const rendered = diagnostics
    .map((d) => `${d.line !== undefined ? `line ${d.line}, column ${d.column}: ` : ''}${d.message}${d.help ? `; help: ${d.help}` : ''}`)
    .join('; ');
  return cedarErrors.create('AUTHZ_POLICY_INVALID', { diagnostics: rendered, errors: diagnostics });
}

/**
 * `policySetTextToParts` returns the policies sorted by Cedar's generated id (`policy0`,
 * `policy1`, `policy10`, `policy11`, `policy2`, …: string order), not in text order.
 * Replaying that sort recovers each policy's position, so ids match Cedar's own naming.
 */
function positions(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i).sort((a, b) => (`policy${a}` < `policy${b}` ? -1 : `policy${a}` > `policy${b}` ? 1 : 0));
}

/**
 * Parses and checks Cedar policy text once, and registers it with cedar-wasm's pre-parsed
 * policy cache so `decide` evaluates without re-parsing.
 *
 * The cache is process-global and has no eviction API, so the key is the SHA-256 of the
 * text: compiling the same text twice shares one entry, and the cache grows only with the
 * number of distinct policy texts a process ever sees.
 *
 * Templates (`?principal` slots) are rejected: Gatehouse has no template links.
 *
 * @throws GatehouseError `AUTHZ_POLICY_INVALID` with Cedar's diagnostics (line and column).
 * @example
 * const policies = compilePolicies('forbid(principal, action, resource) when { context.mfa == false };');
 */
export function compilePolicies(text: string): PolicySet {
  const checked = cedar.checkParsePolicySet({ staticPolicies: text });
  if (checked.type === 'failure') throw invalid(diagnose(text, checked.errors));

  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') throw invalid(diagnose(text, parts.errors));
  if (parts.policy_templates.length > 0) throw invalid([{ message: 'policy templates (with ?principal or ?resource slots) are not supported' }]);

  const order = positions(parts.policies.length);
  const policies: [string, Policy][] = [];
  const effects = new Map<string, Effect>();
  parts.policies.forEach((policy, i) => {
    const json = cedar.policyToJson(policy);
    if (json.type === 'failure') throw invalid(diagnose(policy, json.errors));
    const id = json.json.annotations?.id ?? `policy${order[i]}`;
    if (effects.has(id)) throw invalid([{ message: `two policies have the id "${id}"` }]);
    effects.set(id, json.json.effect);
    policies.push([id, json.json]);
  });

  const key = `gatehouse:${createHash('sha256').update(text).digest('hex')}`;
  // fromEntries, not assignment: an `@id("__proto__")` must stay an ordinary key.
  const prepared = cedar.preparsePolicySet(key, { staticPolicies: Object.fromEntries(policies) });
  if (prepared.type === 'failure') throw invalid(diagnose(text, prepared.errors));
  return new PolicySet(key, effects);
}
