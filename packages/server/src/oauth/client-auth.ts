import type { OAuthCatalog } from './catalog.js';
import type { ClientRecord } from './types.js';

export type ClientAuthResult = { ok: true; client: ClientRecord } | { ok: false; reason: string; clientId: string | null };

/**
 * The client id of RFC 6749 §2.3.1 Basic credentials, without checking anything: what the
 * caller claims to be, for the audit trail. Undefined when the header is not Basic or malformed.
 */
export function basicClientId(authorization: string | undefined): string | undefined {
  const match = authorization ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(authorization.trim()) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * RFC 6749 §2.3.1 client authentication (client_secret_basic / client_secret_post) for the
 * endpoints we answer ourselves. Same rules as the token endpoint: exactly one method, a
 * confidential client, a secret that is still valid.
 */
export async function authenticateClient(
  catalog: OAuthCatalog,
  tenantId: string,
  authorization: string | undefined,
  body: Record<string, string | undefined>,
): Promise<ClientAuthResult> {
  let clientId: string | undefined;
  let secret: string | undefined;
  if (authorization !== undefined) {
    if (body.client_secret !== undefined) return { ok: false, reason: 'more than one authentication method', clientId: null };
    const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(authorization.trim());
    if (!match) return { ok: false, reason: 'malformed authorization header', clientId: null };
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { ok: false, reason: 'malformed basic credentials', clientId: null };
    try {
      // Both parts are form-urlencoded before base64 (RFC 6749 §2.3.1).
      clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
      secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
    } catch {
      return { ok: false, reason: 'malformed basic credentials', clientId: null };
    }
    if (body.client_id !== undefined && body.client_id !== clientId) return { ok: false, reason: 'client_id mismatch', clientId };
  } else {
    clientId = body.client_id;
    secret = body.client_secret;
    if (!clientId || secret === undefined) return { ok: false, reason: 'no client authentication provided', clientId: clientId ?? null };
  }
  const client = await catalog.findClient(tenantId, clientId);
  if (!client) return { ok: false, reason: 'client not found', clientId };
  // Like oidc-provider at the token endpoint, either secret method works for a confidential client.
  if (client.type !== 'confidential') return { ok: false, reason: 'public clients cannot authenticate', clientId };
  if (!(await catalog.verifySecret(tenantId, clientId, secret))) return { ok: false, reason: 'invalid secret', clientId };
  return { ok: true, client };
}
