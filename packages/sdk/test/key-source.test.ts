/**
 * Discovery, JWKS caching, rotation and the refetch rate limit, observed through the
 * request counts of a real local issuer.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createVerifier, type FetchLike, type VerifierOptions } from '../src/index.js';
import {
  accessClaims,
  AUDIENCE,
  b64json,
  createClock,
  createTestKey,
  mint,
  startFixture,
  uniqueTenant,
  type Fixture,
  type TestKey,
} from './helpers/test-issuer.js';

describe('key source', () => {
  let fixture: Fixture;
  before(async () => {
    fixture = await startFixture();
  });
  after(() => fixture.server.close());

  /** A fresh tenant publishing `keys`, and a verifier for it on a controllable clock. */
  function setup(keys: TestKey[] = [fixture.keys.es256], options: Partial<VerifierOptions> = {}) {
    const tenant = uniqueTenant();
    fixture.server.setTenant(tenant, { keys: keys.map((key) => key.jwk) });
    const issuer = fixture.server.issuer(tenant);
    const clock = createClock();
    const verifier = createVerifier({ issuer, audience: AUDIENCE, clock: clock.now, ...options });
    const counts = () => fixture.server.counts(tenant);
    const token = (key: TestKey = fixture.keys.es256, header: Record<string, unknown> = {}) =>
      mint(key, accessClaims(issuer), header);
    return { tenant, issuer, clock, verifier, counts, token };
  }

  describe('caching', () => {
    it('fetches discovery and the JWKS once for concurrent first verifications', async () => {
      const { verifier, counts, token } = setup();
      const jwt = await token();
      const results = await Promise.all(Array.from({ length: 50 }, () => verifier.verify(jwt)));
      assert.equal(results.length, 50);
      assert.deepEqual(counts(), { discovery: 1, jwks: 1 });
    });

    it('serves later verifications from the cache without any request', async () => {
      const { verifier, counts, token, clock } = setup();
      const jwt = await token();
      await verifier.verify(jwt);
      clock.advance(599);
      for (let i = 0; i < 20; i += 1) await verifier.verify(jwt);
      assert.deepEqual(counts(), { discovery: 1, jwks: 1 });
    });

    it('refetches the JWKS, but not discovery, once the TTL has passed', async () => {
      const { verifier, counts, token, clock } = setup([fixture.keys.es256], { clockToleranceSeconds: 3600 });
      const jwt = await token();
      await verifier.verify(jwt);
      clock.advance(600);
      await verifier.verify(jwt);
      await verifier.verify(jwt);
      assert.deepEqual(counts(), { discovery: 1, jwks: 2 });
    });

    it('keeps the previous keys when a refresh after the TTL fails', async () => {
      const { tenant, verifier, counts, token, clock } = setup([fixture.keys.es256], { clockToleranceSeconds: 3600 });
      const jwt = await token();
      await verifier.verify(jwt);
      fixture.server.update(tenant, { jwksStatus: 503 });
      clock.advance(601);
      assert.ok(await verifier.verify(jwt));
      assert.ok(await verifier.verify(jwt)); // no retry within the interval
      assert.deepEqual(counts(), { discovery: 1, jwks: 2 });
    });

    it('uses the fetch option for every request', async () => {
      const { issuer, token } = setup();
      const seen: string[] = [];
      const recording: FetchLike = (url, init) => {
        seen.push(url);
        return fetch(url, init);
      };
      const verifier = createVerifier({ issuer, audience: AUDIENCE, clock: createClock().now, fetch: recording });
      await verifier.verify(await token());
      assert.deepEqual(seen, [`${issuer}/.well-known/openid-configuration`, `${issuer}/jwks`]);
    });
  });

  describe('unknown kid refetch rate limit', () => {
    const randomKidTokens = (issuer: string, count: number) =>
      Promise.all(
        Array.from({ length: count }, () =>
          mint({ ...fixture.keys.es256, kid: crypto.randomUUID() }, accessClaims(issuer)),
        ),
      );

    it('refetches at most once per interval under a flood of 100 concurrent random-kid tokens', async () => {
      const { issuer, verifier, counts, token, clock } = setup([fixture.keys.es256], { clockToleranceSeconds: 3600 });
      await verifier.verify(await token());
      assert.deepEqual(counts(), { discovery: 1, jwks: 1 });

      const flood = async () => {
        const results = await Promise.allSettled((await randomKidTokens(issuer, 100)).map((jwt) => verifier.verify(jwt)));
        for (const result of results) {
          assert.equal(result.status, 'rejected');
          assert.equal((result.reason as { code?: string }).code, 'TOKEN_KID_UNKNOWN');
        }
      };

      await flood(); // right after the initial fetch: no refetch at all
      assert.equal(counts().jwks, 1);

      clock.advance(30);
      await flood(); // interval passed: exactly one shared refetch
      assert.equal(counts().jwks, 2);
      await flood(); // same instant: none
      clock.advance(29);
      await flood(); // still within the interval: none
      assert.equal(counts().jwks, 2);

      clock.advance(1);
      await flood();
      assert.deepEqual(counts(), { discovery: 1, jwks: 3 });
    });

    it('honours a custom jwksRefreshMinIntervalSeconds', async () => {
      const { issuer, verifier, counts, token, clock } = setup([fixture.keys.es256], {
        jwksRefreshMinIntervalSeconds: 300,
        clockToleranceSeconds: 3600,
      });
      await verifier.verify(await token());
      const [jwt] = await randomKidTokens(issuer, 1);
      clock.advance(299);
      await assert.rejects(verifier.verify(String(jwt)), { code: 'TOKEN_KID_UNKNOWN' });
      assert.equal(counts().jwks, 1);
      clock.advance(1);
      await assert.rejects(verifier.verify(String(jwt)), { code: 'TOKEN_KID_UNKNOWN' });
      assert.equal(counts().jwks, 2);
    });
  });

  describe('key rotation', () => {
    it('picks up a new kid through the refresh-on-unknown-kid path', async () => {
      const { tenant, verifier, counts, token, clock } = setup([fixture.keys.es256], { clockToleranceSeconds: 3600 });
      await verifier.verify(await token());
      const next = await createTestKey('ES256', 'es-2');
      fixture.server.setKeys(tenant, [fixture.keys.es256.jwk, next.jwk]);

      clock.advance(30);
      const rotated = await verifier.verify(await token(next));
      assert.equal(rotated.header.kid, 'es-2');
      assert.deepEqual(counts(), { discovery: 1, jwks: 2 });
      // The old key, still published, keeps working.
      assert.ok(await verifier.verify(await token()));
    });

    it('lets 100 concurrent verifications of a rotated-in kid share one refetch', async () => {
      const { tenant, verifier, counts, token, clock } = setup([fixture.keys.es256], { clockToleranceSeconds: 3600 });
      await verifier.verify(await token());
      const next = await createTestKey('ES256', 'es-3');
      fixture.server.setKeys(tenant, [fixture.keys.es256.jwk, next.jwk]);
      clock.advance(30);
      const jwt = await token(next);
      const results = await Promise.all(Array.from({ length: 100 }, () => verifier.verify(jwt)));
      assert.ok(results.every((result) => result.header.kid === 'es-3'));
      assert.deepEqual(counts(), { discovery: 1, jwks: 2 });
    });

    it('rejects a new kid seen within the interval, then accepts it once the interval passed', async () => {
      const { tenant, verifier, counts, token, clock } = setup([fixture.keys.es256], { clockToleranceSeconds: 3600 });
      await verifier.verify(await token());
      const next = await createTestKey('EdDSA', 'ed-2');
      fixture.server.setKeys(tenant, [fixture.keys.es256.jwk, next.jwk]);
      const jwt = await token(next);

      clock.advance(10);
      await assert.rejects(verifier.verify(jwt), { code: 'TOKEN_KID_UNKNOWN' });
      assert.equal(counts().jwks, 1);
      clock.advance(20);
      assert.equal((await verifier.verify(jwt)).header.kid, 'ed-2');
      assert.equal(counts().jwks, 2);
    });

    it('stops accepting a key removed from the JWKS once the cache has expired', async () => {
      const { tenant, verifier, token, clock } = setup([fixture.keys.es256, fixture.keys.eddsa], { clockToleranceSeconds: 3600 });
      const retired = await token(fixture.keys.eddsa);
      await verifier.verify(retired);
      fixture.server.setKeys(tenant, [fixture.keys.es256.jwk]);
      clock.advance(600);
      await assert.rejects(verifier.verify(retired), { code: 'TOKEN_KID_UNKNOWN' });
    });
  });

  describe('discovery', () => {
    it('rejects a discovery document whose issuer differs and fetches no JWKS', async () => {
      const { tenant, verifier, counts, token } = setup();
      fixture.server.update(tenant, { discoveryIssuer: fixture.server.issuer() });
      await assert.rejects(verifier.verify(await token()), { code: 'DISCOVERY_ISSUER_MISMATCH' });
      assert.deepEqual(counts(), { discovery: 1, jwks: 0 });
    });

    it('looks up an issuer with a trailing slash without doubling it', async () => {
      const tenant = uniqueTenant();
      const issuer = `${fixture.server.issuer(tenant)}/`;
      fixture.server.setTenant(tenant, { keys: [fixture.keys.es256.jwk], discoveryIssuer: issuer });
      const verifier = createVerifier({ issuer, audience: AUDIENCE, clock: createClock().now });
      assert.ok(await verifier.verify(await mint(fixture.keys.es256, accessClaims(issuer))));
    });

    it('remembers a failed discovery for the interval, then retries', async () => {
      const { tenant, verifier, counts, token, clock } = setup([fixture.keys.es256], { clockToleranceSeconds: 3600 });
      fixture.server.update(tenant, { discoveryStatus: 500 });
      const jwt = await token();
      await assert.rejects(verifier.verify(jwt), { code: 'DISCOVERY_FAILED' });
      await assert.rejects(verifier.verify(jwt), { code: 'DISCOVERY_FAILED' });
      assert.deepEqual(counts(), { discovery: 1, jwks: 0 });

      fixture.server.update(tenant, { discoveryStatus: 200 });
      clock.advance(30);
      assert.ok(await verifier.verify(jwt));
      assert.deepEqual(counts(), { discovery: 2, jwks: 1 });
    });

    it('fails with JWKS_FETCH_FAILED when the JWKS cannot be fetched', async () => {
      const { tenant, verifier, token } = setup();
      fixture.server.update(tenant, { jwksStatus: 503 });
      await assert.rejects(verifier.verify(await token()), { code: 'JWKS_FETCH_FAILED' });
    });

    it('fails with DISCOVERY_FAILED when the issuer is unreachable', async () => {
      const verifier = createVerifier({ issuer: 'http://127.0.0.1:9/t/none', audience: AUDIENCE });
      await assert.rejects(verifier.verify(await mint(fixture.keys.es256, accessClaims('x'))), { code: 'DISCOVERY_FAILED' });
    });

    it('refuses a jwks_uri that downgrades an https issuer to http', async () => {
      const issuer = 'https://id.example.com/t/default';
      const fakeFetch: FetchLike = async () =>
        new Response(JSON.stringify({ issuer, jwks_uri: 'http://id.example.com/t/default/jwks' }), { status: 200 });
      const verifier = createVerifier({ issuer, audience: AUDIENCE, fetch: fakeFetch });
      await assert.rejects(verifier.verify(await mint(fixture.keys.es256, accessClaims(issuer))), { code: 'DISCOVERY_FAILED' });
    });

    it('gives up on a hanging issuer after fetchTimeoutSeconds', async () => {
      const hanging: FetchLike = (_url, init) =>
        new Promise((_resolve, reject) => {
          init.signal.addEventListener('abort', () => reject(init.signal.reason));
        });
      const verifier = createVerifier({
        issuer: 'https://id.example.com/t/default',
        audience: AUDIENCE,
        fetch: hanging,
        fetchTimeoutSeconds: 0.02,
      });
      await assert.rejects(verifier.verify(await mint(fixture.keys.es256, accessClaims('x'))), { code: 'DISCOVERY_FAILED' });
    });
  });

  describe('JWKS contents', () => {
    it('ignores members published for encryption or without the verify operation', async () => {
      const enc = await createTestKey('ES256', 'enc-1');
      const noVerify = await createTestKey('ES256', 'ops-1');
      const tenant = uniqueTenant();
      fixture.server.setTenant(tenant, {
        keys: [{ ...enc.jwk, use: 'enc' }, { ...noVerify.jwk, use: undefined, key_ops: ['sign'] }, fixture.keys.es256.jwk],
      });
      const issuer = fixture.server.issuer(tenant);
      const verifier = createVerifier({ issuer, audience: AUDIENCE, clock: createClock().now });
      await assert.rejects(verifier.verify(await mint(enc, accessClaims(issuer))), { code: 'TOKEN_KID_UNKNOWN' });
      await assert.rejects(verifier.verify(await mint(noVerify, accessClaims(issuer))), { code: 'TOKEN_KID_UNKNOWN' });
      assert.ok(await verifier.verify(await mint(fixture.keys.es256, accessClaims(issuer))));
    });

    it('uses only the public part of a member that leaks private parameters', async () => {
      const leaky = await createTestKey('ES256', 'leaky-1');
      const { exportJWK } = await import('jose');
      const tenant = uniqueTenant();
      fixture.server.setTenant(tenant, { keys: [{ ...(await exportJWK(leaky.privateKey)), kid: 'leaky-1', alg: 'ES256' }] });
      const issuer = fixture.server.issuer(tenant);
      const verifier = createVerifier({ issuer, audience: AUDIENCE, clock: createClock().now });
      assert.ok(await verifier.verify(await mint(leaky, accessClaims(issuer))));
    });

    it('ignores an RSA key shorter than 2048 bits', async () => {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
      const tenant = uniqueTenant();
      fixture.server.setTenant(tenant, { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'weak-1', alg: 'RS256' }] });
      const issuer = fixture.server.issuer(tenant);
      const input = `${b64json({ alg: 'RS256', kid: 'weak-1', typ: 'at+jwt' })}.${b64json(accessClaims(issuer))}`;
      const jwt = `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
      const verifier = createVerifier({ issuer, audience: AUDIENCE, clock: createClock().now });
      await assert.rejects(verifier.verify(jwt), { code: 'TOKEN_KID_UNKNOWN' });
    });

    it('accepts a token without kid when exactly one key fits its alg, and not when two do', async () => {
      const { verifier, token } = setup([fixture.keys.es256, fixture.keys.eddsa]);
      assert.ok(await verifier.verify(await token(fixture.keys.es256, { kid: undefined })));
      const second = await createTestKey('ES256', 'es-9');
      const two = setup([fixture.keys.es256, second]);
      await assert.rejects(two.verifier.verify(await two.token(fixture.keys.es256, { kid: undefined })), {
        code: 'TOKEN_KID_UNKNOWN',
      });
    });

    it('uses neither key when two members share a kid for the same alg', async () => {
      const twin = await createTestKey('ES256', 'es-1');
      const { verifier, token } = setup([fixture.keys.es256, twin]);
      await assert.rejects(verifier.verify(await token()), { code: 'TOKEN_KID_UNKNOWN' });
    });
  });
});
