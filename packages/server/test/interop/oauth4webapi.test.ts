import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { seedClient, startServer, type TestServer } from '../helpers.js';

// oauth4webapi (panva), with its defaults. The one setting changed is allowInsecureRequests:
// the test server is plain HTTP on loopback, and the library refuses http: URLs otherwise
// (RFC 8414 §3 and RFC 6749 §3.1 require TLS in production, which is right).
describe('interop: oauth4webapi', () => {
  let server: TestServer;
  let issuer: URL;

  before(async () => {
    server = await startServer({ listen: true });
    await server.core.tenants.create('acme', 'Acme');
    issuer = new URL(`${server.url}/t/acme`);
  });
  after(() => server.close());

  const discover = async (algorithm: 'oidc' | 'oauth2', at = issuer) =>
    oauth.processDiscoveryResponse(at, await oauth.discoveryRequest(at, { algorithm, [oauth.allowInsecureRequests]: true }));

  it('discovers the tenant both ways: OpenID Connect and RFC 8414 (path inserted after the host, §3.1)', async () => {
    const oidc = await discover('oidc');
    const rfc8414 = await discover('oauth2');
    assert.equal(oidc.issuer, issuer.href);
    assert.equal(rfc8414.issuer, issuer.href);
    assert.equal(rfc8414.token_endpoint, oidc.token_endpoint);
    assert.deepEqual(rfc8414.code_challenge_methods_supported, ['S256']);
  });

  it('serves the metadata at every place a client looks, and nothing for an unknown tenant', async () => {
    const paths = ['/.well-known/oauth-authorization-server/t/acme', '/.well-known/openid-configuration/t/acme', '/t/acme/.well-known/oauth-authorization-server', '/t/acme/.well-known/openid-configuration'];
    for (const path of paths) {
      const response = await fetch(`${server.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.equal(((await response.json()) as { issuer: string }).issuer, issuer.href, path);
    }
    for (const path of ['/.well-known/oauth-authorization-server/t/nobody', '/.well-known/openid-configuration/t/nobody', '/.well-known/oauth-authorization-server', '/.well-known/oauth-authorization-server/t/acme/extra']) {
      const response = await fetch(`${server.url}${path}`);
      await response.arrayBuffer();
      assert.equal(response.status, 404, path);
    }
    // Each location answers for its own tenant: another tenant's metadata does not pass the client's issuer check.
    await assert.rejects(oauth.processDiscoveryResponse(issuer, await fetch(`${server.url}/.well-known/oauth-authorization-server/t/default`)), /issuer/);
  });

  it('gets a client-credentials token and validates it as a resource server would (RFC 9068)', async () => {
    const { clientId, clientSecret, identifier } = await seedClient(server, { tenant: 'acme', identifier: 'https://api.acme.test', scopes: ['read'], allowed: ['read'] });
    const as = await discover('oauth2');
    const client: oauth.Client = { client_id: clientId };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(clientSecret), new URLSearchParams({ resource: identifier }), { [oauth.allowInsecureRequests]: true });
    const tokens = await oauth.processClientCredentialsResponse(as, client, response);
    assert.equal(tokens.token_type, 'bearer');
    const claims = await oauth.validateJwtAccessToken(as, new Request(identifier, { headers: { authorization: `Bearer ${tokens.access_token}` } }), identifier, { [oauth.allowInsecureRequests]: true });
    assert.equal(claims.client_id, clientId);
    assert.equal(claims.iss, issuer.href);
  });
});
