import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { dialects, seedClient, startServer, type TestServer } from '../helpers.js';

// A real relying-party library against a listening Gatehouse: discovery, client
// credentials, introspection (RFC 7662) and revocation (RFC 7009).
for (const dialect of dialects) {
  describe(`openid-client interop (${dialect})`, () => {
    let server: TestServer;
    let config: oidc.Configuration;
    let client: Awaited<ReturnType<typeof seedClient>>;

    before(async () => {
      server = await startServer({ dialect, listen: true });
      client = await seedClient(server, { scopes: ['read', 'write'], allowed: ['read', 'write'] });
      config = await oidc.discovery(new URL(`${server.url}/t/default`), client.clientId, client.clientSecret, oidc.ClientSecretBasic(client.clientSecret), {
        execute: [oidc.allowInsecureRequests],
      });
    });
    after(() => server.close());

    it('discovers the tenant issuer and its endpoints', () => {
      const metadata = config.serverMetadata();
      assert.equal(metadata.issuer, `${server.url}/t/default`);
      assert.equal(metadata.token_endpoint, `${server.url}/t/default/token`);
      assert.equal(metadata.jwks_uri, `${server.url}/t/default/jwks`);
      assert.ok(metadata.introspection_endpoint);
      assert.ok(metadata.revocation_endpoint);
      assert.deepEqual(metadata.response_types_supported, ['code']);
      assert.ok(!metadata.grant_types_supported?.includes('password'));
      assert.ok(!metadata.grant_types_supported?.includes('implicit'));
    });

    it('gets a token, introspects it as active, revokes it, then introspects it as inactive', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: client.identifier });
      assert.equal(tokens.token_type, 'bearer');
      assert.equal(tokens.scope, 'read');

      const active = await oidc.tokenIntrospection(config, tokens.access_token);
      assert.equal(active.active, true);
      assert.equal(active.client_id, client.clientId);
      assert.equal(active.sub, client.clientId);
      assert.equal(active.scope, 'read');
      assert.equal(active.aud, client.identifier);
      assert.equal(active.iss, `${server.url}/t/default`);
      assert.equal(active.token_type, 'Bearer');

      await oidc.tokenRevocation(config, tokens.access_token);
      const revoked = await oidc.tokenIntrospection(config, tokens.access_token);
      assert.equal(revoked.active, false);
      assert.deepEqual(Object.keys(revoked), ['active']);
    });

    it('introspects a garbage token as inactive and refuses introspection without client credentials', async () => {
      assert.equal((await oidc.tokenIntrospection(config, 'not-a-token')).active, false);
      assert.equal((await oidc.tokenIntrospection(config, 'eyJhbGciOiJFUzI1NiJ9.e30.AAAA')).active, false);
      const response = await fetch(`${server.url}/t/default/token/introspection`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=eyJhbGciOiJFUzI1NiJ9.e30.AAAA',
      });
      assert.equal(response.status, 401);
      assert.equal(((await response.json()) as { error: string }).error, 'invalid_client');
    });

    it('does not let one client revoke another client\'s token', async () => {
      const mine = await oidc.clientCredentialsGrant(config, { resource: client.identifier });
      const other = await seedClient(server);
      const otherConfig = new oidc.Configuration(config.serverMetadata(), other.clientId, other.clientSecret, oidc.ClientSecretBasic(other.clientSecret));
      oidc.allowInsecureRequests(otherConfig);
      await oidc.tokenRevocation(otherConfig, mine.access_token);
      assert.equal((await oidc.tokenIntrospection(config, mine.access_token)).active, true);
    });

    it('surfaces invalid_client and invalid_scope as OAuth errors', async () => {
      const wrong = new oidc.Configuration(config.serverMetadata(), client.clientId, 'wrong', oidc.ClientSecretBasic('wrong'));
      oidc.allowInsecureRequests(wrong);
      await assert.rejects(oidc.clientCredentialsGrant(wrong, {}), (error: oidc.WWWAuthenticateChallengeError) => {
        // RFC 6749 §5.2: 401 with a challenge for a client that tried HTTP Basic.
        return error.status === 401 && error.cause[0]?.scheme === 'basic';
      });
      await assert.rejects(oidc.clientCredentialsGrant(config, { scope: 'delete' }), (error: oidc.ResponseBodyError) => error.error === 'invalid_scope');
    });
  });
}
