import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { ADMIN_API, TENANT_API } from '../../src/core.js';
import { basic, startServer, tokenRequest, type TestServer } from '../helpers.js';

type Operation = { operationId?: string; summary?: string; security?: Record<string, string[]>[] };
type Document = { paths: Record<string, Record<string, Operation>> };

// The admin API's description against a real OpenAPI validator, and against the guard: for
// every operation, the scopes the document names are exactly the scopes a token needs.
describe('the admin API describes itself', () => {
  let server: TestServer;
  let doc: Document;
  /** A token of `tenant` for its built-in API, with one scope only. */
  const tokens = new Map<string, string>();

  async function tokenWith(tenant: string, api: string, scope: string): Promise<string> {
    const { client, clientSecret } = await server.core.catalog.createClient(tenant, { name: `only ${scope}`, grantTypes: ['client_credentials'], apis: { [api]: [scope] } });
    const issued = await tokenRequest(server, { grant_type: 'client_credentials', resource: api }, { tenant, authorization: basic(client.clientId, clientSecret!) });
    assert.ok(issued.json.access_token, JSON.stringify(issued.json));
    return issued.json.access_token;
  }

  before(async () => {
    server = await startServer();
    await server.core.tenants.create('acme', 'Acme');
    for (const scope of ADMIN_API.scopes) tokens.set(`gatehouseAdmin ${scope}`, await tokenWith('default', ADMIN_API.identifier, scope));
    for (const scope of TENANT_API.scopes) tokens.set(`gatehouseTenant ${scope}`, await tokenWith('acme', TENANT_API.identifier, scope));
    doc = (await server.inject({ url: '/api/v1/openapi.json' })).json() as Document;
  });
  after(() => server.close());

  it('is a valid OpenAPI document, every operation with its own id and security requirement', async () => {
    const result = await new Validator().validate(doc as unknown as Parameters<Validator['validate']>[0]);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    const operations = Object.values(doc.paths).flatMap((methods) => Object.values(methods));
    assert.ok(operations.length > 40, `${operations.length} operations`);
    const ids = operations.map((o) => o.operationId);
    assert.ok(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)), JSON.stringify(ids));
    assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
    assert.ok(operations.every((o) => Array.isArray(o.security) && o.security.length > 0), 'no operation inherits a global requirement');
    assert.deepEqual(operations.filter((o) => !o.summary || o.summary.length > 60).map((o) => o.operationId), [], 'a one-line summary each');
    // Typed answers: a success and the error bodies (401 and 403 at least: every operation is guarded).
    const untyped = operations.filter((o) => {
      const responses = (o as { responses?: Record<string, unknown> }).responses ?? {};
      return !Object.keys(responses).some((code) => code.startsWith('2')) || !responses['401'] || !responses['403'];
    });
    assert.deepEqual(untyped.map((o) => o.operationId), []);
  });

  it('gives the create bodies examples that the API itself accepts', async () => {
    type Media = { example?: Record<string, unknown>; examples?: Record<string, { value: Record<string, unknown> }> };
    type WithBody = Operation & { requestBody?: { content: Record<string, Media> } };
    // The request body's media type carries one `example`, or named `examples` when there are several.
    const create = (path: string) => {
      const media = (doc.paths[path]!.post as WithBody).requestBody!.content['application/json']!;
      return media.example ? [media.example] : Object.values(media.examples ?? {}).map((e) => e.value);
    };
    const admin = tokens.get('gatehouseAdmin admin')!;
    const post = (url: string, body: unknown) => server.inject({ method: 'POST', url, headers: { authorization: `Bearer ${admin}` }, payload: body as Record<string, unknown> });
    const [tenant] = create('/api/v1/tenants');
    assert.equal((await post('/api/v1/tenants', tenant)).statusCode, 201);
    const id = (tenant as { id: string }).id;
    for (const [path, examples] of [['apis', create('/api/v1/tenants/{tenant}/apis')], ['clients', create('/api/v1/tenants/{tenant}/clients')], ['users', create('/api/v1/tenants/{tenant}/users')]] as const) {
      assert.ok(examples.length > 0, path);
      for (const example of examples) {
        const answer = await post(`/api/v1/tenants/${id}/${path}`, example);
        assert.equal(answer.statusCode, 201, `${path}: ${answer.body}`);
      }
    }
  });

  it('names exactly the scopes the guard lets through, operation by operation', async () => {
    const mismatches: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      const url = path.replace('{tenant}', 'acme').replace(/\{[^}]+\}/g, 'x');
      for (const [method, operation] of Object.entries(methods)) {
        if (method === 'head') continue;
        const documented = new Set((operation.security ?? []).flatMap((requirement) => Object.entries(requirement).map(([scheme, [scope]]) => `${scheme} ${scope}`)));
        for (const [holder, token] of tokens) {
          const response = await server.inject({
            method: method.toUpperCase() as 'GET',
            url,
            headers: { authorization: `Bearer ${token}`, ...(method === 'get' || method === 'delete' ? {} : { 'content-type': 'application/json' }) },
            ...(method === 'get' || method === 'delete' ? {} : { payload: '{}' }),
          });
          // The guard's refusal is a 403 with an insufficient_scope challenge; anything else got past it.
          const refused = response.statusCode === 403 && /insufficient_scope/.test(String(response.headers['www-authenticate'] ?? ''));
          if (refused === documented.has(holder)) mismatches.push(`${method.toUpperCase()} ${path}: ${holder} is ${refused ? 'refused' : 'let through'} but the document says ${documented.has(holder) ? 'allowed' : 'not'}`);
        }
      }
    }
    assert.deepEqual(mismatches, []);
  });
});
