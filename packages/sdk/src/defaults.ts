/**
 * Every option of `createVerifier`, in one place: default, one-line description, example and
 * recommendation. docs/sdk.md carries the same table; a test keeps the two in step.
 */
import { DEFAULT_ALGORITHMS } from './algorithms.js';

/** Numeric defaults, in seconds. */
export const VERIFIER_DEFAULTS = Object.freeze({
  clockToleranceSeconds: 60,
  jwksCacheTtlSeconds: 600,
  jwksRefreshMinIntervalSeconds: 30,
  fetchTimeoutSeconds: 5,
});

/** Documentation of one option. */
export interface OptionDoc {
  /** `undefined` when the option is required or has no default. */
  readonly default: unknown;
  readonly required: boolean;
  readonly description: string;
  readonly example: string;
  readonly recommendation: string;
}

/** The documented options of `createVerifier`. */
export const verifierOptions = {
  issuer: {
    default: undefined,
    required: true,
    description: 'Issuer URL of the Gatehouse tenant; compared to the discovery `issuer` and the token `iss` exactly.',
    example: "'https://id.example.com/t/default'",
    recommendation: 'https; plain http is accepted for loopback hosts only.',
  },
  audience: {
    default: undefined,
    required: true,
    description: 'The audience (or list of accepted audiences) this resource server answers to; `aud` must contain one.',
    example: "'https://api.example.com'",
    recommendation: 'One audience per API, registered in Gatehouse.',
  },
  algorithms: {
    default: DEFAULT_ALGORITHMS,
    required: false,
    description: 'JWS algorithm allowlist. `none` and HS* are refused with a TypeError.',
    example: "['ES256']",
    recommendation: 'Narrow it to the algorithm your tenant signs with.',
  },
  requiredScopes: {
    default: [],
    required: false,
    description: 'Scopes every token must carry (space-separated `scope` claim).',
    example: "['orders:read']",
    recommendation: 'Prefer per-route `scopes` in the middleware.',
  },
  clockToleranceSeconds: {
    default: VERIFIER_DEFAULTS.clockToleranceSeconds,
    required: false,
    description: 'Leeway applied to `exp`, `nbf` and `iat` for clock skew.',
    example: '30',
    recommendation: 'Keep it small; access tokens live about 10 minutes.',
  },
  jwksCacheTtlSeconds: {
    default: VERIFIER_DEFAULTS.jwksCacheTtlSeconds,
    required: false,
    description: 'How long a fetched JWKS is used before it is fetched again.',
    example: '300',
    recommendation: 'Default.',
  },
  jwksRefreshMinIntervalSeconds: {
    default: VERIFIER_DEFAULTS.jwksRefreshMinIntervalSeconds,
    required: false,
    description: 'Minimum time between two fetches of the JWKS (or discovery); bounds refetches on unknown `kid`s.',
    example: '60',
    recommendation: 'Default; lowering it lets junk tokens cause more requests to the issuer.',
  },
  fetchTimeoutSeconds: {
    default: VERIFIER_DEFAULTS.fetchTimeoutSeconds,
    required: false,
    description: 'Timeout of each discovery or JWKS request.',
    example: '2',
    recommendation: 'Default.',
  },
  fetch: {
    default: 'globalThis.fetch',
    required: false,
    description: 'The fetch implementation used for discovery and JWKS (for proxies or tests).',
    example: 'undici fetch with a proxy dispatcher',
    recommendation: 'Default.',
  },
  clock: {
    default: '() => new Date()',
    required: false,
    description: 'Source of the current time for claim checks and cache ages.',
    example: '() => frozenDate',
    recommendation: 'Only for tests.',
  },
} as const satisfies Record<string, OptionDoc>;
