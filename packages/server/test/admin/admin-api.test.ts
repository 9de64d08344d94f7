import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createCore } from '../../src/core.js';
import { adminCaller, adminToken, basic, dialects, seedClient, startServer, type TestServer, tokenRequest } from '../helpers.js';

for (const dialect of dialects) {
  describe(`admin API (${dialect})`, () => {
    let server: TestServer;
    let token: string;
    const call = adminCaller(() => server, () => token);

    before(async () => {
      server = await startServer({ dialect });
      token = await adminToken(server);
    });
    after(() => server.close());

    describe('authorization', () => {
      it('answers 401 with a Bearer challenge without a token', async () => {
        const response = await call('GET', '/tenants', undefined, null);
        assert.equal(response.statusCode, 401);
        assert.equal(response.headers['www-authenticate'], 'Bearer realm="gatehouse-admin"');
        assert.equal(response.json().code, 'ADMIN_UNAUTHENTICATED');
      });

      it('answers 401 invalid_token for garbage, a tampered token and a revoked one', async () => {
        for (const bad of ['abc', 'a.b.c', `${token.slice(0, -4)}AAAA`]) {
          const response = await call('GET', '/tenants', undefined, bad);
          assert.equal(response.statusCode, 401, bad);
          assert.match(String(response.headers['www-authenticate']), /error="invalid_token"/);
        }
        const spare = await adminToken(server);
        // Used once first, so the verified token is remembered: revocation must still win.
        assert.equal((await call('GET', '/tenants', undefined, spare)).statusCode, 200);
        const revoke = await server.inject({
          method: 'POST',
          url: '/t/default/token/revocation',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(server.admin.clientId, server.admin.clientSecret) },
          payload: `token=${spare}`,
        });
        assert.equal(revoke.statusCode, 200);
        assert.equal((await call('GET', '/tenants', undefined, spare)).statusCode, 401);
      });

      it('refuses a remembered token revoked by another node once the change reaches this one', async () => {
        const spare = await adminToken(server);
        assert.equal((await call('GET', '/tenants', undefined, spare)).statusCode, 200);
        const other = await createCore(server.config, { logger: pino({ level: 'silent' }) });
        try {
          const { claims } = await other.verifyAccessToken('default', spare);
          await other.repos.oauth.revokeToken('default', String(claims.jti), Number(claims.exp) * 1000);
        } finally {
          await other.close();
        }
        await server.core.feed.catchUp();
        assert.equal((await call('GET', '/tenants', undefined, spare)).statusCode, 401);
      });

      it('answers 403 to a valid token for another API', async () => {
        const other = await seedClient(server);
        const { json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(other.clientId, other.clientSecret) });
        const response = await call('GET', '/tenants', undefined, json.access_token!);
        assert.equal(response.statusCode, 403);
        assert.equal(response.json().code, 'ADMIN_FORBIDDEN');
      });

      it('answers 403 to a token of another tenant, even one for an API named like the admin API', async () => {
        await server.core.tenants.create('evil');
        const api = await server.core.catalog.createApi('evil', { identifier: 'urn:gatehouse:admin', scopes: ['admin'] });
        const { client, clientSecret } = await server.core.catalog.createClient('evil', { name: 'x', grantTypes: ['client_credentials'], apis: { [api.identifier]: ['admin'] } });
        const { json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { tenant: 'evil', authorization: basic(client.clientId, clientSecret!) });
        assert.ok(json.access_token);
        const response = await call('GET', '/tenants', undefined, json.access_token);
        assert.equal(response.statusCode, 403);
      });

      it('lets an admin:read token read but not write', async () => {
        const { client, clientSecret } = await server.core.catalog.createClient('default', {
          name: 'auditor',
          grantTypes: ['client_credentials'],
          apis: { 'urn:gatehouse:admin': ['admin:read'] },
        });
        const { json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, clientSecret!) });
        assert.equal((await call('GET', '/tenants', undefined, json.access_token!)).statusCode, 200);
        const write = await call('POST', '/tenants', { id: 'nope' }, json.access_token!);
        assert.equal(write.statusCode, 403);
        assert.match(String(write.headers['www-authenticate']), /error="insufficient_scope", scope="admin"/);
        assert.equal((await call('GET', '/tenants/nope', undefined)).statusCode, 404);
      });

      it('audits refused admin calls', async () => {
        await server.core.audit.flush();
        const events = await server.core.repos.audit.query({ tenantId: 'default', action: 'admin.authentication_failed', limit: 50 });
        assert.ok(events.some((e) => e.details?.status === 401));
        assert.ok(events.some((e) => e.details?.status === 403));
      });
    });

    describe('tenants, APIs, clients, secrets, keys and audit', () => {
      it('creates a tenant with its issuer and signing key', async () => {
        const response = await call('POST', '/tenants', { id: 'acme', display_name: 'Acme' });
        assert.equal(response.statusCode, 201);
        assert.equal(response.json().issuer, `${server.url}/t/acme`);
        const discovery = await server.inject({ url: '/t/acme/.well-known/openid-configuration' });
        assert.equal(discovery.json().issuer, `${server.url}/t/acme`);
        const jwks = await server.inject({ url: '/t/acme/jwks' });
        // The default ES256 key, and the RS256 key beside it for ID tokens (OIDC Core §15.1).
        assert.deepEqual(jwks.json().keys.map((k: { alg: string }) => k.alg).sort(), ['ES256', 'RS256']);
        assert.equal((await call('POST', '/tenants', { id: 'acme' })).statusCode, 409);
      });

      it('rejects bad input with a typed error and changes nothing', async () => {
        const before = (await call('GET', '/tenants')).json().tenants.length;
        for (const body of [{ id: 'Bad Name' }, { id: '' }, { id: 'x', extra: 1 }, {}]) {
          const response = await call('POST', '/tenants', body);
          assert.equal(response.statusCode, 400, JSON.stringify(body));
          assert.ok(['TENANTS_INVALID_ID', 'REQUEST_INVALID'].includes(response.json().code));
          assert.doesNotMatch(response.body, /at .*\.ts/);
        }
        const malformed = await server.inject({ method: 'POST', url: '/api/v1/tenants', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: '{"id":' });
        assert.equal(malformed.statusCode, 400);
        assert.equal(malformed.json().code, 'REQUEST_MALFORMED');
        assert.equal((await call('GET', '/tenants')).json().tenants.length, before);
      });

      it('creates an API and a client whose secret is shown once, and the client gets a token', async () => {
        const api = await call('POST', '/tenants/acme/apis', { identifier: 'https://inventory.acme.test', scopes: ['items:read', 'items:write'], access_token_ttl: 300 });
        assert.equal(api.statusCode, 201);
        assert.equal(api.json().access_token_ttl, 300);
        const bad = await call('POST', '/tenants/acme/apis', { identifier: 'not a uri', scopes: [] });
        assert.equal(bad.statusCode, 400);
        assert.equal(bad.json().code, 'OAUTH_API_IDENTIFIER_INVALID');
        const created = await call('POST', '/tenants/acme/clients', { name: 'worker', grant_types: ['client_credentials'], apis: { 'https://inventory.acme.test': ['items:read'] } });
        assert.equal(created.statusCode, 201);
        const { client_id, client_secret } = created.json();
        assert.ok(client_secret);
        const fetched = await call('GET', `/tenants/acme/clients/${client_id}`);
        assert.equal(fetched.statusCode, 200);
        assert.equal(fetched.json().client_secret, undefined);
        assert.doesNotMatch((await call('GET', '/tenants/acme/clients')).body, new RegExp(client_secret));
        const { json } = await tokenRequest(server, { grant_type: 'client_credentials' }, { tenant: 'acme', authorization: basic(client_id, client_secret) });
        assert.equal(json.expires_in, 300);
      });

      it('refuses a client for an unknown API, an unknown scope or an unsupported grant', async () => {
        const cases: [Record<string, unknown>, string][] = [
          [{ name: 'a', grant_types: ['client_credentials'], apis: { 'https://nowhere.test': ['x'] } }, 'OAUTH_CLIENT_API_UNKNOWN'],
          [{ name: 'a', grant_types: ['client_credentials'], apis: { 'https://inventory.acme.test': ['items:delete'] } }, 'OAUTH_SCOPE_NOT_IN_API'],
          [{ name: 'a', grant_types: ['password'] }, 'OAUTH_GRANT_TYPE_UNSUPPORTED'],
          [{ name: 'a', type: 'public', grant_types: ['client_credentials'] }, 'OAUTH_PUBLIC_CLIENT_CREDENTIALS'],
          [{ name: 'a', grant_types: ['authorization_code'] }, 'OAUTH_REDIRECT_URIS_REQUIRED'],
          [{ name: 'a', grant_types: ['refresh_token', 'client_credentials'] }, 'OAUTH_REFRESH_WITHOUT_CODE'],
          [{ name: 'a', grant_types: ['client_credentials'], redirect_uris: ['https://app.test/cb'] }, 'OAUTH_REDIRECT_URIS_UNUSED'],
          [{ name: 'a', grant_types: ['authorization_code'], redirect_uris: ['http://app.test/cb'] }, 'OAUTH_REDIRECT_URI_INVALID'],
          [{ name: 'a', grant_types: ['authorization_code'], redirect_uris: ['https://app.test/cb#frag'] }, 'OAUTH_REDIRECT_URI_INVALID'],
          [{ name: 'a', grant_types: ['authorization_code'], redirect_uris: ['/cb'] }, 'OAUTH_REDIRECT_URI_INVALID'],
          [{ name: 'a', grant_types: ['authorization_code'], redirect_uris: ['javascript:alert(1)'] }, 'OAUTH_REDIRECT_URI_INVALID'],
          [{ name: 'a', grant_types: ['authorization_code'], redirect_uris: ['https://user:pw@app.test/cb'] }, 'OAUTH_REDIRECT_URI_INVALID'],
          // A private-use scheme is for native (public) apps only.
          [{ name: 'a', grant_types: ['authorization_code'], redirect_uris: ['com.example.app:/cb'] }, 'OAUTH_REDIRECT_URI_INVALID'],
          [{ name: 'a', grant_types: ['authorization_code'], redirect_uris: ['https://app.test/cb'], post_logout_redirect_uris: ['http://app.test/'] }, 'OAUTH_REDIRECT_URI_INVALID'],
          [{ name: 'a', grant_types: ['authorization_code'], redirect_uris: ['https://app.test/cb'], backchannel_logout_uri: 'com.example.app:/logout' }, 'OAUTH_REDIRECT_URI_INVALID'],
          [{ name: 'a', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['https://app.test/cb'], refresh_token_idle_ttl: 7200, refresh_token_absolute_ttl: 3600 }, 'OAUTH_REFRESH_TTL_ORDER'],
        ];
        const count = (await call('GET', '/tenants/acme/clients')).json().clients.length;
        for (const [body, code] of cases) {
          const response = await call('POST', '/tenants/acme/clients', body);
          assert.equal(response.statusCode, 400, code);
          assert.equal(response.json().code, code);
        }
        assert.equal((await call('GET', '/tenants/acme/clients')).json().clients.length, count);
      });

      it('registers applications people sign in to: confidential and public, first-party or not, with exact URIs', async () => {
        const web = await call('POST', '/tenants/acme/clients', {
          name: 'web',
          grant_types: ['authorization_code', 'refresh_token'],
          redirect_uris: ['https://app.acme.test/callback', 'http://localhost:3000/callback'],
          post_logout_redirect_uris: ['https://app.acme.test/'],
          backchannel_logout_uri: 'https://app.acme.test/backchannel',
          first_party: true,
          refresh_token_idle_ttl: 86400,
          refresh_token_absolute_ttl: 2592000,
        });
        assert.equal(web.statusCode, 201, web.body);
        assert.ok(web.json().client_secret);
        assert.deepEqual(
          (({ type, first_party, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri, refresh_token_idle_ttl, refresh_token_absolute_ttl, token_endpoint_auth_method }) => ({
            type,
            first_party,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            refresh_token_idle_ttl,
            refresh_token_absolute_ttl,
            token_endpoint_auth_method,
          }))(web.json()),
          {
            type: 'confidential',
            first_party: true,
            redirect_uris: ['https://app.acme.test/callback', 'http://localhost:3000/callback'],
            post_logout_redirect_uris: ['https://app.acme.test/'],
            backchannel_logout_uri: 'https://app.acme.test/backchannel',
            refresh_token_idle_ttl: 86400,
            refresh_token_absolute_ttl: 2592000,
            token_endpoint_auth_method: 'client_secret_basic',
          },
        );
        const native = await call('POST', '/tenants/acme/clients', { name: 'native', type: 'public', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['com.acme.app:/callback', 'http://127.0.0.1/callback'] });
        assert.equal(native.statusCode, 201, native.body);
        assert.equal(native.json().client_secret, undefined);
        assert.deepEqual([native.json().token_endpoint_auth_method, native.json().first_party, native.json().refresh_token_idle_ttl], ['none', false, null]);

        // The engine sees the same client: exact redirect URIs, code flow only.
        const discovery = await server.inject({ method: 'GET', url: '/t/acme/.well-known/openid-configuration' });
        assert.deepEqual(discovery.json().code_challenge_methods_supported, ['S256']);

        // A change is checked like a new client, and a refused change changes nothing.
        const id = web.json().client_id;
        const refused = await call('PATCH', `/tenants/acme/clients/${id}`, { redirect_uris: ['http://evil.test/cb'] });
        assert.equal(refused.json().code, 'OAUTH_REDIRECT_URI_INVALID');
        const moved = await call('PATCH', `/tenants/acme/clients/${id}`, { redirect_uris: ['https://app.acme.test/v2/callback'], first_party: false, backchannel_logout_uri: null });
        assert.equal(moved.statusCode, 200, moved.body);
        assert.deepEqual([moved.json().redirect_uris, moved.json().first_party, moved.json().backchannel_logout_uri], [['https://app.acme.test/v2/callback'], false, null]);
        assert.equal((await call('PATCH', `/tenants/acme/clients/${id}`, { grant_types: ['refresh_token'] })).json().code, 'OAUTH_REFRESH_WITHOUT_CODE');
        assert.deepEqual((await call('GET', `/tenants/acme/clients/${id}`)).json().grant_types, ['authorization_code', 'refresh_token']);
      });

      it('changes an API and a client; the next token reflects it, and the admin API stays untouchable', async () => {
        const created = (await call('POST', '/tenants/acme/clients', { name: 'changer', grant_types: ['client_credentials'], apis: { 'https://inventory.acme.test': ['items:read'] } })).json();
        const auth = { tenant: 'acme', authorization: basic(created.client_id, created.client_secret) };
        const widened = await call('PATCH', `/tenants/acme/clients/${created.client_id}`, { name: 'changer 2', apis: { 'https://inventory.acme.test': ['items:read', 'items:write'] } });
        assert.equal(widened.statusCode, 200);
        assert.equal(widened.json().name, 'changer 2');
        assert.equal((await tokenRequest(server, { grant_type: 'client_credentials' }, auth)).json.scope, 'items:read items:write');

        const api = await call('PATCH', '/tenants/acme/apis/https%3A%2F%2Finventory.acme.test', { scopes: ['items:read'], access_token_ttl: 120 });
        assert.equal(api.statusCode, 200);
        const narrowed = await tokenRequest(server, { grant_type: 'client_credentials' }, auth);
        assert.equal(narrowed.json.scope, 'items:read');
        assert.equal(narrowed.json.expires_in, 120);

        assert.equal((await call('PATCH', `/tenants/acme/clients/${created.client_id}`, { apis: { 'https://inventory.acme.test': ['items:write'] } })).json().code, 'OAUTH_SCOPE_NOT_IN_API');
        assert.equal((await call('PATCH', `/tenants/acme/clients/${created.client_id}`, {})).statusCode, 400);
        assert.equal((await call('PATCH', '/tenants/acme/apis/https%3A%2F%2Finventory.acme.test', { access_token_ttl: 5 })).statusCode, 400);
        assert.equal((await call('PATCH', '/tenants/default/apis/urn%3Agatehouse%3Aadmin', { scopes: [] })).json().code, 'OAUTH_API_BUILTIN');
        assert.equal((await call('PATCH', '/tenants/default/clients/gatehouse-bootstrap', { name: 'x' })).json().code, 'OAUTH_CLIENT_BUILTIN');
        await call('PATCH', '/tenants/acme/apis/https%3A%2F%2Finventory.acme.test', { scopes: ['items:read', 'items:write'], access_token_ttl: 300 });
      });

      it('rotates a client secret with a grace period', async () => {
        const created = (await call('POST', '/tenants/acme/clients', { name: 'rotator', grant_types: ['client_credentials'], apis: { 'https://inventory.acme.test': ['items:read'] } })).json();
        const rotated = await call('POST', `/tenants/acme/clients/${created.client_id}/secret`, { grace_seconds: 60 });
        assert.equal(rotated.statusCode, 200);
        assert.notEqual(rotated.json().client_secret, created.client_secret);
        for (const secret of [created.client_secret, rotated.json().client_secret]) {
          const { status } = await tokenRequest(server, { grant_type: 'client_credentials' }, { tenant: 'acme', authorization: basic(created.client_id, secret) });
          assert.equal(status, 200);
        }
        assert.equal((await call('POST', `/tenants/acme/clients/${created.client_id}/secret`, { grace_seconds: -1 })).statusCode, 400);
        assert.equal((await call('POST', '/tenants/acme/clients/cl_missing/secret', {})).statusCode, 404);
      });

      it('deletes clients but not the built-in bootstrap client', async () => {
        const created = (await call('POST', '/tenants/acme/clients', { name: 'doomed', grant_types: ['client_credentials'] })).json();
        assert.equal((await call('DELETE', `/tenants/acme/clients/${created.client_id}`)).statusCode, 204);
        assert.equal((await call('GET', `/tenants/acme/clients/${created.client_id}`)).statusCode, 404);
        const builtin = await call('DELETE', '/tenants/default/clients/gatehouse-bootstrap');
        assert.equal(builtin.statusCode, 409);
        assert.equal(builtin.json().code, 'OAUTH_CLIENT_BUILTIN');
      });

      it('rotates the signing key and lists keys without private material', async () => {
        const before = (await call('GET', '/tenants/acme/keys')).json().keys;
        const rotated = await call('POST', '/tenants/acme/keys/rotate', { alg: 'EdDSA' });
        assert.equal(rotated.statusCode, 200);
        assert.equal(rotated.json().alg, 'EdDSA');
        assert.equal(rotated.json().previous_kid, before.find((k: { alg: string }) => k.alg === 'ES256').kid);
        const keys = (await call('GET', '/tenants/acme/keys')).json().keys;
        const byKid = new Map(keys.map((k: { kid: string; alg: string; status: string }) => [k.kid, `${k.alg} ${k.status}`]));
        assert.equal(byKid.get(rotated.json().kid), 'EdDSA active');
        assert.equal(byKid.get(rotated.json().id_token_kid), 'RS256 active');
        assert.deepEqual(before.map((k: { kid: string }) => byKid.get(k.kid)).sort(), ['ES256 previous', 'RS256 previous']);
        assert.ok(keys.every((k: { public_jwk: Record<string, unknown> }) => k.public_jwk.d === undefined));
        assert.equal((await call('POST', '/tenants/acme/keys/rotate', { alg: 'HS256' })).statusCode, 400);
      });

      it('queries the audit trail with filters and paging', async () => {
        const all = await call('GET', '/tenants/acme/audit?limit=2');
        assert.equal(all.statusCode, 200);
        assert.equal(all.json().events.length, 2);
        const next = await call('GET', `/tenants/acme/audit?limit=2&before=${all.json().next_before}`);
        assert.ok(next.json().events.every((e: { id: number }) => e.id < all.json().next_before));
        const rotations = (await call('GET', '/tenants/acme/audit?action=key.rotated')).json().events;
        assert.equal(rotations.length, 1);
        assert.equal(rotations[0].actor, 'gatehouse-bootstrap');
        assert.ok(rotations[0].request_id);
        const created = (await call('GET', '/tenants/acme/audit?action=client.created&result=success')).json().events;
        assert.ok(created.length >= 2);
        assert.equal((await call('GET', '/tenants/acme/audit?limit=5000')).statusCode, 400);
      });

      it('describes itself in an OpenAPI document', async () => {
        const response = await server.inject({ url: '/api/v1/openapi.json' });
        assert.equal(response.statusCode, 200);
        const doc = response.json();
        assert.match(doc.openapi, /^3\./);
        for (const path of ['/api/v1/tenants', '/api/v1/tenants/{tenant}/apis', '/api/v1/tenants/{tenant}/clients', '/api/v1/tenants/{tenant}/clients/{client}/secret', '/api/v1/tenants/{tenant}/keys/rotate', '/api/v1/tenants/{tenant}/audit']) {
          assert.ok(doc.paths[path], path);
        }
      });
    });
  });
}
