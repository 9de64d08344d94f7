import { randomBytes } from 'node:crypto';
import { userErrors } from './errors.js';
import { checkPasswordPolicy, type PasswordHasher } from './passwords.js';
import type { UserChanges, UserRecord, UserStore } from './store-types.js';

/** A user as the admin API, the CLI and other capabilities see one: never the password hash. */
export interface User {
  tenantId: string;
  id: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  picture: string | null;
  locale: string | null;
  disabled: boolean;
  hasPassword: boolean;
  passwordChangedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** What the sign-in reads: the user and the hash to verify a password against. */
export interface UserWithPassword extends User {
  passwordHash: string | null;
}

/** The OIDC standard claims an admin may set (OIDC Core §5.1); `null` clears one. */
export interface UserProfile {
  name?: string | null;
  givenName?: string | null;
  familyName?: string | null;
  picture?: string | null;
  locale?: string | null;
}

export interface NewUser extends UserProfile {
  email: string;
  emailVerified?: boolean;
  /** Checked against the password policy, then stored as an Argon2id hash only. */
  password?: string;
}

/** PATCH semantics: absent fields stay as they are. */
export interface UserUpdate extends UserProfile {
  /** A new address is unverified unless `emailVerified` is given with it. */
  email?: string;
  emailVerified?: boolean;
}

export interface UserPage {
  users: User[];
  /** Pass as `after` for the next page; null on the last one. */
  next: string | null;
}

export interface UserServiceDeps {
  store: UserStore;
  hasher: Pick<PasswordHasher, 'hash'>;
  clock?: () => number;
  /**
   * Called after a user is disabled or deleted, or their password reset by an admin: ends their
   * sessions and revokes their refresh tokens. Awaited, so the call reports success only once
   * nothing of the user's sign-ins is left.
   */
  onDeactivated?: (tenantId: string, userId: string) => Promise<unknown> | void;
}

const MAX_EMAIL = 254; // RFC 5321 §4.5.3.1.3: a path is at most 256 octets, including "<" and ">".
const MAX_TEXT = 256;
const MAX_URL = 2048;
const MAX_PAGE = 1000;
// Any control, format, separator, private-use or unassigned code point: invisible or
// look-alike characters in an address are a spoofing tool, not a real mailbox.
const UNSAFE = /[\p{C}\p{Z}\s]/u;
// Loose BCP 47 (RFC 5646): a 2-3 letter language (or 4-8 registered), then subtags of 1-8
// letters or digits. Enough to keep garbage out of the `locale` claim, not a registry lookup.
const LOCALE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;

/**
 * The address as uniqueness and sign-in compare it: NFKC (fullwidth and compatibility forms
 * fold to their plain letters, as the password module does) and lower-cased. Lower-casing
 * the local part is not what RFC 5321 promises, but every provider people use treats it
 * case-insensitively, and two accounts for `Ann@x.com` and `ann@x.com` are a takeover risk.
 */
export function emailKeyOf(email: string): string {
  return email.trim().normalize('NFKC').toLowerCase();
}

/** A new opaque id: `usr_` and 128 random bits in lower-case base32 (26 characters). */
export function newUserId(): string {
  const bytes = randomBytes(16);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = 'usr_';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function checkEmail(input: string): string {
  const email = input.trim();
  const invalid = (reason: string) => userErrors.create('USERS_EMAIL_INVALID', { reason });
  if (email.length === 0) throw invalid('it is empty');
  if (email.length > MAX_EMAIL) throw invalid(`it is longer than ${MAX_EMAIL} characters`);
  if (UNSAFE.test(email)) throw invalid('it contains spaces or control characters');
  const at = email.indexOf('@');
  if (at === -1 || at !== email.lastIndexOf('@')) throw invalid('it must contain exactly one @');
  const domain = email.slice(at + 1);
  if (at === 0 || domain.length === 0) throw invalid('it needs a part before and after the @');
  if (domain.startsWith('.') || domain.endsWith('.') || domain.includes('..')) throw invalid('the domain is malformed');
  return email;
}

function checkText(field: string, value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null) return value;
  const text = value.trim();
  if (text.length > MAX_TEXT) throw userErrors.create('USERS_PROFILE_INVALID', { field, reason: `longer than ${MAX_TEXT} characters` });
  if (/\p{Cc}/u.test(text)) throw userErrors.create('USERS_PROFILE_INVALID', { field, reason: 'contains control characters' });
  return text === '' ? null : text;
}

function checkPicture(value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null || value === '') return value === '' ? null : value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw userErrors.create('USERS_PICTURE_INVALID');
  }
  // Relying parties put `picture` into <img src>: only https, so no mixed content and no
  // javascript:/data: URLs; http only for a developer's own machine.
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  if (value.length > MAX_URL || !(url.protocol === 'https:' || (url.protocol === 'http:' && local))) throw userErrors.create('USERS_PICTURE_INVALID');
  return value;
}

function checkLocale(value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null || value === '') return value === '' ? null : value;
  if (value.length > 35 || !LOCALE.test(value)) throw userErrors.create('USERS_LOCALE_INVALID');
  return value;
}

/** Validates every given profile field before anything is written: bad input changes nothing. */
function checkProfile(profile: UserProfile): Partial<UserRecord> {
  const checked: Partial<UserRecord> = {};
  const name = checkText('name', profile.name);
  const givenName = checkText('given_name', profile.givenName);
  const familyName = checkText('family_name', profile.familyName);
  const picture = checkPicture(profile.picture);
  const locale = checkLocale(profile.locale);
  if (name !== undefined) checked.name = name;
  if (givenName !== undefined) checked.givenName = givenName;
  if (familyName !== undefined) checked.familyName = familyName;
  if (picture !== undefined) checked.picture = picture;
  if (locale !== undefined) checked.locale = locale;
  return checked;
}

const withPassword = ({ emailKey: _key, ...user }: UserRecord): UserWithPassword => ({ ...user, hasPassword: user.passwordHash !== null });
const view = (record: UserRecord): User => {
  const { passwordHash: _hash, ...user } = withPassword(record);
  return user;
};

// An opaque page cursor: the last email key, so the next page starts after it.
const cursorOf = (emailKey: string) => Buffer.from(emailKey, 'utf8').toString('base64url');
const emailKeyOfCursor = (cursor: string) => Buffer.from(cursor, 'base64url').toString('utf8');

/**
 * Users per tenant: people who sign in with an email address (unique per tenant, compared
 * case-insensitively) and, once they have one, a password. Their id is the `sub` of every
 * token about them, so it is random, never changes and is never reused.
 */
export function createUserService({ store, hasher, clock = Date.now, onDeactivated }: UserServiceDeps) {
  async function record(tenantId: string, id: string): Promise<UserRecord> {
    const user = await store.get(tenantId, id);
    if (!user) throw userErrors.create('USERS_NOT_FOUND', { tenant: tenantId, user: id });
    return user;
  }

  async function change(tenantId: string, id: string, changes: UserChanges): Promise<UserRecord> {
    const result = await store.update(tenantId, id, { ...changes, updatedAt: clock() });
    if (result === 'not_found') throw userErrors.create('USERS_NOT_FOUND', { tenant: tenantId, user: id });
    if (result === 'email_taken') throw userErrors.create('USERS_EMAIL_TAKEN', { tenant: tenantId });
    return result;
  }

  /** Policy first, then the (slow) hash: a refused password costs no Argon2 work. */
  async function hashNew(password: string): Promise<string> {
    checkPasswordPolicy(password);
    return hasher.hash(password);
  }

  return {
    async create(tenantId: string, input: NewUser): Promise<User> {
      const email = checkEmail(input.email);
      const profile = checkProfile(input);
      const passwordHash = input.password === undefined ? null : await hashNew(input.password);
      const now = clock();
      const user: UserRecord = {
        tenantId,
        id: newUserId(),
        email,
        emailKey: emailKeyOf(email),
        emailVerified: input.emailVerified ?? false,
        name: null,
        givenName: null,
        familyName: null,
        picture: null,
        locale: null,
        ...profile,
        disabled: false,
        passwordHash,
        passwordChangedAt: passwordHash === null ? null : now,
        createdAt: now,
        updatedAt: now,
      };
      if (!(await store.insert(user))) throw userErrors.create('USERS_EMAIL_TAKEN', { tenant: tenantId });
      return view(user);
    },

    async get(tenantId: string, id: string): Promise<User> {
      return view(await record(tenantId, id));
    },

    /** An id (`usr_…`) or an email address (anything with an @): for the CLI. */
    async resolve(tenantId: string, idOrEmail: string): Promise<User> {
      if (!idOrEmail.includes('@')) return view(await record(tenantId, idOrEmail));
      const user = await store.getByEmailKey(tenantId, emailKeyOf(idOrEmail));
      if (!user) throw userErrors.create('USERS_NOT_FOUND', { tenant: tenantId, user: '(by email)' });
      return view(user);
    },

    /** For sign-in: the user with this address, compared as uniqueness compares it. */
    async findByEmail(tenantId: string, email: string): Promise<UserWithPassword | undefined> {
      const user = await store.getByEmailKey(tenantId, emailKeyOf(email));
      return user && withPassword(user);
    },

    /** For sign-in and tokens: the user behind a `sub`, or undefined. */
    async findById(tenantId: string, id: string): Promise<UserWithPassword | undefined> {
      const user = await store.get(tenantId, id);
      return user && withPassword(user);
    },

    /** Ordered by email; `emailPrefix` is compared as emails are (case-insensitively). */
    async list(tenantId: string, options: { emailPrefix?: string; limit?: number; after?: string } = {}): Promise<UserPage> {
      const limit = Math.min(Math.max(options.limit ?? 100, 1), MAX_PAGE);
      // One more than asked: the last page says so, rather than costing an empty extra request.
      const found = await store.list(tenantId, {
        emailKeyPrefix: options.emailPrefix ? emailKeyOf(options.emailPrefix) : undefined,
        afterEmailKey: options.after ? emailKeyOfCursor(options.after) : undefined,
        limit: limit + 1,
      });
      const users = found.slice(0, limit);
      const last = users[users.length - 1];
      return { users: users.map(view), next: found.length > limit && last ? cursorOf(last.emailKey) : null };
    },

    async update(tenantId: string, id: string, patch: UserUpdate): Promise<User> {
      const changes: UserChanges = checkProfile(patch);
      if (patch.email !== undefined) {
        const email = checkEmail(patch.email);
        const current = await record(tenantId, id);
        if (email !== current.email) {
          changes.email = email;
          changes.emailKey = emailKeyOf(email);
          // Verification was of the old address; a different one is unverified until shown otherwise.
          if (changes.emailKey !== current.emailKey) changes.emailVerified = false;
        }
      }
      if (patch.emailVerified !== undefined) changes.emailVerified = patch.emailVerified;
      return view(await change(tenantId, id, changes));
    },

    async setEmailVerified(tenantId: string, id: string, verified: boolean): Promise<User> {
      return view(await change(tenantId, id, { emailVerified: verified }));
    },

    /** The user can no longer sign in, and their sessions and refresh tokens end. */
    async disable(tenantId: string, id: string): Promise<User> {
      const user = await change(tenantId, id, { disabled: true });
      await onDeactivated?.(tenantId, id);
      return view(user);
    },

    async enable(tenantId: string, id: string): Promise<User> {
      return view(await change(tenantId, id, { disabled: false }));
    },

    /** Removes the user; their id is never given to anyone else (ids are random). */
    async delete(tenantId: string, id: string): Promise<void> {
      if (!(await store.delete(tenantId, id))) throw userErrors.create('USERS_NOT_FOUND', { tenant: tenantId, user: id });
      await onDeactivated?.(tenantId, id);
    },

    /**
     * Sets a new password (policy checked) and ends the user's sessions and refresh tokens:
     * an admin resets a password because the old one may be known to someone else, and a
     * session signed in with it must not outlive it (OWASP Session Management Cheat Sheet).
     */
    async setPassword(tenantId: string, id: string, password: string): Promise<User> {
      await record(tenantId, id);
      const passwordHash = await hashNew(password);
      const user = await change(tenantId, id, { passwordHash, passwordChangedAt: clock() });
      await onDeactivated?.(tenantId, id);
      return view(user);
    },

    /**
     * Stores a new hash of the same password (its Argon2 parameters changed): not a password
     * change. Written only over `verifiedHash`, the hash the password was just checked against:
     * a reset that lands between that check and this write must not be undone by the old
     * password. False when nothing was written (the hash changed meanwhile, or the user is gone).
     */
    async rehashPassword(tenantId: string, id: string, verifiedHash: string, hash: string): Promise<boolean> {
      // `updated_at` is a claim ("profile last changed"): a rehash leaves it alone.
      return store.replacePasswordHash(tenantId, id, verifiedHash, hash);
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
