import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { SignJWT, importJWK } from 'jose';
import { createFastifyAuth, createVerifier, GatehouseTokenError } from '@gatehouse/sdk';
import { basic, seedClient, startServer, testClock, tokenRequest, type TestServer } from '../helpers.js';

const rejectsWith = (promise: Promise<unknown>, code: string) =>
  assert.rejects(promise, (error: unknown) => error instanceof GatehouseTokenError && error.code === code);

// The SDK against a real, listening Gatehouse: discovery, JWKS, rotation, tenants.
describe('SDK verifier against Gatehouse', () => {
  const clock = testClock(Date.now());
  let server: TestServer;
  let client: Awaited<ReturnType<typeof seedClient>>;
  const issue = async (tenant = 'default', c = client) =>
    (await tokenRequest(server, { grant_type: 'client_credentials' }, { tenant, authorization: basic(c.clientId, c.clientSecret) })).json.access_token!;

  before(async () => {
    server = await startServer({ listen: true, clock });
    client = await seedClient(server, { allowed: ['read', 'write'] });
  });
  after(() => server.close());

  const verifier = () => createVerifier({ issuer: `${server.url}/t/default`, audience: client.identifier });

  it('verifies a Gatehouse access token and exposes its claims and scopes', async () => {
    const verified = await verifier().verify(await issue());
    assert.equal(verified.claims.client_id, client.clientId);
    assert.deepEqual([...verified.scopes].sort(), ['read', 'write']);
  });

  it('rejects a token of another tenant, even for the same audience', async () => {
    await server.core.tenants.create('neighbour');
    const other = await seedClient(server, { tenant: 'neighbour', identifier: client.identifier });
    // Each tenant signs with its own keys, so the token fails before its iss is even read.
    await rejectsWith(verifier().verify(await issue('neighbour', other)), 'TOKEN_KID_UNKNOWN');
  });

  it('rejects a token minted with the tenant key but the wrong type (an ID-token-shaped JWT)', async () => {
    const keySet = await server.core.keys.keySet('default');
    const key = await importJWK(keySet.privateJwks[0]!, keySet.active.alg);
    const forged = await new SignJWT({ client_id: client.clientId, scope: 'read' })
      .setProtectedHeader({ alg: keySet.active.alg, kid: keySet.active.kid, typ: 'JWT' })
      .setIssuer(`${server.url}/t/default`)
      .setAudience(client.identifier)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key);
    await rejectsWith(verifier().verify(forged), 'TOKEN_TYPE_INVALID');
  });

  it('keeps verifying tokens signed before a rotation, and rejects them once their key is retired', async () => {
    const before = await issue();
    const v = verifier();
    await v.verify(before);
    await server.core.keys.rotate('default');
    await server.core.feed.catchUp();
    const after = await issue();
    await v.verify(before);
    // The new kid is unknown to the cached JWKS; a fresh verifier fetches it at once.
    await verifier().verify(after);
    clock.advance(661_000);
    await rejectsWith(verifier().verify(before), 'TOKEN_KID_UNKNOWN');
    await verifier().verify(after);
  });

  it('protects a Fastify route: 401 without a token, 403 without the scope, 200 with it', async () => {
    const api = Fastify();
    const v = verifier();
    api.get('/read', { preHandler: createFastifyAuth(v, { scopes: ['read'] }) }, async () => ({ ok: true }));
    api.get('/admin', { preHandler: createFastifyAuth(v, { scopes: ['admin'] }) }, async () => ({ ok: true }));
    const token = await issue();
    try {
      const missing = await api.inject({ url: '/read' });
      assert.equal(missing.statusCode, 401);
      assert.match(String(missing.headers['www-authenticate']), /^Bearer/);
      assert.equal((await api.inject({ url: '/read', headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
      const forbidden = await api.inject({ url: '/admin', headers: { authorization: `Bearer ${token}` } });
      assert.equal(forbidden.statusCode, 403);
      assert.match(String(forbidden.headers['www-authenticate']), /insufficient_scope/);
    } finally {
      await api.close();
    }
  });
});
