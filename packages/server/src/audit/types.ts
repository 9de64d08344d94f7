export const auditActions = [
  'token.issued',
  'token.denied',
  'token.introspected',
  'token.revoked',
  'client.authentication_failed',
  'admin.authentication_failed',
  'tenant.created',
  'tenant.updated',
  'api.created',
  'api.updated',
  'api.deleted',
  'client.created',
  'client.updated',
  'client.deleted',
  'client.secret_rotated',
  'client.tokens_revoked',
  'key.rotated',
  'key.retired',
  'user.created',
  'user.updated',
  'user.disabled',
  'user.enabled',
  'user.deleted',
  'user.password_reset',
  'authz.schema_written',
  'authz.policies_written',
  'authz.relationships_written',
  'authz.relationships_deleted',
  'authz.check',
  'authz.lookup',
  'authz.expand',
  'login.succeeded',
  'login.failed',
  'login.rate_limited',
  'consent.granted',
  'consent.denied',
  'logout',
  'logout.backchannel_sent',
  'logout.backchannel_failed',
  'user.signed_out_everywhere',
  'user.session_ended',
  'user.grant_revoked',
  'refresh_token.reused',
  'authorization_code.reused',
  'device_code.reused',
  'device.user_code_rate_limited',
  'authorization.denied',
  'token.refreshed',
] as const;
export type AuditAction = (typeof auditActions)[number];

export interface AuditEvent {
  tenantId: string;
  time: number;
  /** Who: a client id, `cli`, `system`, or the admin token's subject. */
  actor?: string | null;
  action: AuditAction;
  /** What it acted on: a client id, API identifier, key id… */
  target?: string | null;
  result: 'success' | 'failure';
  requestId?: string | null;
  ip?: string | null;
  /** Extra facts; never secrets or tokens. */
  details?: Record<string, unknown> | null;
}

export interface StoredAuditEvent extends Required<Omit<AuditEvent, 'details'>> {
  id: number;
  details: Record<string, unknown> | null;
}

export interface AuditQuery {
  tenantId: string;
  action?: string;
  actor?: string;
  result?: string;
  requestId?: string;
  since?: number;
  until?: number;
  /** Page backwards from this event id. */
  before?: number;
  limit: number;
}

export interface AuditStore {
  append(events: AuditEvent[]): Promise<void>;
  /**
   * Deletes events older than `before` (epoch ms), at most `limit` of them, oldest first;
   * returns how many went. Called in a loop so one call never holds the database for long.
   */
  prune(before: number, limit: number): Promise<number>;
  /** Newest first. */
  query(query: AuditQuery): Promise<StoredAuditEvent[]>;
}
