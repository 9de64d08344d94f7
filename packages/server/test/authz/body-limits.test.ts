import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BODY_LIMITS } from '../../src/authz/routes.js';
import { adminToken, dialects, startServer, type TestServer } from '../helpers.js';

const schema = `definition user {}

definition document {
  relation viewer: user
  permission view = viewer
}
`;

/** A valid schema of about `bytes` characters: the one above plus padding definitions, commented. */
function schemaOf(bytes: number): string {
  const lines = [schema];
  let length = schema.length;
  // Within the engine's schema limits (docs/authz.md: at most 2,000 definitions): about 1,200
  // definitions of 12 relations for 1 MB.
  for (let i = 0; length < bytes - 600; i++) {
    const relations = Array.from({ length: 12 }, (_, r) => `  relation member_${r}: user // padding for a realistic schema size\n`).join('');
    const line = `definition pad_${i} {\n${relations}}\n`;
    lines.push(line);
    length += line.length;
  }
  return lines.join('');
}

for (const dialect of dialects) {
  describe(`permission API body limits (${dialect})`, () => {
    let server: TestServer;
    let token: string;
    const post = (method: 'POST' | 'PUT', url: string, payload: unknown, bearer: string | null = token) =>
      server.inject({
        method,
        url: `/api/v1/tenants/default/authz${url}`,
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
        payload: JSON.stringify(payload),
      });

    before(async () => {
      server = await startServer({ dialect });
      token = await adminToken(server);
      assert.equal((await post('PUT', '/schema', { schema })).statusCode, 200);
    });
    after(() => server.close());

    it('writes 1,000 relationship updates in one call, a body over GATEHOUSE_BODY_LIMIT', async () => {
      const updates = Array.from({ length: 1000 }, (_, i) => ({ operation: 'touch', relationship: `document:doc-${i}-with-a-longer-identifier#viewer@user:user-${i}-with-a-longer-identifier` }));
      assert.ok(JSON.stringify({ updates }).length > server.config.bodyLimit);
      const response = await post('POST', '/relationships/write', { updates });
      assert.equal(response.statusCode, 200, response.body);
    });

    it('answers a bulk check of the documented 1,000 items', async () => {
      const items = Array.from({ length: 1000 }, (_, i) => ({ resource: `document:doc-${i}-with-a-longer-identifier`, permission: 'view', subject: `user:user-${i}-with-a-longer-identifier` }));
      assert.ok(JSON.stringify({ items }).length > server.config.bodyLimit);
      const response = await post('POST', '/check/bulk', { items });
      assert.equal(response.statusCode, 200, response.body);
      const { results } = response.json() as { results: { permissionship: string }[] };
      assert.equal(results.length, 1000);
      assert.ok(results.every((r) => r.permissionship === 'allowed'));
    });

    it('accepts a 1 MB schema', async () => {
      const big = schemaOf(990_000);
      assert.ok(big.length > 980_000 && big.length <= 1_000_000);
      const response = await post('PUT', '/schema', { schema: big });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(((await server.inject({ method: 'GET', url: '/api/v1/tenants/default/authz/schema', headers: { authorization: `Bearer ${token}` } })).json() as { schema: string }).schema.length, big.length);
    });

    it('keeps the small default everywhere else', async () => {
      const response = await post('POST', '/check', { resource: 'document:x', permission: 'view', subject: `user:${'u'.repeat(server.config.bodyLimit)}` });
      assert.equal(response.statusCode, 413);
      assert.equal(response.json().code, 'REQUEST_TOO_LARGE');
    });

    it('answers 401 to a large body without a token, on every large-body route', async () => {
      const items = Array.from({ length: 1000 }, (_, i) => ({ resource: `document:doc-${i}-with-a-longer-identifier`, permission: 'view', subject: `user:user-${i}` }));
      for (const [method, url, body] of [
        ['POST', '/check/bulk', { items }],
        ['PUT', '/schema', { schema: schemaOf(BODY_LIMITS.text / 4) }],
        ['POST', '/relationships/import', { relationships: 'x'.repeat(BODY_LIMITS.import - 100) }],
      ] as const) {
        const response = await post(method, url, body, null);
        assert.equal(response.statusCode, 401, url);
      }
    });

    it('still refuses a body over the endpoint\'s own limit', async () => {
      const response = await post('POST', '/check/bulk', { items: [{ resource: 'document:x', permission: 'view', subject: `user:${'u'.repeat(BODY_LIMITS.batch)}` }] });
      assert.equal(response.statusCode, 413);
    });
  });
}
