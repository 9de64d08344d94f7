import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { open, seal } from '../../src/keys/crypto.js';
import { basic, decode, dialects, seedClient, startServer, testClock, tokenRequest, type TestServer } from '../helpers.js';

for (const dialect of dialects) {
  describe(`signing keys (${dialect})`, () => {
    const clock = testClock(Date.now());
    let server: TestServer;
    let client: Awaited<ReturnType<typeof seedClient>>;
    const jwks = async () => (await server.inject({ url: '/t/default/jwks' })).json() as { keys: { kid: string; d?: string }[] };
    const issue = async () => (await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, client.clientSecret) })).json.access_token!;
    // oidc-provider stamps iat/exp from the real clock; retirement follows the test clock.
    const verifyWithPublishedKeys = async (token: string) =>
      jwtVerify(token, createLocalJWKSet(await jwks()), { issuer: `${server.url}/t/default`, typ: 'at+jwt' });

    before(async () => {
      server = await startServer({ dialect, clock });
      client = await seedClient(server, { ttl: 600 });
    });
    after(() => server.close());

    it('publishes the default ES256 key and the RS256 key beside it (ID tokens), without private parts', async () => {
      const { keys } = await jwks();
      assert.deepEqual(keys.map((k) => (k as Record<string, unknown>).alg), ['ES256', 'RS256'], 'the default first');
      assert.ok(keys.every((k) => k.d === undefined));
    });

    it('keeps private keys encrypted at rest', async () => {
      const rows = await server.core.handle.db.selectFrom('signing_keys').select(['private_jwk_enc', 'public_jwk']).execute();
      for (const row of rows) {
        assert.match(row.private_jwk_enc, /^v1\./);
        assert.doesNotMatch(row.private_jwk_enc, /"d"/);
        assert.doesNotMatch(row.public_jwk, /"d"/);
      }
    });

    it('signs with the new key at once, verifies old tokens, and retires the old key after the longest token lifetime', async () => {
      const before = await issue();
      const oldKid = decode(before).header.kid;
      const oldKids = (await jwks()).keys.map((k) => k.kid);
      const rotated = await server.core.keys.rotate('default');
      assert.equal(rotated.previousKid, oldKid);
      assert.ok(rotated.idTokenKid);
      await server.core.feed.catchUp();

      const after = await issue();
      assert.equal(decode(after).header.kid, rotated.kid);
      const published = () => jwks().then(({ keys }) => [...keys.slice(0, 2).map((k) => k.kid), ...keys.slice(2).map((k) => k.kid).sort()]);
      const expected = [rotated.kid, rotated.idTokenKid, ...[...oldKids].sort()];
      assert.deepEqual(await published(), expected, 'the new keys first, the previous ones still published');
      await verifyWithPublishedKeys(before);
      await verifyWithPublishedKeys(after);

      // Just before the deadline (600 s lifetime + 60 s verifier leeway) the old key is still published…
      clock.advance(600_000 + 60_000 - 1000);
      assert.deepEqual(await published(), expected);
      // …and after it, it is gone, without any call to retire it.
      clock.advance(2000);
      assert.deepEqual((await jwks()).keys.map((k) => k.kid), [rotated.kid, rotated.idTokenKid]);
      const stored = await server.core.keys.list('default');
      assert.equal(stored.find((k) => k.kid === oldKid)?.status, 'retired');
      await server.core.audit.flush();
      const retired = await server.core.repos.audit.query({ tenantId: 'default', action: 'key.retired', limit: 5 });
      assert.deepEqual(retired.map((e) => [e.target, e.actor]).sort(), oldKids.map((kid) => [kid, 'system']).sort());
      await assert.rejects(verifyWithPublishedKeys(before));
    });

    it('rotates to another algorithm', async () => {
      for (const alg of ['EdDSA', 'RS256', 'PS256'] as const) {
        await server.core.keys.rotate('default', alg);
        await server.core.feed.catchUp();
        const token = await issue();
        assert.equal(decode(token).header.alg, alg);
        await verifyWithPublishedKeys(token);
      }
    });

    it('keeps each tenant on its own keys', async () => {
      await server.core.tenants.create('second');
      const a = (await jwks()).keys.map((k) => k.kid);
      const b = ((await server.inject({ url: '/t/second/jwks' })).json() as { keys: { kid: string }[] }).keys.map((k) => k.kid);
      assert.equal(a.filter((kid) => b.includes(kid)).length, 0);
    });

  });
}

describe('private key sealing', () => {
  const key = Buffer.alloc(32, 7);
  it('round-trips under the same key and tenant/kid binding', () => {
    assert.equal(open(seal('secret jwk', key, 't/k'), key, 't/k'), 'secret jwk');
  });
  it('refuses another master key', () => {
    assert.throws(() => open(seal('secret jwk', key, 't/k'), Buffer.alloc(32, 8), 't/k'));
  });
  it('refuses a sealed key moved to another tenant or kid', () => {
    assert.throws(() => open(seal('secret jwk', key, 't/k'), key, 'u/k'));
  });
  it('refuses a tampered ciphertext', () => {
    const sealed = seal('secret jwk', key, 't/k');
    const parts = sealed.split('.');
    const ciphertext = Buffer.from(parts[3]!, 'base64url');
    ciphertext[0]! ^= 1;
    parts[3] = ciphertext.toString('base64url');
    assert.throws(() => open(parts.join('.'), key, 't/k'));
  });
});

describe('development master key', () => {
  it('is generated once with mode 0600', async () => {
    const server = await startServer();
    try {
      const mode = statSync(join(server.config.dataDir, 'master.key')).mode & 0o777;
      assert.equal(mode, 0o600);
    } finally {
      await server.close();
    }
  });
});
