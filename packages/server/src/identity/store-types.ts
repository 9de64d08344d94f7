/** A user as stored: one person who can sign in to one tenant. Times are epoch milliseconds. */
export interface UserRecord {
  tenantId: string;
  /** `usr_…`, random; it is the OIDC `sub`, so it never changes and is never given to anyone else. */
  id: string;
  /** As the person or the admin typed it. */
  email: string;
  /** NFKC-normalised and lower-cased `email`: what uniqueness and sign-in compare. */
  emailKey: string;
  emailVerified: boolean;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  picture: string | null;
  locale: string | null;
  disabled: boolean;
  /** Argon2id PHC string; null until the user has a password. */
  passwordHash: string | null;
  passwordChangedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** Columns a write may change; absent ones stay as they are. */
export type UserChanges = Partial<Omit<UserRecord, 'tenantId' | 'id' | 'createdAt'>>;

export interface UserPageQuery {
  /** Only emails whose key starts with this (already normalised). */
  emailKeyPrefix?: string;
  /** The email key of the last user of the previous page. */
  afterEmailKey?: string;
  limit: number;
}

/** What the user service needs from storage; every call names its tenant. */
export interface UserStore {
  /** False when the tenant has a user with the same email key. */
  insert(user: UserRecord): Promise<boolean>;
  get(tenantId: string, id: string): Promise<UserRecord | undefined>;
  getByEmailKey(tenantId: string, emailKey: string): Promise<UserRecord | undefined>;
  /** Ordered by email key. */
  list(tenantId: string, query: UserPageQuery): Promise<UserRecord[]>;
  /** The user after the change; `'email_taken'` when a changed email key belongs to another user. */
  update(tenantId: string, id: string, changes: UserChanges): Promise<UserRecord | 'not_found' | 'email_taken'>;
  /**
   * Replaces the password hash only while it is still `expected`, in one conditional write
   * (compare-and-set); false when it changed meanwhile or the user is gone, and nothing is written.
   */
  replacePasswordHash(tenantId: string, id: string, expected: string, hash: string): Promise<boolean>;
  /** False when there was no such user. */
  delete(tenantId: string, id: string): Promise<boolean>;
}
