import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createFastifyAuth, createVerifier, gatehouseAuth, type Verifier, type VerifiedToken } from '../src/index.js';
import { accessClaims, AUDIENCE, createClock, mint, startFixture, type Fixture } from './helpers/test-issuer.js';

declare module 'fastify' {
  interface FastifyRequest {
    gatehouse?: VerifiedToken | null;
  }
}

describe('Fastify', () => {
  let fixture: Fixture;
  let verifier: Verifier;
  let issuer: string;
  const token = (scope = 'orders:read profile') => mint(fixture.keys.es256, accessClaims(issuer, { scope }));

  before(async () => {
    fixture = await startFixture();
    issuer = fixture.server.issuer();
    verifier = createVerifier({ issuer, audience: AUDIENCE, clock: createClock().now });
  });
  after(() => fixture.server.close());

  describe('createFastifyAuth preHandler', () => {
    let app: FastifyInstance;
    let handlerRuns = 0;
    before(async () => {
      app = Fastify();
      const handler = async (request: { gatehouse?: VerifiedToken | null }) => {
        handlerRuns += 1;
        return { sub: request.gatehouse?.claims.sub, scopes: request.gatehouse?.scopes };
      };
      app.get('/orders', { preHandler: createFastifyAuth(verifier, { scopes: ['orders:read'] }) }, handler);
      app.post('/orders', { preHandler: createFastifyAuth(verifier, { scopes: ['orders:write'], realm: 'orders' }) }, handler);
      await app.ready();
    });
    after(() => app.close());

    it('answers 401 with a bare challenge when the Authorization header is missing', async () => {
      const runs = handlerRuns;
      const response = await app.inject({ method: 'GET', url: '/orders' });
      assert.equal(response.statusCode, 401);
      assert.equal(response.headers['www-authenticate'], `Bearer realm="${AUDIENCE}"`);
      assert.doesNotMatch(String(response.headers['www-authenticate']), /error=/);
      assert.deepEqual(response.json(), { error: 'invalid_request', error_description: 'An access token is required.' });
      assert.equal(handlerRuns, runs);
    });

    it('treats another authentication scheme as no token', async () => {
      const response = await app.inject({ method: 'GET', url: '/orders', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      assert.equal(response.statusCode, 401);
      assert.equal(response.headers['www-authenticate'], `Bearer realm="${AUDIENCE}"`);
    });

    it('answers 401 invalid_token for a bad token', async () => {
      const runs = handlerRuns;
      const response = await app.inject({ method: 'GET', url: '/orders', headers: { authorization: 'Bearer not.a.jwt' } });
      assert.equal(response.statusCode, 401);
      assert.equal(
        response.headers['www-authenticate'],
        `Bearer realm="${AUDIENCE}", error="invalid_token", error_description="The access token is invalid."`,
      );
      assert.deepEqual(response.json(), { error: 'invalid_token', error_description: 'The access token is invalid.' });
      assert.equal(handlerRuns, runs);
    });

    it('answers 401 invalid_token for a malformed Authorization header', async () => {
      const response = await app.inject({ method: 'GET', url: '/orders', headers: { authorization: 'Bearer a b' } });
      assert.equal(response.statusCode, 401);
      assert.match(String(response.headers['www-authenticate']), /error="invalid_token"/);
    });

    it('answers 403 insufficient_scope with the required scope when a scope is missing', async () => {
      const runs = handlerRuns;
      const response = await app.inject({
        method: 'POST',
        url: '/orders',
        headers: { authorization: `Bearer ${await token()}` },
      });
      assert.equal(response.statusCode, 403);
      assert.equal(
        response.headers['www-authenticate'],
        'Bearer realm="orders", error="insufficient_scope", error_description="The access token lacks a required scope.", scope="orders:write"',
      );
      assert.equal(response.json().error, 'insufficient_scope');
      assert.equal(handlerRuns, runs);
    });

    it('runs the handler with the verified claims for a good token', async () => {
      const response = await app.inject({
        method: 'GET',
        url: '/orders',
        headers: { authorization: `bearer ${await token()}` },
      });
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), { sub: 'user-1', scopes: ['orders:read', 'profile'] });
    });
  });

  describe('gatehouseAuth plugin', () => {
    let app: FastifyInstance;
    before(async () => {
      app = Fastify();
      await app.register(gatehouseAuth, { verifier });
      app.get('/me', async (request) => ({ sub: request.gatehouse?.claims.sub }));
      app.get('/admin', { config: { gatehouse: { scopes: ['admin'] } } }, async () => ({ ok: true }));
      app.get('/health', { config: { gatehouse: false } }, async (request) => ({ ok: true, gatehouse: request.gatehouse }));
      await app.ready();
    });
    after(() => app.close());

    it('protects every route by default', async () => {
      const response = await app.inject({ method: 'GET', url: '/me' });
      assert.equal(response.statusCode, 401);
      assert.equal(response.headers['www-authenticate'], `Bearer realm="${AUDIENCE}"`);
    });

    it('attaches the verified token to request.gatehouse', async () => {
      const response = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${await token()}` } });
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), { sub: 'user-1' });
    });

    it('applies per-route scopes from config.gatehouse', async () => {
      const response = await app.inject({ method: 'GET', url: '/admin', headers: { authorization: `Bearer ${await token()}` } });
      assert.equal(response.statusCode, 403);
      assert.match(String(response.headers['www-authenticate']), /error="insufficient_scope", .*scope="admin"$/);
      const allowed = await app.inject({
        method: 'GET',
        url: '/admin',
        headers: { authorization: `Bearer ${await token('admin')}` },
      });
      assert.equal(allowed.statusCode, 200);
    });

    it('leaves a route with config.gatehouse false public', async () => {
      const response = await app.inject({ method: 'GET', url: '/health' });
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), { ok: true, gatehouse: null });
    });

    it('answers 503 without a challenge when the issuer cannot be reached', async () => {
      const offline = createVerifier({ issuer: 'http://127.0.0.1:9/t/none', audience: AUDIENCE });
      const isolated = Fastify();
      await isolated.register(gatehouseAuth, { verifier: offline });
      isolated.get('/me', async () => ({ ok: true }));
      const response = await isolated.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${await token()}` } });
      await isolated.close();
      assert.equal(response.statusCode, 503);
      assert.equal(response.headers['www-authenticate'], undefined);
      assert.equal(response.json().error, 'temporarily_unavailable');
    });
  });

  it('throws a TypeError at boot for an invalid route scope', () => {
    assert.throws(() => createFastifyAuth(verifier, { scopes: ['two words'] }), TypeError);
  });
});
