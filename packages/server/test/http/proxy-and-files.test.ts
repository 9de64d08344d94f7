import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { clientAddress, parseTrustProxy, trustFunction } from '../../src/http/client-ip.js';
import { resolveMasterKey } from '../../src/keys/index.js';
import { openDatabase } from '../../src/store/database.js';
import { basic, startServer, type TestServer } from '../helpers.js';

const fail = (problem: string): never => {
  throw new Error(problem);
};

describe('client address behind proxies (GATEHOUSE_TRUST_PROXY)', () => {
  const xff = '6.6.6.6, 198.51.100.7, 203.0.113.9';

  it('believes no header when proxies are not trusted', () => {
    assert.equal(clientAddress('192.0.2.1', xff, trustFunction(false)), '192.0.2.1');
  });

  it('takes one entry per trusted hop from the right, never the client-chosen leftmost', () => {
    assert.equal(clientAddress('10.0.0.2', xff, trustFunction({ hops: 1 })), '203.0.113.9');
    assert.equal(clientAddress('10.0.0.2', xff, trustFunction({ hops: 2 })), '198.51.100.7');
    assert.equal(clientAddress('10.0.0.2', xff, trustFunction(parseTrustProxy('true', fail))), '203.0.113.9');
  });

  it('walks past listed proxies only', () => {
    const trust = trustFunction(parseTrustProxy('10.0.0.0/8, 198.51.100.7', fail));
    // The appending proxy 10.0.0.2 added 203.0.113.9; that is not a proxy of ours, so it is the client.
    assert.equal(clientAddress('10.0.0.2', xff, trust), '203.0.113.9');
    assert.equal(clientAddress('10.0.0.2', '6.6.6.6, 203.0.113.9, 198.51.100.7', trust), '203.0.113.9');
    assert.equal(clientAddress('::ffff:10.1.2.3', '203.0.113.9', trust), '203.0.113.9');
    // A direct connection from outside is not a proxy: its header is ignored.
    assert.equal(clientAddress('192.0.2.1', xff, trust), '192.0.2.1');
    // Garbage in the chain stops the walk at the last address we can vouch for.
    assert.equal(clientAddress('10.0.0.2', 'not-an-ip', trust), '10.0.0.2');
  });

  it('refuses values that are not hops or addresses', () => {
    for (const raw of ['maybe', '10.0.0.0/33', '10.0.0.1/8/2', 'fe80::/129', '999', 'example.com']) {
      assert.throws(() => parseTrustProxy(raw, fail), Error, raw);
    }
  });

  describe('on the server, Fastify routes and the OAuth engine agree', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer({ env: { GATEHOUSE_TRUST_PROXY: '1' } });
    });
    after(() => server.close());

    it('records the nearest proxy\'s view of the client in the audit trail', async () => {
      const headers = { 'x-forwarded-for': '6.6.6.6, 203.0.113.9', authorization: basic(server.admin.clientId, 'wrong-secret'), 'content-type': 'application/x-www-form-urlencoded' };
      const token = await server.inject({ method: 'POST', url: '/t/default/token', headers, payload: 'grant_type=client_credentials&resource=urn:gatehouse:admin' });
      assert.equal(token.statusCode, 401);
      const admin = await server.inject({ method: 'GET', url: '/api/v1/tenants', headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.10', authorization: 'Bearer nope' } });
      assert.equal(admin.statusCode, 401);
      await server.core.audit.flush();
      const engine = await server.core.repos.audit.query({ tenantId: 'default', action: 'client.authentication_failed', limit: 10 });
      assert.deepEqual(engine.map((e) => e.ip), ['203.0.113.9']);
      const fastify = await server.core.repos.audit.query({ tenantId: 'default', action: 'admin.authentication_failed', limit: 10 });
      assert.deepEqual(fastify.map((e) => e.ip), ['203.0.113.10']);
    });
  });
});

describe('HSTS', () => {
  it('is sent on every path when the public URL is https, and not over http', async () => {
    const https = await startServer({ env: { GATEHOUSE_PUBLIC_URL: 'https://id.example.test' } });
    const http = await startServer();
    try {
      for (const url of ['/healthz', '/t/default/.well-known/openid-configuration', '/api/v1/tenants']) {
        assert.equal((await https.inject({ method: 'GET', url })).headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', url);
        assert.equal((await http.inject({ method: 'GET', url })).headers['strict-transport-security'], undefined, url);
      }
    } finally {
      await https.close();
      await http.close();
    }
  });
});

describe('the data directory is private to the server user', () => {
  const mode = (path: string) => statSync(path).mode & 0o777;
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'gatehouse-perm-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('creates the directory 0700 and the database, WAL and master key 0600 whatever the umask', async () => {
    const dataDir = join(root, 'fresh');
    const previous = process.umask(0o000);
    try {
      const handle = await openDatabase({ dataDir });
      await handle.db.selectFrom('gh_revision').select('value').execute();
      resolveMasterKey(undefined, dataDir, false);
      assert.equal(mode(dataDir), 0o700);
      for (const file of ['gatehouse.db', 'gatehouse.db-wal', 'gatehouse.db-shm', 'master.key']) assert.equal(mode(join(dataDir, file)), 0o600, file);
      await handle.close();
    } finally {
      process.umask(previous);
    }
  });

  it('narrows a database an older version left readable', async () => {
    const dataDir = join(root, 'old');
    const first = await openDatabase({ dataDir });
    await first.close();
    chmodSync(join(dataDir, 'gatehouse.db'), 0o644);
    const again = await openDatabase({ dataDir });
    assert.equal(mode(join(dataDir, 'gatehouse.db')), 0o600);
    await again.close();
  });

  it('refuses to use or generate a key file in production', () => {
    const dataDir = join(root, 'prod');
    assert.throws(() => resolveMasterKey(undefined, dataDir, true), /GATEHOUSE_MASTER_KEY/);
    resolveMasterKey(undefined, dataDir, false);
    assert.throws(() => resolveMasterKey(undefined, dataDir, true), /GATEHOUSE_MASTER_KEY/);
  });
});
