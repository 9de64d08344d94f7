import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../../src/http/json-body.js';
import { adminToken, dialects, startServer, type TestServer } from '../helpers.js';

/** `{"relationships":[[[…]]]}`: valid JSON that nests `depth` arrays inside the object. */
const nested = (depth: number) => `{"relationships":${'['.repeat(depth)}${']'.repeat(depth)}}`;

for (const dialect of dialects) {
  describe(`admin API before authentication (${dialect})`, () => {
    let server: TestServer;
    let token: string;
    const post = (url: string, payload: string, bearer?: string) =>
      server.inject({ method: 'POST', url: `/api/v1${url}`, headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) }, payload });

    before(async () => {
      server = await startServer({ dialect });
      token = await adminToken(server);
    });
    after(() => server.close());

    it('answers 401, not 400, to an unauthenticated malformed body', async () => {
      const response = await post('/tenants', '{"id": ');
      assert.equal(response.statusCode, 401);
      assert.equal(response.json().code, 'ADMIN_UNAUTHENTICATED');
      // The same body with a token is the parser's 400: the order, not the parser, changed.
      assert.equal((await post('/tenants', '{"id": ', token)).json().code, 'REQUEST_MALFORMED');
    });

    it('answers 401, not 400, to an unauthenticated body that fails validation', async () => {
      const response = await post('/tenants', JSON.stringify({ id: 'x', unknown: true }));
      assert.equal(response.statusCode, 401);
    });

    it('answers 401, not 413, to an unauthenticated body over the limit', async () => {
      const response = await post('/tenants', JSON.stringify({ id: 'x'.repeat(200_000) }));
      assert.equal(response.statusCode, 401);
      assert.equal((await post('/tenants', JSON.stringify({ id: 'x'.repeat(200_000) }), token)).statusCode, 413);
    });

    it('refuses an unauthenticated 10 MB nested body without parsing it', async () => {
      const body = nested(5 * 1024 * 1024);
      assert.ok(body.length >= 10 * 1024 * 1024);
      // The import route accepts 16 MiB once authenticated, and this body is then the depth error…
      const authenticated = await post('/tenants/default/authz/relationships/import', body, token);
      assert.equal(authenticated.statusCode, 400);
      assert.equal(authenticated.json().code, 'REQUEST_TOO_DEEP');
      // …so a 401 without a token shows the parser never ran.
      const anonymous = await post('/tenants/default/authz/relationships/import', body);
      assert.equal(anonymous.statusCode, 401);
      assert.equal(anonymous.json().code, 'ADMIN_UNAUTHENTICATED');
      const forged = await post('/tenants/default/authz/relationships/import', body, 'a.b.c');
      assert.equal(forged.statusCode, 401);
    });

    it(`parses ${MAX_JSON_DEPTH} levels and refuses one more with REQUEST_TOO_DEEP`, async () => {
      // The object is one level: MAX_JSON_DEPTH - 1 arrays inside it reach the limit exactly.
      const atLimit = await post('/tenants/default/authz/relationships/import', nested(MAX_JSON_DEPTH - 1), token);
      assert.equal(atLimit.statusCode, 400);
      assert.equal(atLimit.json().code, 'REQUEST_INVALID');
      const over = await post('/tenants/default/authz/relationships/import', nested(MAX_JSON_DEPTH), token);
      assert.equal(over.statusCode, 400);
      assert.equal(over.json().code, 'REQUEST_TOO_DEEP');
      assert.equal(over.json().details.max, MAX_JSON_DEPTH);
    });

    it('still refuses prototype poisoning', async () => {
      const response = await post('/tenants', '{"id":"p","__proto__":{"x":1}}', token);
      assert.equal(response.statusCode, 400);
    });
  });
}

describe('admin API before authentication, on a listening server', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ listen: true });
  });
  after(() => server.close());

  it('answers parallel unauthenticated 10 MB nested bodies with 401 while /healthz answers', async () => {
    const body = nested(5 * 1024 * 1024);
    const anonymous = Array.from({ length: 4 }, () =>
      fetch(`${server.url}/api/v1/tenants/default/authz/relationships/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      }),
    );
    const health = fetch(`${server.url}/healthz`).then((r) => r.status);
    assert.deepEqual(await Promise.all(anonymous), [401, 401, 401, 401]);
    assert.equal(await health, 200);
  });
});

describe('JSON depth scan', () => {
  it('counts brackets outside strings only', () => {
    assert.equal(exceedsJsonDepth('[[[]]]', 3), false);
    assert.equal(exceedsJsonDepth('[[[[]]]]', 3), true);
    assert.equal(exceedsJsonDepth(`{"a":"${'['.repeat(100)}"}`, 1), false);
    assert.equal(exceedsJsonDepth(`{"a":"\\"${'['.repeat(10)}"}`, 1), false);
    assert.equal(exceedsJsonDepth(`{"a":"\\\\",${'['.repeat(3)}`, 3), true);
  });
});
