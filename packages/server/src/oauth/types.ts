import type { SigningAlg } from '../config/defaults.js';

export interface ApiRecord {
  tenantId: string;
  id: string;
  /** The audience: an absolute URI (RFC 8707 resource indicator). */
  identifier: string;
  name: string;
  scopes: string[];
  accessTokenTtl: number;
  builtin: boolean;
  createdAt: number;
  /**
   * Client ids of the API's resource servers: besides a token's own client, only they may
   * introspect the API's tokens (RFC 7662 §2.1: the protected resource is authorized).
   */
  resourceServers: string[];
}

export type ClientType = 'confidential' | 'public';

export interface ClientRecord {
  tenantId: string;
  clientId: string;
  name: string;
  type: ClientType;
  grantTypes: string[];
  redirectUris: string[];
  /** API identifier → scopes this client may request for it. */
  apiScopes: Record<string, string[]>;
  /** RFC 7591 token_endpoint_auth_method; `none` for public clients. */
  authMethod: 'client_secret_basic' | 'client_secret_post' | 'none';
  /** Where RP-initiated logout may send the user back (exact match). */
  postLogoutRedirectUris: string[];
  /** First-party applications skip the consent screen. */
  firstParty: boolean;
  /** OpenID Connect Back-Channel Logout 1.0: where logout tokens are posted, if anywhere. */
  backchannelLogoutUri: string | null;
  /** Refresh token lifetimes in seconds (null: the server defaults): since last use, and since sign-in. */
  refreshTokenIdleTtl: number | null;
  refreshTokenAbsoluteTtl: number | null;
  /** Epoch ms: access tokens issued before it are refused (secret rotated without grace, revoke-tokens); null: none. */
  tokensValidAfter: number | null;
  /** OIDC Registration §2 id_token_signed_response_alg (also signs its userinfo and introspection JWTs); null: RS256. */
  idTokenAlg: SigningAlg | null;
  builtin: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface ClientSecretRecord {
  id: string;
  /** Hex SHA-256 of the secret; the secret itself is never stored. */
  hash: string;
  createdAt: number;
  /** null while current; set when rotated (end of the grace period). */
  expiresAt: number | null;
}

export interface OidcPayloadRecord {
  tenantId: string;
  model: string;
  id: string;
  payload: string;
  grantId: string | null;
  userCode: string | null;
  uid: string | null;
  /** The user (`sub`) the payload belongs to: sessions, grants, codes and tokens of people. */
  accountId: string | null;
  expiresAt: number | null;
  consumedAt: number | null;
}

/** The OpenID Connect standard claims Gatehouse keeps about a person (`sub` is the account id). */
export type AccountClaims = {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  given_name?: string;
  family_name?: string;
  picture?: string;
  locale?: string;
  /** Seconds since the epoch. */
  updated_at?: number;
};

export type SignInOutcome =
  | { ok: true; accountId: string }
  /**
   * Why, for the audit trail only: the person always reads "Invalid email or password".
   * `account` names the account tried: its user id, or `email-hmac:…` for an unknown email.
   */
  | { ok: false; reason: 'unknown_email' | 'wrong_password' | 'disabled' | 'no_password'; account: string; locked?: ('account' | 'ip')[] }
  | { ok: false; reason: 'rate_limited'; retryAfterSeconds: number; account: string };

/** What the OAuth capability needs from the identity capability: who signs in, and their claims. */
export interface SignInAccounts {
  /**
   * The claims of an account that may use its sessions and grants: not disabled, not deleted,
   * and, given the time of the sign-in (epoch seconds), with no password change after it.
   */
  find(tenantId: string, accountId: string, authTime?: number): Promise<AccountClaims | undefined>;
  /** Email and password, rate-limited per account and per address; unknown emails cost what wrong passwords cost. */
  authenticate(attempt: { tenantId: string; email: string; password: string; ip: string }): Promise<SignInOutcome>;
}

/** What the OAuth capability needs from storage. */
export interface OAuthStore {
  /** False when the identifier is taken in the tenant. */
  createApi(api: ApiRecord): Promise<boolean>;
  listApis(tenantId: string): Promise<ApiRecord[]>;
  /** Built-in APIs cannot be deleted. */
  deleteApi(tenantId: string, id: string): Promise<boolean>;
  /** Replaces name, scopes, lifetime and resource servers of an API; false when it does not exist. */
  updateApi(api: ApiRecord): Promise<boolean>;
  createClient(client: ClientRecord, secret?: ClientSecretRecord): Promise<void>;
  getClient(tenantId: string, clientId: string): Promise<{ client: ClientRecord; secrets: ClientSecretRecord[] } | undefined>;
  listClients(tenantId: string): Promise<ClientRecord[]>;
  deleteClient(tenantId: string, clientId: string): Promise<boolean>;
  /** Replaces name and API scopes of a client; false when it does not exist. */
  updateClient(client: ClientRecord): Promise<boolean>;
  /** Adds `secret` as current; earlier secrets stay valid until `previousExpireAt`. */
  rotateSecret(tenantId: string, clientId: string, secret: ClientSecretRecord, previousExpireAt: number, revokeTokensAt?: number): Promise<boolean>;
  /** Moves the client's tokens-valid-after time forward to `at` (never back); false when the client does not exist. */
  revokeClientTokens(tenantId: string, clientId: string, at: number): Promise<boolean>;
  upsertPayload(record: OidcPayloadRecord): Promise<void>;
  findPayload(tenantId: string, model: string, by: 'id' | 'uid' | 'userCode', value: string): Promise<OidcPayloadRecord | undefined>;
  /**
   * Marks a payload consumed, atomically: true for the one call that found it unconsumed, false
   * when it was consumed already (or is gone), however many calls race.
   */
  consumePayload(tenantId: string, model: string, id: string, at: number): Promise<boolean>;
  destroyPayload(tenantId: string, model: string, id: string): Promise<void>;
  /** Deletes every code and token of a grant; its JWT access tokens become revoked. */
  revokeGrant(tenantId: string, grantId: string): Promise<void>;
  /** Deletes every session, grant, code and token of a user (JWT access tokens become revoked); the number of rows removed. */
  revokeAccount(tenantId: string, accountId: string): Promise<number>;
  /** The payloads of one model that belong to a user (their sessions, say). */
  listAccountPayloads(tenantId: string, model: string, accountId: string): Promise<OidcPayloadRecord[]>;
  /**
   * Records a JWT access token issued under a grant (expiresAt: epoch ms), so that revoking the
   * grant or the account revokes it too; one issued under a grant already revoked is revoked.
   */
  recordIssuedToken(token: { tenantId: string; jti: string; grantId: string; accountId: string | null; clientId: string; expiresAt: number }): Promise<void>;
  /** JWT access tokens cannot be recalled; their jti is kept until expiry so introspection reports them inactive. */
  revokeToken(tenantId: string, jti: string, expiresAt: number): Promise<void>;
  isTokenRevoked(tenantId: string, jti: string): Promise<boolean>;
  purgeExpired(now: number): Promise<number>;
}
