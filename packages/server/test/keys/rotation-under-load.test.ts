import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basic, decode, dialects, seedClient, startServer, type TestServer } from '../helpers.js';

// Issue 9 part 7: a rotation fails no request on any node. Two nodes on one database, token
// requests and cross-node introspections in flight over real sockets while keys rotate.
for (const dialect of dialects) {
  describe(`key rotation under load, two nodes (${dialect})`, () => {
    let a: TestServer;
    let b: TestServer;
    let client: Awaited<ReturnType<typeof seedClient>>;
    const base = (server: TestServer) => `http://127.0.0.1:${server.config.port}`;
    const post = (server: TestServer, path: string, form: Record<string, string>) =>
      fetch(`${base(server)}/t/default${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
        body: new URLSearchParams(form),
      });

    before(async () => {
      a = await startServer({ dialect, listen: true });
      // The same public URL (one issuer), another port: a second node behind a load balancer.
      b = await startServer({ dialect, listen: true, sameDatabaseAs: a, env: { GATEHOUSE_PUBLIC_URL: a.config.publicUrl } });
      client = await seedClient(a);
      await b.core.feed.catchUp();
    });
    after(async () => {
      await b.close();
      await a.close();
    });

    it('answers every token request and every introspection while keys rotate on either node', async () => {
      const failures: string[] = [];
      const kids = new Set<string>();
      let running = true;
      let requests = 0;
      const worker = async (i: number) => {
        for (let n = 0; running; n++) {
          const [issuer, other] = (i + n) % 2 === 0 ? [a, b] : [b, a];
          const issued = await post(issuer, '/token', { grant_type: 'client_credentials' });
          requests++;
          const body = (await issued.json()) as { access_token?: string; error?: string };
          if (issued.status !== 200 || !body.access_token) {
            failures.push(`token ${issued.status} ${JSON.stringify(body)}`);
            continue;
          }
          kids.add(decode(body.access_token).header.kid);
          // The other node has perhaps not heard of the key yet: it must still know the token.
          const introspected = await post(other, '/token/introspection', { token: body.access_token });
          const answer = (await introspected.json()) as { active?: boolean };
          if (introspected.status !== 200 || answer.active !== true) failures.push(`introspection ${introspected.status} ${JSON.stringify(answer)}`);
        }
      };
      // Both engines built before the load starts (the first request of a node builds its engine).
      for (const server of [a, b]) assert.equal((await post(server, '/token', { grant_type: 'client_credentials' })).status, 200);
      const progress = async (count: number) => {
        while (requests < count) await new Promise((resolve) => setTimeout(resolve, 10));
      };
      const workers = Array.from({ length: 8 }, (_, i) => worker(i));
      for (let r = 0; r < 4; r++) {
        await progress(requests + 16);
        await (r % 2 === 0 ? a : b).core.keys.rotate('default');
      }
      // Long enough after the last rotation for both nodes' change feeds to have followed it.
      await progress(requests + 16);
      await new Promise((resolve) => setTimeout(resolve, 300));
      running = false;
      await Promise.all(workers);
      assert.deepEqual(failures.slice(0, 5), []);
      // The load did span the rotations: tokens were signed by several keys.
      assert.ok(kids.size >= 3, `tokens were signed by ${kids.size} keys`);
    });
  });
}

describe('a token endpoint 500', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('is audited and counted', async () => {
    const client = await seedClient(server);
    // A store that fails under the engine: the tenant's keys are unreadable when its engine is built.
    await server.core.handle.db.schema.alterTable('signing_keys').renameTo('signing_keys_gone').execute();
    server.core.keys.invalidate('default');
    server.core.pool.invalidate('default');
    const response = await server.inject({
      method: 'POST',
      url: '/t/default/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
      payload: 'grant_type=client_credentials',
    });
    await server.core.handle.db.schema.alterTable('signing_keys_gone').renameTo('signing_keys').execute();
    assert.equal(response.statusCode, 500);
    assert.equal(response.json().error, 'server_error');
    await server.core.audit.flush();
    const denied = await server.core.repos.audit.query({ tenantId: 'default', action: 'token.denied', limit: 5 });
    assert.equal(denied.length, 1);
    assert.equal(denied[0]!.details?.error, 'server_error');
    const metrics = await server.core.metrics.registry.getSingleMetricAsString('gatehouse_token_errors_total');
    assert.match(metrics, /gatehouse_token_errors_total\{error="server_error"\} 1/);
  });
});
