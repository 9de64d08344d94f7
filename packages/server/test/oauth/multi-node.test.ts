import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basic, dialects, seedClient, startServer, tokenRequest, type TestServer } from '../helpers.js';

// Two nodes on one database whose GATEHOUSE_PUBLIC_URL differ (a misconfiguration, or a
// node reached under another name): what one issues, the other must still be able to revoke.
for (const dialect of dialects) {
  describe(`two nodes with different public URLs (${dialect})`, () => {
    let a: TestServer;
    let b: TestServer;
    let client: Awaited<ReturnType<typeof seedClient>>;
    const form = (server: TestServer, endpoint: 'introspection' | 'revocation', token: string) =>
      server.inject({
        method: 'POST',
        url: `/t/default/token/${endpoint}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
        payload: new URLSearchParams({ token }).toString(),
      });
    const issueAt = async (server: TestServer) => (await tokenRequest(server, { grant_type: 'client_credentials' }, { authorization: basic(client.clientId, client.clientSecret) })).json.access_token!;

    before(async () => {
      a = await startServer({ dialect });
      b = await startServer({ dialect, sameDatabaseAs: a, env: { GATEHOUSE_PUBLIC_URL: 'http://node-b.internal:4455' } });
      client = await seedClient(a);
      await b.core.feed.catchUp();
    });
    after(async () => {
      await b.close();
      await a.close();
    });

    it('revokes at one node a token the other issued: the tenant and the jti decide, not the URL', async () => {
      const token = await issueAt(a);
      assert.equal((await form(a, 'introspection', token)).json().active, true);
      assert.equal((await form(b, 'revocation', token)).statusCode, 200);
      await a.core.feed.catchUp();
      assert.equal((await form(a, 'introspection', token)).json().active, false);
      await a.core.audit.flush();
      await b.core.audit.flush();
      const revoked = await a.core.repos.audit.query({ tenantId: 'default', action: 'token.revoked', limit: 5 });
      assert.equal(revoked.length, 1);
    });

    it('still introspects a token of another public URL as inactive (its issuer is not this node\'s)', async () => {
      const token = await issueAt(a);
      assert.equal((await form(b, 'introspection', token)).json().active, false);
      assert.equal((await form(a, 'introspection', token)).json().active, true);
    });

    it('does not revoke a token of another tenant presented at this one', async () => {
      await a.core.tenants.create('other');
      const other = await seedClient(a, { tenant: 'other' });
      const token = (await tokenRequest(a, { grant_type: 'client_credentials' }, { tenant: 'other', authorization: basic(other.clientId, other.clientSecret) })).json.access_token!;
      assert.equal((await form(b, 'revocation', token)).statusCode, 200);
      const introspected = await a.inject({
        method: 'POST',
        url: '/t/other/token/introspection',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(other.clientId, other.clientSecret) },
        payload: new URLSearchParams({ token }).toString(),
      });
      assert.equal(introspected.json().active, true);
    });

    it('names the other public URL when a node starts on a database another URL served', async () => {
      assert.deepEqual(await a.core.announcePublicUrl(), []);
      assert.deepEqual(await b.core.announcePublicUrl(), [a.config.publicUrl]);
      assert.deepEqual(await a.core.announcePublicUrl(), ['http://node-b.internal:4455']);
    });
  });
}
