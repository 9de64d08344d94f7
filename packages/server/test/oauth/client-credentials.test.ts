import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basic, decode, dialects, seedClient, startServer, testClock, tokenRequest, type TestServer } from '../helpers.js';

for (const dialect of dialects) {
  describe(`client credentials grant (${dialect})`, () => {
    let server: TestServer;
    const clock = testClock(Date.now());
    let client: Awaited<ReturnType<typeof seedClient>>;

    before(async () => {
      server = await startServer({ dialect, clock });
      client = await seedClient(server, { scopes: ['read', 'write', 'admin'], allowed: ['read', 'write'] });
    });
    after(() => server.close());

    it('issues an RFC 9068 JWT access token with client_secret_basic', async () => {
      const { status, json, headers } = await tokenRequest(server, { grant_type: 'client_credentials', scope: 'read' }, { authorization: basic(client.clientId, client.clientSecret) });
      assert.equal(status, 200);
      assert.equal(headers['cache-control'], 'no-store');
      assert.ok(headers['x-request-id']);
      assert.equal(json.token_type, 'Bearer');
      assert.equal(json.expires_in, 600);
      const { header, payload } = decode(json.access_token!);
      assert.equal(header.typ, 'at+jwt');
      assert.equal(header.alg, 'ES256');
      const { active } = await server.core.keys.keySet('default');
      assert.equal(header.kid, active.kid);
      assert.equal(payload.iss, `${server.url}/t/default`);
      assert.equal(payload.sub, client.clientId);
      assert.equal(payload.client_id, client.clientId);
      assert.equal(payload.aud, client.identifier);
      assert.equal(payload.scope, 'read');
      assert.equal(payload.exp - payload.iat, 600);
      assert.equal(typeof payload.jti, 'string');
    });

    it('accepts client_secret_post for a client registered with it', async () => {
      const post = await seedClient(server, { authMethod: 'client_secret_post' });
      const { status, json } = await tokenRequest(server, { grant_type: 'client_credentials', client_id: post.clientId, client_secret: post.clientSecret });
      assert.equal(status, 200);
      assert.equal(decode(json.access_token!).payload.sub, post.clientId);
    });

    it('treats client_secret_basic and client_secret_post as one secret-based method', async () => {
      const { status } = await tokenRequest(server, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret });
      assert.equal(status, 200);
    });

    it('refuses credentials sent both in the header and in the body', async () => {
      const { status, json } = await tokenRequest(
        server,
        { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
        { authorization: basic(client.clientId, client.clientSecret) },
      );
      assert.equal(status, 400);
      assert.equal(json.error, 'invalid_request');
    });

    it('grants every pre-approved scope when none is requested', async () => {
      const { json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, client.clientSecret) });
      assert.equal(decode(json.access_token!).payload.scope, 'read write');
    });

    it('answers invalid_scope for a scope the client is not allowed', async () => {
      const { status, json } = await tokenRequest(server, { grant_type: 'client_credentials', scope: 'read admin' }, { authorization: basic(client.clientId, client.clientSecret) });
      assert.equal(status, 400);
      assert.equal(json.error, 'invalid_scope');
    });

    it('answers invalid_scope for a scope the API does not define', async () => {
      const { status, json } = await tokenRequest(server, { grant_type: 'client_credentials', scope: 'delete' }, { authorization: basic(client.clientId, client.clientSecret) });
      assert.equal(status, 400);
      assert.equal(json.error, 'invalid_scope');
    });

    it('chooses the audience with the resource parameter and refuses an API the client may not call', async () => {
      await server.core.catalog.createApi('default', { identifier: 'https://billing.example.com', scopes: ['charge'] });
      const { status, json } = await tokenRequest(server, { grant_type: 'client_credentials', resource: 'https://billing.example.com' }, { authorization: basic(client.clientId, client.clientSecret) });
      assert.equal(status, 400);
      assert.equal(json.error, 'invalid_target');
      const ok = await tokenRequest(server, { grant_type: 'client_credentials', resource: client.identifier }, { authorization: basic(client.clientId, client.clientSecret) });
      assert.equal(decode(ok.json.access_token!).payload.aud, client.identifier);
    });

    it('requires the resource parameter when a client may call several APIs', async () => {
      await server.core.catalog.createApi('default', { identifier: 'https://orders.example.com', scopes: ['list'] });
      const { client: multi, clientSecret } = await server.core.catalog.createClient('default', {
        name: 'multi',
        grantTypes: ['client_credentials'],
        apis: { 'https://api.example.com': ['read'], 'https://orders.example.com': ['list'] },
      });
      const auth = { authorization: basic(multi.clientId, clientSecret!) };
      const missing = await tokenRequest(server, { grant_type: 'client_credentials' }, auth);
      assert.equal(missing.status, 400);
      assert.equal(missing.json.error, 'invalid_target');
      const chosen = await tokenRequest(server, { grant_type: 'client_credentials', resource: 'https://orders.example.com' }, auth);
      assert.equal(decode(chosen.json.access_token!).payload.aud, 'https://orders.example.com');
      assert.equal(decode(chosen.json.access_token!).payload.scope, 'list');
    });

    it('uses the access-token lifetime of the API', async () => {
      const short = await seedClient(server, { identifier: 'https://short.example.com', ttl: 120 });
      const { json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(short.clientId, short.clientSecret) });
      assert.equal(json.expires_in, 120);
    });

    describe('bad input gets the RFC 6749 error and no token', () => {
      it('wrong secret → 401 invalid_client with WWW-Authenticate', async () => {
        const { status, json, headers } = await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, 'wrong') });
        assert.equal(status, 401);
        assert.equal(json.error, 'invalid_client');
        assert.match(String(headers['www-authenticate']), /^Basic /);
        assert.doesNotMatch(JSON.stringify(json), /secret provided|stack|at /);
      });

      it('unknown client → the same 401 invalid_client', async () => {
        const { status, json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic('cl_nobody', 'x') });
        assert.equal(status, 401);
        assert.equal(json.error, 'invalid_client');
      });

      it('unknown or deprecated grant type → unsupported_grant_type', async () => {
        for (const grant of ['password', 'implicit', 'urn:example:nothing']) {
          const { status, json } = await tokenRequest(server, { grant_type: grant, username: 'a', password: 'b' }, { authorization: basic(client.clientId, client.clientSecret) });
          assert.equal(status, 400, grant);
          assert.equal(json.error, 'unsupported_grant_type', grant);
        }
      });

      it('missing grant_type → invalid_request', async () => {
        const { status, json } = await tokenRequest(server, {}, { authorization: basic(client.clientId, client.clientSecret) });
        assert.equal(status, 400);
        assert.equal(json.error, 'invalid_request');
      });

      it('a JSON body → invalid_request', async () => {
        const response = await server.inject({
          method: 'POST',
          url: '/t/default/token',
          headers: { 'content-type': 'application/json', authorization: basic(client.clientId, client.clientSecret) },
          payload: JSON.stringify({ grant_type: 'client_credentials' }),
        });
        assert.equal(response.statusCode, 400);
        assert.equal(response.json().error, 'invalid_request');
      });

      it('repeated parameters → invalid_request', async () => {
        const response = await server.inject({
          method: 'POST',
          url: '/t/default/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
          payload: 'grant_type=client_credentials&scope=read&scope=write',
        });
        assert.equal(response.statusCode, 400);
        assert.equal(response.json().error, 'invalid_request');
      });

      it('an oversized body → 413 invalid_request', async () => {
        const response = await server.inject({
          method: 'POST',
          url: '/t/default/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
          payload: `grant_type=client_credentials&pad=${'x'.repeat(server.config.bodyLimit)}`,
        });
        assert.equal(response.statusCode, 413);
        assert.equal(response.json().error, 'invalid_request');
      });

      it('an unknown tenant → 404 JSON', async () => {
        const { status, json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { tenant: 'nope', authorization: basic(client.clientId, client.clientSecret) });
        assert.equal(status, 404);
        assert.equal(json.error, 'not_found');
        const discovery = await server.inject({ url: '/t/NOT..valid/.well-known/openid-configuration' });
        assert.equal(discovery.statusCode, 404);
        for (const url of ['/t/default/nope', '/t/default']) {
          const unknown = await server.inject({ url });
          assert.equal(unknown.statusCode, 404, url);
          assert.equal(unknown.json().error, 'not_found', url);
        }
      });

      it('a client of one tenant cannot authenticate at another', async () => {
        await server.core.tenants.create('other');
        const { status, json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { tenant: 'other', authorization: basic(client.clientId, client.clientSecret) });
        assert.equal(status, 401);
        assert.equal(json.error, 'invalid_client');
      });
    });

    it('keeps a rotated secret valid for the grace period only', async () => {
      const rotating = await seedClient(server);
      const rotated = await server.core.catalog.rotateSecret('default', rotating.clientId, 3600);
      const oldAuth = { authorization: basic(rotating.clientId, rotating.clientSecret) };
      const newAuth = { authorization: basic(rotating.clientId, rotated.clientSecret) };
      assert.equal((await tokenRequest(server, { grant_type: 'client_credentials' }, oldAuth)).status, 200);
      assert.equal((await tokenRequest(server, { grant_type: 'client_credentials' }, newAuth)).status, 200);
      clock.advance(3600_000 + 1);
      assert.equal((await tokenRequest(server, { grant_type: 'client_credentials' }, oldAuth)).status, 401);
      assert.equal((await tokenRequest(server, { grant_type: 'client_credentials' }, newAuth)).status, 200);
    });

    it('stores client secrets only as SHA-256 hashes', async () => {
      const rows = await server.core.handle.db.selectFrom('client_secrets').select('hash').where('client_id', '=', client.clientId).execute();
      assert.equal(rows.length, 1);
      assert.match(rows[0]!.hash, /^[0-9a-f]{64}$/);
      assert.notEqual(rows[0]!.hash, client.clientSecret);
      assert.ok(Buffer.from(client.clientSecret, 'base64url').length >= 32, 'secret carries at least 256 bits');
    });

    it('audits issued tokens and failed client authentication', async () => {
      await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, 'bad-secret') });
      await server.core.audit.flush();
      // The caller did not authenticate: the client id is its claim, not the actor.
      const failed = (await server.core.repos.audit.query({ tenantId: 'default', action: 'client.authentication_failed', limit: 100 })).filter((e) => e.details?.claimed_client_id === client.clientId);
      assert.ok(failed.length >= 1);
      assert.equal(failed[0]!.actor, null);
      assert.equal(failed[0]!.result, 'failure');
      assert.ok(failed[0]!.requestId);
      assert.doesNotMatch(JSON.stringify(failed), /bad-secret/);
      const issued = await server.core.repos.audit.query({ tenantId: 'default', action: 'token.issued', actor: client.clientId, limit: 10 });
      assert.ok(issued.length >= 1);
      assert.equal(issued[0]!.details?.grant_type, 'client_credentials');
      // A JWT is named by its jti (an identifier, not the credential).
      assert.match(String(issued[0]!.details?.jti), /^[\w-]{20,}$/);
    });

    it('counts issued tokens in /metrics', async () => {
      const response = await server.inject({ url: '/metrics' });
      assert.equal(response.statusCode, 200);
      assert.match(response.body, /gatehouse_tokens_issued_total\{grant_type="client_credentials"\} [1-9]/);
      assert.match(response.body, /gatehouse_token_request_duration_seconds_bucket/);
    });
  });
}

describe('discovery', () => {
  it('builds every endpoint from the public URL, whatever Host or X-Forwarded-* the caller sends', async () => {
    const server = await startServer();
    try {
      const response = await server.inject({
        url: '/t/default/.well-known/openid-configuration',
        headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
      });
      const doc = response.json() as Record<string, unknown>;
      assert.equal(doc.issuer, `${server.url}/t/default`);
      for (const key of ['token_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint']) {
        assert.ok(String(doc[key]).startsWith(`${server.url}/t/default/`), `${key}: ${doc[key]}`);
      }
    } finally {
      await server.close();
    }
  });
});
