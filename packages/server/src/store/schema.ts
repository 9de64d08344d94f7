import type { Generated } from 'kysely';

/** Table types shared by both dialects. Times are epoch milliseconds; JSON is stored as text. */
export interface Database {
  gh_revision: { id: number; value: number };
  gh_changes: { revision: number; tenant_id: string; kind: string; created_at: number };
  tenants: { id: string; display_name: string; created_at: number; logo_type: string | null; logo_data: string | null };
  signing_keys: {
    tenant_id: string;
    kid: string;
    alg: string;
    status: string;
    public_jwk: string;
    private_jwk_enc: string;
    created_at: number;
    deactivated_at: number | null;
    retire_at: number | null;
  };
  apis: {
    tenant_id: string;
    id: string;
    identifier: string;
    name: string;
    scopes: string;
    access_token_ttl: number;
    builtin: number;
    created_at: number;
    /** JSON array of client ids (RFC 7662 §2.1: who may introspect the API's tokens). */
    resource_servers: string;
  };
  clients: {
    tenant_id: string;
    client_id: string;
    name: string;
    type: string;
    grant_types: string;
    redirect_uris: string;
    api_scopes: string;
    auth_method: string;
    post_logout_redirect_uris: string;
    first_party: number;
    backchannel_logout_uri: string | null;
    refresh_idle_ttl: number | null;
    refresh_absolute_ttl: number | null;
    tokens_valid_after: number | null;
    id_token_alg: string | null;
    builtin: number;
    created_at: number;
    updated_at: number;
  };
  client_secrets: {
    tenant_id: string;
    client_id: string;
    id: string;
    hash: string;
    created_at: number;
    expires_at: number | null;
  };
  oidc_payloads: {
    tenant_id: string;
    model: string;
    id: string;
    payload: string;
    grant_id: string | null;
    user_code: string | null;
    uid: string | null;
    account_id: string | null;
    expires_at: number | null;
    consumed_at: number | null;
  };
  authz_schemas: { tenant_id: string; text: string; revision: number; updated_at: number };
  authz_policies: { tenant_id: string; text: string; revision: number; updated_at: number };
  relationships: {
    tenant_id: string;
    resource_type: string;
    resource_id: string;
    relation: string;
    subject_type: string;
    subject_id: string;
    subject_relation: string;
    caveat_name: string | null;
    caveat_context: string | null;
    expires_at: number | null;
    revision: number;
  };
  users: {
    tenant_id: string;
    id: string;
    email: string;
    email_key: string;
    email_verified: number;
    name: string | null;
    given_name: string | null;
    family_name: string | null;
    picture: string | null;
    locale: string | null;
    disabled: number;
    password_hash: string | null;
    password_changed_at: number | null;
    created_at: number;
    updated_at: number;
  };
  revoked_tokens: { tenant_id: string; jti: string; expires_at: number };
  issued_tokens: { tenant_id: string; jti: string; grant_id: string; account_id: string | null; client_id: string; expires_at: number };
  gh_node_urls: { public_url: string; seen_at: number };
  audit_events: {
    id: Generated<number>;
    tenant_id: string;
    time: number;
    actor: string | null;
    action: string;
    target: string | null;
    result: string;
    request_id: string | null;
    ip: string | null;
    details: string | null;
  };
}
