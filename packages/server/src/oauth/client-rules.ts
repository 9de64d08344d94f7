import { oauthErrors } from './errors.js';
import { privateTarget } from './outbound.js';
import type { ClientRecord, ClientType } from './types.js';

/** Grant types a client can be registered with. */
export const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
export const supportedGrantTypes = ['client_credentials', 'authorization_code', 'refresh_token', DEVICE_CODE] as const;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
/** RFC 8252 §7.1: a private-use scheme is a reversed domain name (`com.example.app`). */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/;
const MIN_REFRESH_TTL = 60;
const MAX_REFRESH_TTL = 365 * 86400;

/**
 * Where a browser may be sent with a code (or after logout), as RFC 9700 §2.1 and RFC 8252
 * allow it: an absolute URI without a fragment, over https, or http to a loopback host
 * (native apps and development), or a private-use scheme for a public native app. Matching
 * is exact, so no wildcards exist to check.
 */
export function checkRedirectUri(uri: string, kind: 'redirect_uri' | 'post_logout_redirect_uri' | 'backchannel_logout_uri', type: ClientType, options: { allowPrivateOutbound?: boolean } = {}): void {
  const refuse = (reason: string) => {
    throw oauthErrors.create('OAUTH_REDIRECT_URI_INVALID', { kind, uri: uri.slice(0, 200), reason });
  };
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return refuse('it is not an absolute URI');
  }
  // Gatehouse itself posts to a back-channel logout URI (a browser follows the others): with
  // private outbound off, one that names a private or loopback address is refused here, not
  // only when a logout tries it (SSRF). Names are checked again, resolved, at connection.
  const privately = kind === 'backchannel_logout_uri' && !options.allowPrivateOutbound ? privateTarget(uri) : undefined;
  if (privately) refuse(`${privately}, and back-channel requests may not reach private networks (GATEHOUSE_ALLOW_PRIVATE_OUTBOUND is off)`);
  if (uri.includes('#')) refuse('it has a fragment');
  if (url.username || url.password) refuse('it carries credentials');
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:') {
    if (LOOPBACK.has(url.hostname)) return;
    refuse('http is allowed only to localhost, 127.0.0.1 or [::1]; use https');
  }
  if (kind !== 'backchannel_logout_uri' && type === 'public' && PRIVATE_USE_SCHEME.test(url.protocol)) return;
  refuse(type === 'public' ? 'use https, a loopback http address, or a private-use scheme like com.example.app:/callback' : 'use https (or http to a loopback address)');
}

/** RFC 8252 §7.3: loopback IP literals, on which a native app listens on any port it gets. */
const LOOPBACK_IP = new Set(['127.0.0.1', '[::1]']);

/**
 * OIDC Registration §2 application_type. A public client that is sent back to a private-use
 * scheme or to a loopback IP address is a native app (RFC 8252): the engine then accepts its
 * scheme, and a loopback redirect on whatever port the app listens on (§7.3: the port is not
 * compared). Anything else, `localhost` development servers of web apps included, is `web`.
 * A native app may not use https to a loopback host (the engine refuses it, §7.2), so a client
 * with one stays `web`, whose rules the registration checks already followed.
 */
export function applicationTypeOf(client: Pick<ClientRecord, 'type' | 'redirectUris'>): 'native' | 'web' {
  if (client.type !== 'public') return 'web';
  const urls = client.redirectUris.map((uri) => new URL(uri));
  if (urls.some((u) => u.protocol === 'https:' && LOOPBACK.has(u.hostname))) return 'web';
  return urls.some((u) => PRIVATE_USE_SCHEME.test(u.protocol) || (u.protocol === 'http:' && LOOPBACK_IP.has(u.hostname))) ? 'native' : 'web';
}

export interface ClientShape {
  type: ClientType;
  grantTypes: string[];
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  refreshTokenIdleTtl: number | null;
  refreshTokenAbsoluteTtl: number | null;
}

/** Every rule a client's grant types, URIs and lifetimes must satisfy together. */
export function checkClientShape(c: ClientShape, options: { allowPrivateOutbound?: boolean } = {}): void {
  if (c.grantTypes.length === 0) throw oauthErrors.create('OAUTH_GRANT_TYPES_EMPTY');
  for (const grantType of c.grantTypes) {
    if (!(supportedGrantTypes as readonly string[]).includes(grantType)) {
      throw oauthErrors.create('OAUTH_GRANT_TYPE_UNSUPPORTED', { grantType, supported: supportedGrantTypes.join(', ') });
    }
  }
  if (c.type === 'public' && c.grantTypes.includes('client_credentials')) throw oauthErrors.create('OAUTH_PUBLIC_CLIENT_CREDENTIALS');
  const interactive = c.grantTypes.includes('authorization_code');
  // Refresh tokens are for people signed in, in a browser or through a device code.
  if (c.grantTypes.includes('refresh_token') && !interactive && !c.grantTypes.includes(DEVICE_CODE)) throw oauthErrors.create('OAUTH_REFRESH_WITHOUT_CODE');
  if (interactive && c.redirectUris.length === 0) throw oauthErrors.create('OAUTH_REDIRECT_URIS_REQUIRED');
  if (!interactive && (c.redirectUris.length > 0 || c.postLogoutRedirectUris.length > 0 || c.backchannelLogoutUri)) {
    throw oauthErrors.create('OAUTH_REDIRECT_URIS_UNUSED');
  }
  for (const uri of c.redirectUris) checkRedirectUri(uri, 'redirect_uri', c.type);
  for (const uri of c.postLogoutRedirectUris) checkRedirectUri(uri, 'post_logout_redirect_uri', c.type);
  if (c.backchannelLogoutUri) checkRedirectUri(c.backchannelLogoutUri, 'backchannel_logout_uri', c.type, options);
  for (const ttl of [c.refreshTokenIdleTtl, c.refreshTokenAbsoluteTtl]) {
    if (ttl !== null && (!Number.isInteger(ttl) || ttl < MIN_REFRESH_TTL || ttl > MAX_REFRESH_TTL)) {
      throw oauthErrors.create('OAUTH_REFRESH_TTL_INVALID', { minimum: MIN_REFRESH_TTL, maximum: MAX_REFRESH_TTL });
    }
  }
  if (c.refreshTokenIdleTtl !== null && c.refreshTokenAbsoluteTtl !== null && c.refreshTokenIdleTtl > c.refreshTokenAbsoluteTtl) {
    throw oauthErrors.create('OAUTH_REFRESH_TTL_ORDER');
  }
}

/** The client fields an update may change, besides its name and APIs. */
export type ClientShapeChanges = Partial<Pick<ClientRecord, 'grantTypes' | 'redirectUris' | 'postLogoutRedirectUris' | 'firstParty' | 'backchannelLogoutUri' | 'refreshTokenIdleTtl' | 'refreshTokenAbsoluteTtl' | 'idTokenAlg'>>;
