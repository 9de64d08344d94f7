/**
 * OpenID Connect Discovery: find the issuer's `jwks_uri`.
 */
import { GatehouseTokenError } from './errors.js';
import { fetchJson, isJsonObject, type FetchLike } from './fetch-json.js';

/**
 * The discovery URL of an issuer. OpenID Connect Discovery 1.0 §4: a terminating "/" of the
 * issuer is removed before "/.well-known/openid-configuration" is appended, so
 * `https://id.example.com/t/default` is looked up at
 * `https://id.example.com/t/default/.well-known/openid-configuration`.
 */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/**
 * Fetches the discovery document of `issuer` and returns its validated `jwks_uri`.
 */
export async function discoverJwksUri(issuer: string, fetch: FetchLike, timeoutMs: number): Promise<string> {
  const document = await fetchJson(fetch, discoveryUrl(issuer), timeoutMs, 'DISCOVERY_FAILED');
  if (!isJsonObject(document)) {
    throw new GatehouseTokenError('DISCOVERY_FAILED', { detail: 'the discovery document is not a JSON object' });
  }
  // OpenID Connect Discovery 1.0 §4.3 (and RFC 8414 §3.3): the issuer in the document MUST be
  // identical to the one we asked for. Otherwise a misrouted or hostile endpoint could hand us
  // another issuer's keys and we would accept that issuer's tokens (mix-up).
  if (document.issuer !== issuer) {
    throw new GatehouseTokenError('DISCOVERY_ISSUER_MISMATCH', {
      detail: `expected "${issuer}", the document names ${JSON.stringify(document.issuer)}`,
    });
  }
  const jwksUri = document.jwks_uri;
  if (typeof jwksUri !== 'string' || !URL.canParse(jwksUri)) {
    throw new GatehouseTokenError('DISCOVERY_FAILED', { detail: 'the discovery document has no valid jwks_uri' });
  }
  // Keys fetched over a weaker channel than the issuer itself could be swapped in transit.
  const protocol = new URL(jwksUri).protocol;
  if (protocol !== 'https:' && protocol !== new URL(issuer).protocol) {
    throw new GatehouseTokenError('DISCOVERY_FAILED', { detail: `jwks_uri must use https, got ${protocol}` });
  }
  return jwksUri;
}
