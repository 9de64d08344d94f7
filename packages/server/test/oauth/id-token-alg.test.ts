import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { Agent, signInDriver, verifierPair } from './browserless.js';
import { adminCaller, adminToken, basic, decode, dialects, startServer, type TestServer } from '../helpers.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'https://shop.test/callback';
const API = 'https://api.shop.test';

// OIDC Core §15.1 and Discovery §3: an OP MUST support RS256 for ID tokens. Registration §2:
// a client that registers no id_token_signed_response_alg gets RS256. Access tokens keep the
// tenant's default algorithm (ES256 here).
for (const dialect of dialects) {
  describe(`ID token signing algorithms (${dialect})`, () => {
    let server: TestServer;
    let token: string;
    const call = adminCaller(() => server, () => token);
    const jwks = async () => (await (await fetch(`${server.url}/t/acme/jwks`)).json()) as JSONWebKeySet;

    /** A client of the kind a web application registers, then a full sign-in: its ID token and access token. */
    async function signInWith(registered: Record<string, unknown>) {
      const created = await call('POST', '/tenants/acme/clients', { name: 'Shop', grant_types: ['authorization_code'], redirect_uris: [REDIRECT], first_party: true, apis: { [API]: ['read'] }, ...registered });
      assert.equal(created.statusCode, 201, created.body);
      const { client_id: clientId, client_secret: clientSecret } = created.json() as { client_id: string; client_secret: string };
      const driver = signInDriver({ origin: server.url, tenant: 'acme', clientId, clientSecret, redirectUri: REDIRECT, email: 'ann@acme.test', password: PASSWORD });
      const { verifier, challenge } = verifierPair();
      // With `resource`, the access token is a JWT for the API (without, it is for userinfo only).
      const callback = await driver.signIn(new Agent(server.url), { code_challenge: challenge, code_challenge_method: 'S256', resource: API });
      const issued = await driver.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, resource: API });
      assert.equal(issued.status, 200, JSON.stringify(issued.json));
      return { clientId, created: created.json() as Record<string, unknown>, idToken: issued.json.id_token!, accessToken: issued.json.access_token! };
    }

    before(async () => {
      server = await startServer({ listen: true, dialect });
      token = await adminToken(server);
      assert.equal((await call('POST', '/tenants', { id: 'acme' })).statusCode, 201);
      await server.core.users.create('acme', { email: 'ann@acme.test', password: PASSWORD });
      assert.equal((await call('POST', '/tenants/acme/apis', { identifier: API, scopes: ['read'] })).statusCode, 201);
    });
    after(() => server.close());

    it('publishes an RS256 key beside the default ES256 key, and discovery names both', async () => {
      const keys = (await jwks()).keys;
      assert.deepEqual(keys.map((k) => k.alg).sort(), ['ES256', 'RS256']);
      assert.ok(keys.every((k) => k.d === undefined && k.p === undefined), 'no private parts');
      const discovery = (await (await fetch(`${server.url}/t/acme/.well-known/openid-configuration`)).json()) as Record<string, string[]>;
      assert.deepEqual([...discovery.id_token_signing_alg_values_supported!].sort(), ['ES256', 'RS256']);
    });

    it('signs the ID token RS256 for a client that registered nothing; its access token stays ES256', async () => {
      const { created, idToken, accessToken, clientId } = await signInWith({});
      assert.equal(created.id_token_signed_response_alg, 'RS256');
      assert.equal(decode(idToken).header.alg, 'RS256');
      const { payload } = await jwtVerify(idToken, createLocalJWKSet(await jwks()), { issuer: `${server.url}/t/acme`, audience: clientId, algorithms: ['RS256'] });
      assert.equal(payload.nonce, 'nn');
      assert.equal(decode(accessToken).header.alg, 'ES256');
    });

    it('signs with the algorithm a client registered, and refuses one the tenant holds no key for', async () => {
      const { idToken } = await signInWith({ id_token_signed_response_alg: 'ES256' });
      assert.equal(decode(idToken).header.alg, 'ES256');
      await jwtVerify(idToken, createLocalJWKSet(await jwks()), { issuer: `${server.url}/t/acme`, algorithms: ['ES256'] });

      const refused = await call('POST', '/tenants/acme/clients', { name: 'Other', grant_types: ['authorization_code'], redirect_uris: [REDIRECT], id_token_signed_response_alg: 'PS256' });
      assert.equal(refused.statusCode, 400);
      assert.equal(refused.json().code, 'OAUTH_ID_TOKEN_ALG_UNSUPPORTED');
      assert.match(refused.json().message, /ES256 or RS256/);
    });

    it('rotates the RS256 key with the default one, and refuses a rotation that would strand a client', async () => {
      const before = (await jwks()).keys.map((k) => k.kid);
      const rotated = await call('POST', '/tenants/acme/keys/rotate', {});
      assert.equal(rotated.statusCode, 200, rotated.body);
      const { kid, id_token_kid: idTokenKid, previous_kid: previousKid } = rotated.json() as Record<string, string>;
      assert.ok(idTokenKid && idTokenKid !== kid);
      await server.core.feed.catchUp();
      const after = (await jwks()).keys;
      assert.deepEqual(after.slice(0, 2).map((k) => [k.kid, k.alg]), [[kid, 'ES256'], [idTokenKid, 'RS256']], 'the new keys first, default first');
      assert.ok(before.every((k) => after.some((a) => a.kid === k)), 'the previous keys stay published until they retire');
      assert.ok(before.includes(previousKid!));
      // A client chose ES256 above: a default of EdDSA would leave its ID tokens without a key.
      const stranded = await call('POST', '/tenants/acme/keys/rotate', { alg: 'EdDSA' });
      assert.equal(stranded.statusCode, 409);
      assert.equal(stranded.json().code, 'KEYS_ALG_IN_USE');
      // A new sign-in after the rotation is signed by the new RS256 key.
      const { idToken } = await signInWith({});
      assert.equal(decode(idToken).header.kid, idTokenKid);
    });

    it('gives a tenant from before the RS256 key one at its next key read, once, even when asked in parallel', async () => {
      await server.core.tenants.create('legacy', 'Legacy');
      // What an older database holds: the default key alone.
      await server.core.handle.db.deleteFrom('signing_keys').where('tenant_id', '=', 'legacy').where('alg', '=', 'RS256').execute();
      server.core.keys.invalidate('legacy');
      const sets = await Promise.all(Array.from({ length: 6 }, () => server.core.keys.keySet('legacy')));
      assert.deepEqual(Object.keys(sets[0]!.signing).sort(), ['ES256', 'RS256']);
      const active = (await server.core.keys.list('legacy')).filter((k) => k.status === 'active').map((k) => k.alg).sort();
      assert.deepEqual(active, ['ES256', 'RS256']);
    });

    it('a tenant whose default is RS256 has one key, and every client signs with it', async () => {
      await server.core.tenants.create('rsa', 'RSA');
      await server.core.keys.rotate('rsa', 'RS256');
      await server.core.feed.catchUp();
      const set = await server.core.keys.keySet('rsa');
      assert.deepEqual(Object.keys(set.signing), ['RS256']);
      const created = await call('POST', '/tenants/rsa/clients', { name: 'svc', grant_types: ['client_credentials'] });
      assert.equal(created.statusCode, 201);
      const issued = await fetch(`${server.url}/t/rsa/token`, {
        method: 'POST',
        headers: { authorization: basic(created.json().client_id, created.json().client_secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
      // The client has no API: refused for that, not for want of a key.
      assert.equal(((await issued.json()) as { error: string }).error, 'invalid_target');
    });
  });
}
