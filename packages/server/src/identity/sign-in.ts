import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccountClaims, SignInAccounts, SignInOutcome } from '../oauth/index.js';
import type { LoginThrottle } from './brute-force.js';
import type { PasswordHasher } from './passwords.js';
import { emailKeyOf } from './users.js';

/** A person as the sign-in sees them. */
export interface SignInUser {
  id: string;
  email: string;
  emailVerified: boolean;
  name?: string | null;
  givenName?: string | null;
  familyName?: string | null;
  picture?: string | null;
  locale?: string | null;
  disabled: boolean;
  passwordHash: string | null;
  /** Epoch milliseconds. */
  passwordChangedAt: number | null;
  /** Epoch milliseconds. */
  updatedAt: number;
}

/** What the sign-in reads and writes of the user store. */
export interface SignInUserStore {
  findByEmail(tenantId: string, email: string): Promise<SignInUser | undefined>;
  findById(tenantId: string, id: string): Promise<SignInUser | undefined>;
  /**
   * Stores a new hash of the same password (its parameters changed); not a password change.
   * Only over `verifiedHash`: false, and nothing written, when the password was reset meanwhile.
   */
  rehashPassword(tenantId: string, id: string, verifiedHash: string, hash: string): Promise<boolean>;
}

export interface SignInDeps {
  users: SignInUserStore;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  /**
   * HMAC key naming an unknown email in the audit trail (derived from the master key): the
   * same address always gets the same name, so attempts on it can be counted, but the trail
   * does not hold addresses typed by strangers.
   */
  auditKey: Buffer;
  /** Receives rehash failures (the sign-in itself succeeds). */
  onRehashError?: (error: unknown) => void;
  /** The wait of the progressive delay (tests make it instant). */
  wait?: (ms: number) => Promise<unknown>;
}

/** The standard claims of a user (OIDC Core §5.1), absent ones left out. */
export function claimsOf(user: SignInUser): AccountClaims {
  const claims: AccountClaims = { sub: user.id, email: user.email, email_verified: user.emailVerified, updated_at: Math.floor(user.updatedAt / 1000) };
  if (user.name) claims.name = user.name;
  if (user.givenName) claims.given_name = user.givenName;
  if (user.familyName) claims.family_name = user.familyName;
  if (user.picture) claims.picture = user.picture;
  if (user.locale) claims.locale = user.locale;
  return claims;
}

/**
 * Password sign-in for the login page, and the accounts behind sessions and tokens. Every
 * attempt passes the brute-force throttle first; an unknown email, a user without a password
 * and a wrong password all cost one Argon2id verification and count as a failure, so timing
 * and counters tell an attacker nothing about which emails exist.
 */
export function createSignInAccounts({ users, hasher, throttle, auditKey, onRehashError, wait = sleep }: SignInDeps): SignInAccounts {
  /** How the audit trail names the account an attempt was for: its user id, or an HMAC of the normalised email. */
  const accountName = (user: SignInUser | undefined, email: string) => user?.id ?? `email-hmac:${createHmac('sha256', auditKey).update(emailKeyOf(email)).digest('base64url')}`;
  return {
    async find(tenantId, accountId, authTime) {
      const user = await users.findById(tenantId, accountId);
      if (!user || user.disabled) return undefined;
      // A password change ends what was signed in before it. Resetting a password ends the
      // sessions and grants that exist, but a sign-in whose password check began before the
      // reset may only reach its session afterwards; this refuses it. (Seconds: a sign-in
      // begun within the second of the change is let through.)
      if (authTime !== undefined && user.passwordChangedAt !== null && Math.floor(user.passwordChangedAt / 1000) > authTime) return undefined;
      return claimsOf(user);
    },

    async authenticate({ tenantId, email, password, ip }): Promise<SignInOutcome> {
      const admission = await throttle.before({ tenantId, email, ip });
      if (!admission.allowed) {
        return { ok: false, reason: 'rate_limited', retryAfterSeconds: admission.retryAfterSeconds, account: accountName(await users.findByEmail(tenantId, email), email) };
      }
      if (admission.delayMs > 0) await wait(admission.delayMs);
      const user = await users.findByEmail(tenantId, email);
      const refuse = async (reason: 'unknown_email' | 'wrong_password' | 'disabled' | 'no_password'): Promise<SignInOutcome> => {
        const { locked } = await admission.failed();
        return { ok: false, reason, account: accountName(user, email), ...(locked.length > 0 ? { locked } : {}) };
      };
      if (!user?.passwordHash) {
        await hasher.verifyDummy(password);
        return refuse(user ? 'no_password' : 'unknown_email');
      }
      const verified = await hasher.verify(user.passwordHash, password);
      if (!verified.ok) return refuse('wrong_password');
      // The right password of a disabled account signs nobody in, and reads the same.
      if (user.disabled) return refuse('disabled');
      if (verified.needsRehash) {
        try {
          // Conditional on the hash just verified: an admin reset since then stays in place.
          await users.rehashPassword(tenantId, user.id, user.passwordHash, await hasher.hash(password));
        } catch (error) {
          onRehashError?.(error);
        }
      }
      await admission.succeeded();
      return { ok: true, accountId: user.id };
    },
  };
}
