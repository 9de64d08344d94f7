import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers.js';
import { Agent, signInDriver, verifierPair } from './browserless.js';

const PASSWORD = 'a long and unusual passphrase';
const REDIRECT = 'https://portal.test/callback';

// Issue 9 part 13: one browser signed in to two tenants keeps both sign-ins.
describe('sign-in sessions per tenant', () => {
  let server: TestServer;
  const drivers: Record<string, ReturnType<typeof signInDriver>> = {};
  const signedIn = async (agent: Agent, tenant: string) => {
    const { challenge } = verifierPair();
    const step = await agent.follow(drivers[tenant]!.authorizeUrl({ prompt: 'none', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }));
    return step.callback?.searchParams.has('code') ?? false;
  };

  before(async () => {
    server = await startServer({ listen: true });
    for (const tenant of ['acme', 'beta']) {
      await server.core.tenants.create(tenant);
      await server.core.users.create(tenant, { email: `ann@${tenant}.test`, password: PASSWORD });
      const { client, clientSecret } = await server.core.catalog.createClient(tenant, { name: 'Portal', grantTypes: ['authorization_code'], redirectUris: [REDIRECT], firstParty: true });
      drivers[tenant] = signInDriver({ origin: server.url, tenant, clientId: client.clientId, clientSecret: clientSecret!, redirectUri: REDIRECT, email: `ann@${tenant}.test`, password: PASSWORD });
    }
  });
  after(() => server.close());

  it('signing in to beta leaves the browser signed in to acme, and each tenant sees only its own session cookie', async () => {
    const agent = new Agent(server.url);
    const { challenge } = verifierPair();
    await drivers.acme!.signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256' });
    assert.equal(await signedIn(agent, 'acme'), true);
    assert.equal(await signedIn(agent, 'beta'), false);
    await drivers.beta!.signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256' });
    assert.deepEqual([await signedIn(agent, 'acme'), await signedIn(agent, 'beta')], [true, true]);
  });

  it('sends the session cookie only under its tenant\'s path', async () => {
    const agent = new Agent(server.url);
    const { challenge } = verifierPair();
    let cookies: string[] = [];
    const original = agent.request.bind(agent);
    agent.request = async (url, init) => {
      const response = await original(url, init);
      cookies.push(...response.headers.getSetCookie());
      return response;
    };
    cookies = [];
    await drivers.beta!.signIn(agent, { code_challenge: challenge, code_challenge_method: 'S256' });
    const session = cookies.filter((c) => c.startsWith('_session'));
    assert.ok(session.length > 0);
    for (const cookie of session) {
      assert.match(cookie, /^_session_beta(\.sig)?=/);
      assert.match(cookie, /; path=\/t\/beta(;|$)/);
    }
  });
});
