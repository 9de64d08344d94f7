import { oauthErrors } from './errors.js';
import type { OAuthStore } from './types.js';

/** A person's sign-in session, as an admin sees it. Times are epoch milliseconds. */
export interface SessionView {
  /** oidc-provider's public session uid (never the cookie value). */
  id: string;
  signedInAt: number | null;
  expiresAt: number | null;
  /** Client ids the person used this session with. */
  clients: string[];
}

/** What a person allowed an application (a remembered consent), as an admin sees it. */
export interface GrantView {
  id: string;
  clientId: string;
  /** OpenID scopes (openid, profile, email, offline_access). */
  scopes: string[];
  /** API identifier → scopes. */
  resources: Record<string, string[]>;
  expiresAt: number | null;
}

interface GrantPayload {
  jti?: string;
  clientId?: string;
  openid?: { scope?: string };
  resources?: Record<string, string>;
}

interface SessionPayload {
  uid?: string;
  loginTs?: number;
  authorizations?: Record<string, { grantId?: string }>;
}

/**
 * Users' sign-in sessions for the admin API: list them, end one, or end all ("sign out
 * everywhere", which also revokes every grant and refresh token of the person).
 */
export function createSessionService({ store, clock = Date.now }: { store: OAuthStore; clock?: () => number }) {
  const live = async (tenantId: string, accountId: string) =>
    (await store.listAccountPayloads(tenantId, 'Session', accountId)).filter((row) => row.expiresAt === null || row.expiresAt > clock());

  return {
    async list(tenantId: string, accountId: string): Promise<SessionView[]> {
      return (await live(tenantId, accountId))
        .map((row) => {
          const payload = JSON.parse(row.payload) as SessionPayload;
          return { id: row.uid ?? payload.uid ?? '', signedInAt: payload.loginTs ? payload.loginTs * 1000 : null, expiresAt: row.expiresAt, clients: Object.keys(payload.authorizations ?? {}).sort() };
        })
        .sort((a, b) => (b.signedInAt ?? 0) - (a.signedInAt ?? 0));
    },

    /** Ends one session and revokes the grants made in it; refused when it is not the user's. */
    async end(tenantId: string, accountId: string, sessionId: string): Promise<void> {
      const row = (await live(tenantId, accountId)).find((r) => r.uid === sessionId);
      if (!row) throw oauthErrors.create('OAUTH_SESSION_NOT_FOUND', { session: sessionId });
      const payload = JSON.parse(row.payload) as SessionPayload;
      for (const { grantId } of Object.values(payload.authorizations ?? {})) if (grantId) await store.revokeGrant(tenantId, grantId);
      await store.destroyPayload(tenantId, 'Session', row.id);
    },

    /** The consents the person gave, per application (a first-party application's implied one too). */
    async grants(tenantId: string, accountId: string): Promise<GrantView[]> {
      const rows = (await store.listAccountPayloads(tenantId, 'Grant', accountId)).filter((row) => row.expiresAt === null || row.expiresAt > clock());
      return rows
        .map((row) => {
          const payload = JSON.parse(row.payload) as GrantPayload;
          const split = (scope: string | undefined) => (scope ?? '').split(' ').filter(Boolean);
          return {
            id: row.id,
            clientId: payload.clientId ?? '',
            scopes: split(payload.openid?.scope),
            resources: Object.fromEntries(Object.entries(payload.resources ?? {}).map(([api, scope]) => [api, split(scope)])),
            expiresAt: row.expiresAt,
          };
        })
        .sort((a, b) => a.clientId.localeCompare(b.clientId));
    },

    /** Takes a consent back: the grant and every code and token issued under it; the application asks again. */
    async revokeGrant(tenantId: string, accountId: string, grantId: string): Promise<void> {
      const row = (await store.listAccountPayloads(tenantId, 'Grant', accountId)).find((r) => r.id === grantId);
      if (!row) throw oauthErrors.create('OAUTH_GRANT_NOT_FOUND', { grant: grantId });
      await store.revokeGrant(tenantId, grantId);
      await store.destroyPayload(tenantId, 'Grant', grantId);
    },

    /** Sign out everywhere: every session, grant, code and refresh token of the person. */
    endAll: (tenantId: string, accountId: string): Promise<number> => store.revokeAccount(tenantId, accountId),
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
