/**
 * OAuth scopes: parsing the `scope` claim and checking requirements.
 */
import type { VerifiedToken } from './verifier.js';

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Validates a list of required scopes given by configuration (misuse → TypeError), so a
 * typo such as `'orders read'` fails at boot instead of denying every request.
 */
export function validateScopes(scopes: readonly string[] | undefined, where: string): readonly string[] {
  if (scopes === undefined) return [];
  if (!Array.isArray(scopes)) throw new TypeError(`${where}: "scopes" must be an array of strings`);
  for (const scope of scopes) {
    if (typeof scope !== 'string' || !SCOPE_TOKEN.test(scope)) {
      throw new TypeError(`${where}: ${JSON.stringify(scope)} is not a valid scope (RFC 6749 §3.3)`);
    }
  }
  return Object.freeze([...scopes]);
}

/** RFC 9068 §2.2.3 / RFC 6749 §3.3: `scope` is one space-separated string. */
export function parseScopeClaim(scope: string): string[] {
  return scope === '' ? [] : scope.split(' ').filter((entry) => entry !== '');
}

/** The entries of `required` missing from `granted`. */
export function missingScopes(granted: readonly string[], required: readonly string[]): string[] {
  return required.filter((scope) => !granted.includes(scope));
}

/**
 * Whether a verified token carries every one of `scopes`.
 *
 * @example
 * ```ts
 * const token = await verifier.verify(accessToken);
 * if (!hasScopes(token, ['orders:write'])) {
 *   // read-only view
 * }
 * ```
 */
export function hasScopes(token: VerifiedToken, scopes: readonly string[]): boolean {
  return scopes.every((scope) => token.scopes.includes(scope));
}
