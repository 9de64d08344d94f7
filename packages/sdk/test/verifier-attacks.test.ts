/**
 * Every rejection rule of the verifier, tried as an attack (RFC 8725, RFC 9068 §4).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exportSPKI, SignJWT } from 'jose';
import { createVerifier, GatehouseTokenError, type ErrorCode, type Verifier } from '../src/index.js';
import {
  accessClaims,
  AUDIENCE,
  b64json,
  createClock,
  createTestKey,
  mint,
  signEs256Raw,
  startFixture,
  T0,
  type Fixture,
  type TestKey,
} from './helpers/test-issuer.js';

describe('verifier attacks', () => {
  let fixture: Fixture;
  let attacker: TestKey;
  const clock = createClock();
  let verifier: Verifier;
  let issuer: string;

  before(async () => {
    fixture = await startFixture();
    attacker = await createTestKey('ES256', 'es-1'); // same kid as the real ES256 key
    issuer = fixture.server.issuer();
    // A long refresh interval: no attack below may make the verifier refetch keys.
    verifier = createVerifier({ issuer, audience: AUDIENCE, clock: clock.now, jwksRefreshMinIntervalSeconds: 3600 });
    await verifier.verify(await mint(fixture.keys.es256, accessClaims(issuer)));
  });
  after(() => fixture.server.close());

  const good = () => mint(fixture.keys.es256, accessClaims(issuer));
  const unsigned = (header: Record<string, unknown>) =>
    `${b64json({ kid: 'es-1', typ: 'at+jwt', ...header })}.${b64json(accessClaims(issuer))}.`;
  const hmacWith = (secret: string, kid = 'es-1') =>
    new SignJWT(accessClaims(issuer))
      .setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' })
      .sign(new TextEncoder().encode(secret));

  const attacks: Array<[string, () => Promise<string> | string, ErrorCode]> = [
    ['rejects a token whose alg is none', () => unsigned({ alg: 'none' }), 'TOKEN_ALG_NOT_ALLOWED'],
    ['rejects a token whose alg is "None" in another case', () => unsigned({ alg: 'None' }), 'TOKEN_ALG_NOT_ALLOWED'],
    ['rejects alg none carrying a copied valid signature', async () => {
      const [, , signature] = (await good()).split('.');
      return unsigned({ alg: 'none' }) + String(signature);
    }, 'TOKEN_ALG_NOT_ALLOWED'],
    [
      'rejects HS256 signed with the issuer public key (PEM) as HMAC secret',
      async () => hmacWith(await exportSPKI(fixture.keys.es256.publicKey)),
      'TOKEN_ALG_NOT_ALLOWED',
    ],
    [
      'rejects HS256 signed with the issuer public key (JWK JSON) as HMAC secret',
      () => hmacWith(JSON.stringify(fixture.keys.es256.jwk)),
      'TOKEN_ALG_NOT_ALLOWED',
    ],
    ['rejects a token signed by another key under a known kid', () => mint(attacker, accessClaims(issuer)), 'TOKEN_SIGNATURE_INVALID'],
    [
      'ignores an embedded jwk header and rejects the attacker signature',
      () => mint(attacker, accessClaims(issuer), { jwk: attacker.jwk }),
      'TOKEN_SIGNATURE_INVALID',
    ],
    [
      'ignores a jku header and rejects the attacker signature',
      () => mint(attacker, accessClaims(issuer), { jku: `${fixture.server.origin}/t/other/jwks` }),
      'TOKEN_SIGNATURE_INVALID',
    ],
    ['rejects a token with an unknown kid', () => mint({ ...fixture.keys.es256, kid: 'nope' }, accessClaims(issuer)), 'TOKEN_KID_UNKNOWN'],
    [
      'rejects a token whose alg does not fit the key behind its kid',
      () => mint(fixture.keys.eddsa, accessClaims(issuer), { kid: 'es-1' }),
      'TOKEN_KID_UNKNOWN',
    ],
    [
      'rejects a token that is expired beyond the leeway',
      () => mint(fixture.keys.es256, accessClaims(issuer, { iat: T0 - 700, exp: T0 - 61 })),
      'TOKEN_EXPIRED',
    ],
    [
      'rejects a token whose nbf is in the future beyond the leeway',
      () => mint(fixture.keys.es256, accessClaims(issuer, { nbf: T0 + 61 })),
      'TOKEN_NOT_YET_VALID',
    ],
    [
      'rejects a token whose iss is another issuer',
      () => mint(fixture.keys.es256, accessClaims(issuer, { iss: fixture.server.issuer('other') })),
      'TOKEN_ISSUER_MISMATCH',
    ],
    [
      'rejects a token whose iss differs only by a trailing slash',
      () => mint(fixture.keys.es256, accessClaims(issuer, { iss: `${issuer}/` })),
      'TOKEN_ISSUER_MISMATCH',
    ],
    ['rejects a token without iss', () => mint(fixture.keys.es256, accessClaims(issuer, { iss: undefined })), 'TOKEN_ISSUER_MISMATCH'],
    [
      'rejects a token for another audience',
      () => mint(fixture.keys.es256, accessClaims(issuer, { aud: 'https://billing.example.com' })),
      'TOKEN_AUDIENCE_MISMATCH',
    ],
    ['rejects a token without aud', () => mint(fixture.keys.es256, accessClaims(issuer, { aud: undefined })), 'TOKEN_AUDIENCE_MISMATCH'],
    [
      'rejects an ID-token-typed JWT (typ JWT) used as access token',
      () => mint(fixture.keys.es256, accessClaims(issuer), { typ: 'JWT' }),
      'TOKEN_TYPE_INVALID',
    ],
    ['rejects a JWT without typ', () => mint(fixture.keys.es256, accessClaims(issuer), { typ: undefined }), 'TOKEN_TYPE_INVALID'],
    [
      'rejects a logout token (typ logout+jwt)',
      () => mint(fixture.keys.es256, accessClaims(issuer), { typ: 'logout+jwt' }),
      'TOKEN_TYPE_INVALID',
    ],
    [
      'rejects a token whose payload was tampered with (scope escalated)',
      async () => {
        const [header, , signature] = (await good()).split('.');
        return `${header}.${b64json(accessClaims(issuer, { scope: 'orders:read admin' }))}.${signature}`;
      },
      'TOKEN_SIGNATURE_INVALID',
    ],
    [
      'rejects a token whose signature was tampered with',
      async () => {
        const [header, payload, signature = ''] = (await good()).split('.');
        const middle = Math.floor(signature.length / 2);
        const flipped = signature[middle] === 'A' ? 'B' : 'A';
        return `${header}.${payload}.${signature.slice(0, middle)}${flipped}${signature.slice(middle + 1)}`;
      },
      'TOKEN_SIGNATURE_INVALID',
    ],
    [
      'rejects a token whose header was swapped for one with another typ',
      async () => {
        const [, payload, signature] = (await good()).split('.');
        return `${b64json({ alg: 'ES256', kid: 'es-1', typ: 'at+jwt', cty: 'x' })}.${payload}.${signature}`;
      },
      'TOKEN_SIGNATURE_INVALID',
    ],
    [
      'rejects a token from another issuer signed with that issuer key',
      () => mint(fixture.otherKey, accessClaims(fixture.server.issuer('other'))),
      'TOKEN_KID_UNKNOWN',
    ],
    [
      'rejects a token from another issuer whose key reuses our kid',
      () => mint({ ...fixture.otherKey, kid: 'es-1' }, accessClaims(issuer)),
      'TOKEN_SIGNATURE_INVALID',
    ],
    [
      'rejects a token with an unknown critical header',
      () =>
        signEs256Raw(
          fixture.keys.es256,
          { alg: 'ES256', kid: 'es-1', typ: 'at+jwt', crit: ['exp-v2'], 'exp-v2': true },
          accessClaims(issuer),
        ),
      'TOKEN_MALFORMED',
    ],
    ['rejects a token with a non-string kid', () => mint(fixture.keys.es256, accessClaims(issuer), { kid: 7 }), 'TOKEN_MALFORMED'],
    ['rejects a token whose exp is not a number', () => mint(fixture.keys.es256, accessClaims(issuer, { exp: 'later' as unknown as number })), 'TOKEN_MALFORMED'],
    ['rejects a string that is not a JWT', () => 'not-a-jwt', 'TOKEN_MALFORMED'],
    ['rejects a JWT with four segments', async () => `${await good()}.x`, 'TOKEN_MALFORMED'],
    ['rejects a JWT whose header is not JSON', async () => `e30x.${(await good()).split('.').slice(1).join('.')}`, 'TOKEN_MALFORMED'],
  ];

  for (const [sentence, build, code] of attacks) {
    it(sentence, async () => {
      const token = await build();
      await assert.rejects(verifier.verify(token), (error: unknown) => {
        assert.ok(error instanceof GatehouseTokenError, `expected GatehouseTokenError, got ${String(error)}`);
        assert.equal(error.code, code);
        return true;
      });
    });
  }

  it('accepts a token whose nbf is in the future within the leeway', async () => {
    const token = await mint(fixture.keys.es256, accessClaims(issuer, { nbf: T0 + 59 }));
    assert.equal((await verifier.verify(token)).claims.nbf, T0 + 59);
  });

  it('fetched the JWKS once for the whole attack suite', () => {
    assert.deepEqual(fixture.server.counts(), { discovery: 1, jwks: 1 });
  });

  it('rejects the issuer own token at a verifier of another issuer', async () => {
    const otherVerifier = createVerifier({ issuer: fixture.server.issuer('other'), audience: AUDIENCE, clock: clock.now });
    await assert.rejects(otherVerifier.verify(await good()), { code: 'TOKEN_KID_UNKNOWN' });
  });

  it('rejects HS256 even when the issuer JWKS publishes a symmetric key for it', async () => {
    const secret = 'a-shared-secret-that-leaked-into-the-jwks-0123456789';
    fixture.server.setTenant('with-oct', {
      keys: [fixture.keys.es256.jwk, { kty: 'oct', kid: 'hs-1', k: Buffer.from(secret).toString('base64url') }],
    });
    const octIssuer = fixture.server.issuer('with-oct');
    const octVerifier = createVerifier({ issuer: octIssuer, audience: AUDIENCE, clock: clock.now });
    const token = await new SignJWT(accessClaims(octIssuer))
      .setProtectedHeader({ alg: 'HS256', kid: 'hs-1', typ: 'at+jwt' })
      .sign(new TextEncoder().encode(secret));
    await assert.rejects(octVerifier.verify(token), { code: 'TOKEN_ALG_NOT_ALLOWED' });
  });

  it('rejects an ES256 token at a verifier whose allowlist is EdDSA only', async () => {
    const narrow = createVerifier({ issuer, audience: AUDIENCE, clock: clock.now, algorithms: ['EdDSA'] });
    await assert.rejects(narrow.verify(await good()), { code: 'TOKEN_ALG_NOT_ALLOWED' });
    assert.ok(await narrow.verify(await mint(fixture.keys.eddsa, accessClaims(issuer))));
  });
});
