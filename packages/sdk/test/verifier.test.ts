import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createVerifier, GatehouseTokenError, hasScopes, type ErrorCode } from '../src/index.js';
import { accessClaims, AUDIENCE, createClock, mint, startFixture, T0, type Fixture } from './helpers/test-issuer.js';

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<GatehouseTokenError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return error instanceof GatehouseTokenError && error.code === code;
  });
  return caught as GatehouseTokenError;
}

describe('createVerifier', () => {
  let fixture: Fixture;
  const clock = createClock();
  before(async () => {
    fixture = await startFixture();
  });
  after(() => fixture.server.close());

  const verifierFor = (options: Partial<Parameters<typeof createVerifier>[0]> = {}) =>
    createVerifier({ issuer: fixture.server.issuer(), audience: AUDIENCE, clock: clock.now, ...options });

  describe('verify', () => {
    it('accepts an ES256 access token and returns its claims, scopes and header', async () => {
      const verifier = verifierFor();
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer));
      const verified = await verifier.verify(token);
      assert.equal(verified.claims.sub, 'user-1');
      assert.equal(verified.claims.client_id, 'app-1');
      assert.deepEqual(verified.scopes, ['orders:read', 'profile']);
      assert.equal(verified.header.alg, 'ES256');
      assert.equal(verified.header.kid, 'es-1');
    });

    it('accepts an EdDSA (Ed25519) access token', async () => {
      const verifier = verifierFor();
      const verified = await verifier.verify(await mint(fixture.keys.eddsa, accessClaims(verifier.issuer)));
      assert.equal(verified.header.alg, 'EdDSA');
    });

    it('accepts RS256 and PS256 tokens signed with one RSA key published without alg', async () => {
      const verifier = verifierFor();
      for (const alg of ['RS256', 'PS256']) {
        const token = await mint(fixture.keys.rsa, accessClaims(verifier.issuer), { alg });
        assert.equal((await verifier.verify(token)).header.alg, alg);
      }
    });

    it('accepts typ "application/at+jwt" as well as "at+jwt" (RFC 9068 §2.1)', async () => {
      const verifier = verifierFor();
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer), { typ: 'application/at+jwt' });
      assert.equal((await verifier.verify(token)).header.typ, 'application/at+jwt');
    });

    it('accepts a token whose aud array contains one of several configured audiences', async () => {
      const verifier = verifierFor({ audience: ['https://other.example.com', AUDIENCE] });
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer, { aud: ['https://x.example.com', AUDIENCE] }));
      assert.equal((await verifier.verify(token)).claims.sub, 'user-1');
    });

    it('returns no scopes for a token without a scope claim', async () => {
      const verifier = verifierFor();
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer, { scope: undefined }));
      assert.deepEqual((await verifier.verify(token)).scopes, []);
    });

    it('rejects a token whose scope claim is not a string', async () => {
      const verifier = verifierFor();
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer, { scope: ['orders:read'] }));
      await rejectsWith(verifier.verify(token), 'TOKEN_MALFORMED');
    });

    it('rejects an empty token as missing', async () => {
      await rejectsWith(verifierFor().verify(''), 'TOKEN_MISSING');
    });

    it('rejects a token without exp', async () => {
      const verifier = verifierFor();
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer, { exp: undefined }));
      await rejectsWith(verifier.verify(token), 'TOKEN_MALFORMED');
    });

    it('rejects a token issued in the future beyond the leeway', async () => {
      const verifier = verifierFor();
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer, { iat: T0 + 120 }));
      await rejectsWith(verifier.verify(token), 'TOKEN_NOT_YET_VALID');
    });

    it('accepts a token expired less than the 60 s leeway ago and rejects it after', async () => {
      const frozen = createClock(T0 + 650);
      const verifier = verifierFor({ clock: frozen.now });
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer));
      assert.equal((await verifier.verify(token)).claims.sub, 'user-1');
      frozen.advance(11);
      await rejectsWith(verifier.verify(token), 'TOKEN_EXPIRED');
    });

    it('honours a custom clockToleranceSeconds', async () => {
      const frozen = createClock(T0 + 605);
      const verifier = verifierFor({ clock: frozen.now, clockToleranceSeconds: 0 });
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer));
      await rejectsWith(verifier.verify(token), 'TOKEN_EXPIRED');
    });
  });

  describe('scopes', () => {
    it('rejects a token lacking one of requiredScopes and names every required scope', async () => {
      const verifier = verifierFor({ requiredScopes: ['orders:read', 'orders:write'] });
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer));
      const error = await rejectsWith(verifier.verify(token), 'TOKEN_INSUFFICIENT_SCOPE');
      assert.deepEqual(error.scopes, ['orders:read', 'orders:write']);
      assert.equal(error.status, 403);
      assert.equal(error.error, 'insufficient_scope');
    });

    it('adds per-call scopes to requiredScopes', async () => {
      const verifier = verifierFor({ requiredScopes: ['profile'] });
      const token = await mint(fixture.keys.es256, accessClaims(verifier.issuer));
      assert.ok(await verifier.verify(token, { scopes: ['orders:read'] }));
      const error = await rejectsWith(verifier.verify(token, { scopes: ['orders:write'] }), 'TOKEN_INSUFFICIENT_SCOPE');
      assert.deepEqual(error.scopes, ['profile', 'orders:write']);
    });

    it('tells with hasScopes whether a verified token carries every scope', async () => {
      const verifier = verifierFor();
      const verified = await verifier.verify(await mint(fixture.keys.es256, accessClaims(verifier.issuer)));
      assert.equal(hasScopes(verified, ['orders:read']), true);
      assert.equal(hasScopes(verified, ['orders:read', 'profile']), true);
      assert.equal(hasScopes(verified, ['orders:read', 'orders:write']), false);
      assert.equal(verifier.hasScopes(verified, []), true);
    });
  });

  describe('configuration misuse', () => {
    const issuer = 'https://id.example.com/t/default';
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['alg none in algorithms', { algorithms: ['ES256', 'none'] }, /must not contain "none"/],
      ['HS256 in algorithms', { algorithms: ['HS256'] }, /must not contain "HS256"/],
      ['hs512 in any case in algorithms', { algorithms: ['hs512'] }, /must not contain "hs512"/],
      ['an unknown algorithm', { algorithms: ['ES257'] }, /unsupported "ES257"/],
      ['an empty algorithms list', { algorithms: [] }, /non-empty array/],
      ['an empty audience', { audience: '' }, /"audience"/],
      ['an empty audience list', { audience: [] }, /"audience"/],
      ['a relative issuer', { issuer: '/t/default' }, /"issuer" must be an absolute URL/],
      ['a plain http issuer on a public host', { issuer: 'http://id.example.com/t/default' }, /must use https/],
      ['an issuer with a query', { issuer: 'https://id.example.com/t/default?x=1' }, /query or fragment/],
      ['a negative clockToleranceSeconds', { clockToleranceSeconds: -1 }, /"clockToleranceSeconds"/],
      ['a non-numeric jwksCacheTtlSeconds', { jwksCacheTtlSeconds: '600' }, /"jwksCacheTtlSeconds"/],
      ['a zero fetchTimeoutSeconds', { fetchTimeoutSeconds: 0 }, /"fetchTimeoutSeconds" must be greater than 0/],
      ['a requiredScopes entry with a space', { requiredScopes: ['orders read'] }, /not a valid scope/],
    ];
    for (const [what, overrides, message] of cases) {
      it(`throws a TypeError for ${what}`, () => {
        assert.throws(
          () => createVerifier({ issuer, audience: AUDIENCE, ...overrides } as Parameters<typeof createVerifier>[0]),
          (error: unknown) => error instanceof TypeError && message.test(error.message),
        );
      });
    }

    it('accepts plain http for a loopback issuer', () => {
      assert.doesNotThrow(() => createVerifier({ issuer: 'http://localhost:4455/t/default', audience: AUDIENCE }));
    });
  });
});
