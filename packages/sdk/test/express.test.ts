import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { createVerifier, expressAuth, type Verifier } from '../src/index.js';
import { accessClaims, AUDIENCE, createClock, mint, startFixture, type Fixture } from './helpers/test-issuer.js';

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
}

describe('Express / Connect middleware', () => {
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

  describe('with express', () => {
    let server: Server;
    let base: string;
    let handlerRuns = 0;
    before(async () => {
      const app = express();
      app.get('/orders', expressAuth(verifier, { scopes: ['orders:read'] }), (req, res) => {
        handlerRuns += 1;
        res.json({ sub: req.gatehouse?.claims.sub, scopes: req.gatehouse?.scopes });
      });
      app.post('/orders', expressAuth(verifier, { scopes: ['orders:write'] }), (_req, res) => {
        handlerRuns += 1;
        res.json({ ok: true });
      });
      server = createServer(app);
      base = await listen(server);
    });
    after(() => close(server));

    it('answers 401 with a bare challenge when the Authorization header is missing', async () => {
      const runs = handlerRuns;
      const response = await fetch(`${base}/orders`);
      assert.equal(response.status, 401);
      assert.equal(response.headers.get('www-authenticate'), `Bearer realm="${AUDIENCE}"`);
      assert.match(String(response.headers.get('content-type')), /^application\/json/);
      assert.deepEqual(await response.json(), { error: 'invalid_request', error_description: 'An access token is required.' });
      assert.equal(handlerRuns, runs);
    });

    it('answers 401 invalid_token for a bad token', async () => {
      const expired = await mint(fixture.keys.es256, accessClaims(issuer, { exp: 1_600_000_000, iat: 1_599_999_000 }));
      const response = await fetch(`${base}/orders`, { headers: { authorization: `Bearer ${expired}` } });
      assert.equal(response.status, 401);
      assert.equal(
        response.headers.get('www-authenticate'),
        `Bearer realm="${AUDIENCE}", error="invalid_token", error_description="The access token expired."`,
      );
      assert.deepEqual(await response.json(), { error: 'invalid_token', error_description: 'The access token expired.' });
    });

    it('answers 403 insufficient_scope with the required scope when a scope is missing', async () => {
      const runs = handlerRuns;
      const response = await fetch(`${base}/orders`, { method: 'POST', headers: { authorization: `Bearer ${await token()}` } });
      assert.equal(response.status, 403);
      assert.match(String(response.headers.get('www-authenticate')), /^Bearer realm="[^"]+", error="insufficient_scope", .*, scope="orders:write"$/);
      assert.equal(((await response.json()) as { error: string }).error, 'insufficient_scope');
      assert.equal(handlerRuns, runs);
    });

    it('calls the handler with req.gatehouse for a good token', async () => {
      const response = await fetch(`${base}/orders`, { headers: { authorization: `Bearer ${await token()}` } });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { sub: 'user-1', scopes: ['orders:read', 'profile'] });
    });
  });

  describe('with plain node:http (Connect style)', () => {
    let server: Server;
    let base: string;
    before(async () => {
      const middleware = expressAuth(verifier, { realm: 'plain' });
      server = createServer((req, res) => {
        middleware(req, res, (error?: unknown) => {
          if (error !== undefined) {
            res.statusCode = 500;
            res.end();
            return;
          }
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ sub: (req as { gatehouse?: { claims: { sub?: string } } }).gatehouse?.claims.sub }));
        });
      });
      base = await listen(server);
    });
    after(() => close(server));

    it('answers 401 with a bare challenge when the Authorization header is missing', async () => {
      const response = await fetch(`${base}/`);
      assert.equal(response.status, 401);
      assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="plain"');
    });

    it('answers 401 invalid_token for a bad token', async () => {
      const response = await fetch(`${base}/`, { headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.e30.' } });
      assert.equal(response.status, 401);
      assert.match(String(response.headers.get('www-authenticate')), /error="invalid_token"/);
    });

    it('calls next with req.gatehouse set for a good token', async () => {
      const response = await fetch(`${base}/`, { headers: { authorization: `Bearer ${await token()}` } });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { sub: 'user-1' });
    });
  });

  it('hands an unexpected verifier failure to next(error)', async () => {
    const broken = { audience: [AUDIENCE], verify: () => Promise.reject(new Error('boom')) };
    const middleware = expressAuth(broken);
    const error = await new Promise<unknown>((resolve) => {
      middleware(
        { headers: { authorization: 'Bearer abc' } },
        { statusCode: 200, setHeader: () => undefined, end: () => undefined },
        resolve,
      );
    });
    assert.equal((error as Error).message, 'boom');
  });

  it('throws a TypeError at boot for a realm with a quote', () => {
    assert.throws(() => expressAuth(verifier, { realm: 'a"b' }), TypeError);
  });
});
