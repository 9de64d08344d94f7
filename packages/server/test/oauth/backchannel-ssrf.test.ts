import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers.js';

const REDIRECT = 'https://portal.test/callback';

// Issue 9 part 17: with private outbound off, a back-channel logout never opens a TCP (or TLS)
// connection to a private or loopback address, and such URIs are refused at registration.
describe('back-channel logout stays off private networks', () => {
  let server: TestServer;
  let listener: Server;
  let connections = 0;
  let port: number;
  // A name other than localhost that this machine's hosts file points at loopback: it reaches
  // the connection through a DNS lookup, not through the literal-address or local-name checks.
  const loopbackName = readFileSync('/etc/hosts', 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim().split(/\s+/))
    .filter(([address]) => address?.startsWith('127.'))
    .flatMap(([, ...names]) => names)
    .find((name) => name && !/localhost/i.test(name));

  before(async () => {
    listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as AddressInfo).port;
    server = await startServer();
  });
  after(async () => {
    await server.close();
    await new Promise((resolve) => listener.close(resolve));
  });

  it('refuses private, loopback and local back-channel logout URIs at registration, with a clear error', async () => {
    for (const uri of [`http://127.0.0.1:${port}/bc`, 'https://127.0.0.1/bc', 'https://[::1]/bc', 'https://10.1.2.3/bc', 'https://192.168.0.10/bc', 'https://169.254.169.254/latest', 'https://localhost/bc', 'https://app.localhost/bc', 'https://localhost./bc', 'https://[::ffff:127.0.0.1]/bc']) {
      await assert.rejects(
        server.core.catalog.createClient('default', { name: 'rp', grantTypes: ['authorization_code'], redirectUris: [REDIRECT], backchannelLogoutUri: uri }),
        (error: { code?: string; message?: string }) => error.code === 'OAUTH_REDIRECT_URI_INVALID' && /private networks/.test(error.message ?? ''),
        uri,
      );
    }
    const ok = await server.core.catalog.createClient('default', { name: 'rp', grantTypes: ['authorization_code'], redirectUris: [REDIRECT], backchannelLogoutUri: 'https://rp.example.com/bc' });
    assert.equal(ok.client.backchannelLogoutUri, 'https://rp.example.com/bc');
  });

  it('opens no connection to a local listener, by literal address or by a name that resolves to it', async () => {
    assert.ok(loopbackName, 'the hosts file names no loopback host besides localhost');
    const { provider } = await server.core.pool.get('default');
    for (const uri of [`http://127.0.0.1:${port}/bc`, `http://${loopbackName}:${port}/bc`, `http://[::ffff:127.0.0.1]:${port}/bc`]) {
      // A client row from before the rule (or written around it): the connection is still refused.
      const { client } = await server.core.catalog.createClient('default', { name: 'rp', grantTypes: ['authorization_code'], redirectUris: [REDIRECT], backchannelLogoutUri: 'https://rp.example.com/bc' });
      await server.core.repos.oauth.updateClient({ ...client, backchannelLogoutUri: uri });
      server.core.catalog.invalidate('default');
      const engineClient = await provider.Client.find(client.clientId);
      assert.equal(engineClient?.backchannelLogoutUri, uri);
      await assert.rejects((engineClient as unknown as { backchannelLogout(sub: string, sid: string): Promise<void> }).backchannelLogout('user-1', 'sid-1'), uri);
    }
    assert.equal(connections, 0);
  });
});
