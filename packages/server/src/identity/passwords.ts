import { randomBytes } from 'node:crypto';
import { Algorithm, Version, hash as argon2Hash, parseOptions, verify as argon2Verify } from '@node-rs/argon2';
import { readCommonPasswords } from './common-passwords.js';
import { passwordErrors } from './password-errors.js';

/** Argon2id cost: memory in KiB, passes, lanes. Every hash carries them in its PHC string. */
export interface PasswordHashParams {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

// OWASP Password Storage Cheat Sheet, first Argon2id setting (m=19 MiB, t=2, p=1): about
// 20-40 ms per hash on one core, which bounds both an attacker's guesses and our login CPU.
export const defaultPasswordHashParams: Readonly<PasswordHashParams> = Object.freeze({ memoryCost: 19456, timeCost: 2, parallelism: 1 });

// Between NIST SP 800-63B-4's 8 (password plus a second factor) and 15 (password alone).
export const PASSWORD_MIN_LENGTH = 12;
// 63B asks to allow at least 64; a cap keeps hashing cost and request size bounded.
export const PASSWORD_MAX_LENGTH = 128;

const OUTPUT_LENGTH = 32;
const SALT_LENGTH = 16;

export interface PasswordVerification {
  ok: boolean;
  /** True when the password is right but the stored hash was made with other parameters: hash it again and store that. */
  needsRehash: boolean;
}

/**
 * NIST SP 800-63B §5.1.1.2: normalise (NFKC) before hashing, so a password typed with a
 * composed, decomposed or fullwidth character on another keyboard still matches.
 */
const normalize = (password: string): string => password.normalize('NFKC');

// Code points, not UTF-16 units: an emoji is one character to the person typing it.
function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

let common: ReadonlySet<string> | undefined;

/**
 * Built on the first policy check, not at import (server start). Entries shorter than the
 * minimum length can never match a password that passed the length rule, so only the rest
 * (229 of 30,000) are held in memory. `.length` counts UTF-16 units, never fewer than code
 * points, so the cheap filter keeps every entry that could match.
 */
function commonList(): ReadonlySet<string> {
  common ??= new Set(readCommonPasswords().filter((entry) => entry.length >= PASSWORD_MIN_LENGTH));
  return common;
}

/**
 * Refuses a new password that is too short, too long or one of the most common leaked
 * passwords (case-insensitively: the list is lower-case). Lengths count Unicode code points
 * after NFKC, as the hash sees them. Call it when a password is set, never at sign-in: a
 * stored password stays valid when the policy changes.
 */
export function checkPasswordPolicy(password: string): void {
  const normalized = normalize(password);
  const length = codePoints(normalized);
  if (length < PASSWORD_MIN_LENGTH) throw passwordErrors.create('USERS_PASSWORD_TOO_SHORT', { minimum: PASSWORD_MIN_LENGTH });
  if (length > PASSWORD_MAX_LENGTH) throw passwordErrors.create('USERS_PASSWORD_TOO_LONG', { maximum: PASSWORD_MAX_LENGTH });
  if (commonList().has(normalized.toLowerCase())) throw passwordErrors.create('USERS_PASSWORD_COMMON');
}

function checkParams({ memoryCost, timeCost, parallelism }: PasswordHashParams): void {
  const whole = (name: string, value: number, min: number, max: number) => {
    if (!Number.isInteger(value) || value < min || value > max) throw new TypeError(`Argon2 ${name} must be an integer between ${min} and ${max}, not ${value}`);
  };
  whole('parallelism', parallelism, 1, 255);
  // Argon2 (RFC 9106 §3.1) needs at least 8 KiB per lane.
  whole('memoryCost', memoryCost, 8 * parallelism, 2 ** 32 - 1);
  whole('timeCost', timeCost, 1, 2 ** 32 - 1);
}

/**
 * Argon2id password hashing with the given cost. `verify` reads the parameters from the
 * stored hash, so hashes made with older settings keep working and report `needsRehash`.
 *
 * @example
 * const passwords = createPasswordHasher({ memoryCost: config.passwordMemoryKib, timeCost: config.passwordTimeCost, parallelism: config.passwordParallelism });
 * checkPasswordPolicy(input);
 * const stored = await passwords.hash(input);
 * const { ok, needsRehash } = user ? await passwords.verify(user.passwordHash, input) : { ok: await passwords.verifyDummy(input), needsRehash: false };
 */
export function createPasswordHasher(params: PasswordHashParams = defaultPasswordHashParams) {
  checkParams(params);
  const current = Object.freeze({ memoryCost: params.memoryCost, timeCost: params.timeCost, parallelism: params.parallelism });
  const options = { ...current, algorithm: Algorithm.Argon2id, version: Version.V0x13, outputLen: OUTPUT_LENGTH };
  let dummy: Promise<string> | undefined;

  function isCurrent(stored: string): boolean {
    const used = parseOptions(stored);
    return (
      used.algorithm === Algorithm.Argon2id &&
      used.version === Version.V0x13 &&
      used.memoryCost === current.memoryCost &&
      used.timeCost === current.timeCost &&
      used.parallelism === current.parallelism &&
      used.outputLen === OUTPUT_LENGTH &&
      used.saltLen >= SALT_LENGTH
    );
  }

  /**
   * The hash `verifyDummy` spends its work on: of 32 random bytes, made once with the current
   * parameters. Await it at start-up to keep that first hash out of the first unknown-email sign-in.
   */
  function dummyHash(): Promise<string> {
    dummy ??= argon2Hash(randomBytes(32), options);
    return dummy;
  }

  return {
    params: current,

    /** A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a fresh 16-byte salt. Check the policy first. */
    async hash(password: string): Promise<string> {
      return argon2Hash(normalize(password), options);
    },

    /** Whether the password matches the stored hash. A malformed stored hash throws: that is corrupt data, not a wrong password. */
    async verify(stored: string, password: string): Promise<PasswordVerification> {
      const ok = await argon2Verify(stored, normalize(password));
      return { ok, needsRehash: ok && !isCurrent(stored) };
    },

    /**
     * For a sign-in whose account does not exist: spends the work of one `verify` at the
     * current parameters, then answers false, so the response time does not tell which
     * emails have an account. The first call also computes the dummy hash once.
     */
    async verifyDummy(password: string): Promise<false> {
      await argon2Verify(await dummyHash(), normalize(password));
      return false;
    },

    dummyHash,
  };
}

export type PasswordHasher = ReturnType<typeof createPasswordHasher>;
