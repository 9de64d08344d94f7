/**
 * A real local issuer for tests: node:http on 127.0.0.1, port 0, serving per-tenant
 * discovery documents and JWKS, counting every request. Tokens are minted with jose.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** Frozen "now" of the suites, in seconds: 2023-11-14T22:13:20Z. */
export const T0 = 1_700_000_000;
export const AUDIENCE = 'https://api.example.com';

export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** The public JWK as published, with kid (and alg unless told otherwise). */
  readonly jwk: JWK;
}

export async function createTestKey(alg: string, kid: string, options: { publishAlg?: boolean } = {}): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, use: 'sig' };
  if (options.publishAlg !== false) jwk.alg = alg;
  return { kid, alg, privateKey, publicKey, jwk };
}

interface Tenant {
  keys: unknown[];
  /** Overrides the `issuer` of the discovery document (to simulate a lying endpoint). */
  discoveryIssuer?: string;
  /** Answer the JWKS with this status instead of 200. */
  jwksStatus?: number;
  /** Answer discovery with this status instead of 200. */
  discoveryStatus?: number;
}

export interface RequestCounts {
  discovery: number;
  jwks: number;
}

export interface TestIssuer {
  readonly origin: string;
  /** Issuer URL of a tenant, e.g. http://127.0.0.1:1234/t/default. */
  issuer(tenant?: string): string;
  /** Creates or replaces a tenant. */
  setTenant(tenant: string, settings: Tenant): void;
  /** Changes a tenant's published keys (rotation). */
  setKeys(tenant: string, keys: unknown[]): void;
  /** Changes a tenant's response behaviour. */
  update(tenant: string, settings: Partial<Tenant>): void;
  /** Request counts of a tenant since start. */
  counts(tenant?: string): RequestCounts;
  close(): Promise<void>;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  const tenants = new Map<string, Tenant>();
  const counts = new Map<string, RequestCounts>();
  let origin = '';

  const server: Server = createServer((request, response) => {
    const match = /^\/t\/([a-z0-9-]+)\/(\.well-known\/openid-configuration|jwks)$/.exec(request.url ?? '');
    const tenant = match?.[1] === undefined ? undefined : tenants.get(match[1]);
    if (match === null || tenant === undefined || match[1] === undefined) {
      response.statusCode = 404;
      response.end();
      return;
    }
    const name = match[1];
    const count = counts.get(name) ?? { discovery: 0, jwks: 0 };
    counts.set(name, count);
    const isDiscovery = match[2] !== 'jwks';
    if (isDiscovery) count.discovery += 1;
    else count.jwks += 1;

    const status = (isDiscovery ? tenant.discoveryStatus : tenant.jwksStatus) ?? 200;
    response.statusCode = status;
    response.setHeader('content-type', 'application/json');
    if (status !== 200) {
      response.end('{"error":"unavailable"}');
      return;
    }
    const body = isDiscovery
      ? {
          issuer: tenant.discoveryIssuer ?? `${origin}/t/${name}`,
          jwks_uri: `${origin}/t/${name}/jwks`,
          id_token_signing_alg_values_supported: ['ES256'],
        }
      : { keys: tenant.keys };
    response.end(JSON.stringify(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    issuer: (tenant = 'default') => `${origin}/t/${tenant}`,
    setTenant: (tenant, settings) => void tenants.set(tenant, { ...settings }),
    setKeys: (tenant, keys) => {
      const existing = tenants.get(tenant);
      if (existing === undefined) throw new Error(`no tenant ${tenant}`);
      existing.keys = keys;
    },
    update: (tenant, settings) => {
      const existing = tenants.get(tenant);
      if (existing === undefined) throw new Error(`no tenant ${tenant}`);
      Object.assign(existing, settings);
    },
    counts: (tenant = 'default') => ({ ...(counts.get(tenant) ?? { discovery: 0, jwks: 0 }) }),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Standard RFC 9068 claims for a token of `issuer`, valid at T0 for 10 minutes. */
export function accessClaims(issuer: string, overrides: JWTPayload = {}): JWTPayload {
  return {
    iss: issuer,
    aud: AUDIENCE,
    sub: 'user-1',
    client_id: 'app-1',
    scope: 'orders:read profile',
    iat: T0,
    exp: T0 + 600,
    jti: 'jti-1',
    ...overrides,
  };
}

/** Signs `claims` with `key`; header defaults to { alg, kid, typ: 'at+jwt' }. */
export async function mint(key: TestKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const alg = typeof header.alg === 'string' ? header.alg : key.alg;
  // A WebCrypto key is bound to one algorithm; re-import the RSA key to sign PS256 with it.
  const signingKey = alg === key.alg ? key.privateKey : await importJWK(await exportJWK(key.privateKey), alg);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
    .sign(signingKey);
}

/** A controllable clock starting at T0. */
export function createClock(start = T0): { now: () => Date; advance(seconds: number): void; set(seconds: number): void } {
  let current = start * 1000;
  return {
    now: () => new Date(current),
    advance: (seconds) => {
      current += seconds * 1000;
    },
    set: (seconds) => {
      current = seconds * 1000;
    },
  };
}

/** base64url of a JSON value, for hand-built tokens. */
export function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export interface Fixture {
  readonly server: TestIssuer;
  /** ES256 (kid es-1), Ed25519 (kid ed-1) and RSA 2048 (kid rsa-1, published without alg). */
  readonly keys: { readonly es256: TestKey; readonly eddsa: TestKey; readonly rsa: TestKey };
  /** The key of tenant "other", a second issuer on the same server. */
  readonly otherKey: TestKey;
}

let tenantCounter = 0;

/** A tenant name no other test uses, so request counts start at zero. */
export function uniqueTenant(prefix = 'tenant'): string {
  tenantCounter += 1;
  return `${prefix}-${tenantCounter}`;
}

export async function startFixture(): Promise<Fixture> {
  const server = await startTestIssuer();
  const es256 = await createTestKey('ES256', 'es-1');
  const eddsa = await createTestKey('EdDSA', 'ed-1');
  // Published without "alg" so one RSA key serves RS256 and PS256 alike.
  const rsa = await createTestKey('RS256', 'rsa-1', { publishAlg: false });
  const otherKey = await createTestKey('ES256', 'other-1');
  server.setTenant('default', { keys: [es256.jwk, eddsa.jwk, rsa.jwk] });
  server.setTenant('other', { keys: [otherKey.jwk] });
  return { server, keys: { es256, eddsa, rsa }, otherKey };
}

/**
 * Signs an ES256 JWS by hand with WebCrypto, for headers jose refuses to produce
 * (an unknown "crit" extension).
 */
export async function signEs256Raw(key: TestKey, header: Record<string, unknown>, claims: unknown): Promise<string> {
  const input = `${b64json(header)}.${b64json(claims)}`;
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key.privateKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}
