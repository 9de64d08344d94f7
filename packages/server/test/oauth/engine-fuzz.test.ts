import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basic, seedClient, startServer, type TestServer } from '../helpers.js';

// Issue 9 part 21: no request to the engine's routes, however malformed, is answered with a
// 500 or leaves a stack trace on stderr. Deterministic: a seeded generator, so a failure
// reproduces.
function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  return { pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!, chance: (p: number) => next() < p };
}

const ROUTES = [
  '/auth', '/auth/{uid}', '/token', '/jwks', '/me', '/session/end', '/session/end/confirm', '/session/end/success',
  '/device', '/device/auth', '/device/{uid}', '/device/{uid}/abort', '/request', '/reg', '/backchannel', '/challenge',
  '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/token/introspection', '/token/revocation',
  '/interaction/{uid}', '/interaction/{uid}/login', '/interaction/{uid}/consent', '/interaction/{uid}/abort', '/logo', '/',
];
const SEGMENTS = ['anything', 'x'.repeat(300), '%00', '%ff', '%E0%A4%A', '..', '.%2e', '%2F', 'ü', '{}', 'null', '-', '0'];
const KEYS = ['client_id', 'response_type', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'prompt', 'request', 'request_uri', 'grant_type', 'code', 'refresh_token', 'device_code', 'user_code', 'xsrf', 'confirm', 'abort', 'logout', 'token', 'token_type_hint', 'id_token_hint', 'post_logout_redirect_uri', 'resource', 'claims', 'max_age', 'ui_locales', 'login_hint', 'acr_values', 'response_mode', 'nonce', 'csrf', 'email', 'password', 'client_assertion', 'client_assertion_type', '__proto__', 'constructor'];
const VALUES = ['', 'x', 'code', 'openid', 'S256', 'none', 'client_credentials', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', '%', '%zz', '\u0000', '{"a":', '[]', 'a'.repeat(5000), 'https://evil.test/', 'javascript:alert(1)', 'eyJhbGciOiJub25lIn0.e30.', 'a.b.c', '-1', '1e309', 'ABCD-EFGH', 'true', '{"userinfo":{"sub":{"value":1}}}'];
const COOKIES = ['_session_default', '_session_default.sig', '_interaction_default', '_interaction_default.sig', '_interaction_resume_default', '_interaction_resume_default.sig', '_session', 'x'];

describe('the engine under malformed requests', () => {
  let server: TestServer;
  let client: Awaited<ReturnType<typeof seedClient>>;
  before(async () => {
    server = await startServer();
    client = await seedClient(server);
  });
  after(() => server.close());

  it('answers every one with a status below 500 and writes no stack trace to stderr', async () => {
    const random = generator(9021);
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      written.push(String(chunk));
      return write(chunk, ...rest);
    }) as typeof process.stderr.write;
    const failures: string[] = [];
    try {
      for (let n = 0; n < 1500; n++) {
        const route = random.pick(ROUTES).replace('{uid}', random.pick(SEGMENTS));
        const path = `/t/default${route}${random.chance(0.2) ? `/${random.pick(SEGMENTS)}` : ''}`;
        const query = new URLSearchParams();
        const form = new URLSearchParams();
        const count = Math.floor(random.chance(0.5) ? 1 + random.pick([0, 1, 2, 3, 5, 8]) : 0);
        for (let i = 0; i < count; i++) (random.chance(0.5) ? query : form).append(random.pick(KEYS), random.pick(VALUES));
        if (random.chance(0.1)) query.append('client_id', client.clientId);
        const method = random.pick(['GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH'] as const);
        const headers: Record<string, string> = { accept: random.pick(['text/html', 'application/json', '*/*', '']) };
        const kind = random.pick(['form', 'json', 'garbage', 'none'] as const);
        let payload: string | undefined;
        if (method !== 'GET' && method !== 'HEAD' && kind !== 'none') {
          headers['content-type'] = kind === 'form' ? 'application/x-www-form-urlencoded' : kind === 'json' ? 'application/json' : random.pick(['text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=utf-16']);
          payload = kind === 'form' ? form.toString() : kind === 'json' ? random.pick(['{', '[]', '{"a":1}', JSON.stringify(Object.fromEntries(form))]) : random.pick(['%%%', '\u0000\u0001', 'a=%', '--x\r\n']);
        }
        if (random.chance(0.5)) {
          headers.cookie = Array.from({ length: 1 + Math.floor(random.pick([0, 1, 2])) }, () => `${random.pick(COOKIES)}=${random.pick(['', 'abc', 'x'.repeat(64), '%ff', 'a.b'])}`).join('; ');
        }
        if (random.chance(0.2)) headers.authorization = random.pick([basic(client.clientId, client.clientSecret), basic(client.clientId, 'wrong'), 'Basic %%%', 'Bearer x', 'Basic ' + Buffer.from('::').toString('base64')]);
        const url = `${path}${query.size > 0 ? `?${query}` : ''}`;
        const response = await server.inject({ method, url, headers, payload });
        if (response.statusCode >= 500) failures.push(`${method} ${url} ${JSON.stringify(headers)} ${payload ?? ''} → ${response.statusCode} ${response.body.slice(0, 200)}`);
      }
    } finally {
      process.stderr.write = write;
    }
    assert.deepEqual(failures.slice(0, 10), []);
    assert.deepEqual(written.filter((line) => /\n\s+at /.test(line) || /Error/.test(line)), []);
  });

  it('answers a device link without a session with a page, not a 500 (the reported case)', async () => {
    for (const method of ['GET', 'POST'] as const) {
      const response = await server.inject({ method, url: '/t/default/device/anything', headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, payload: method === 'POST' ? 'xsrf=x' : undefined });
      assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${method}: ${response.statusCode}`);
    }
    const code = await server.inject({ method: 'POST', url: '/t/default/device', headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, payload: 'user_code=ABCD-EFGH' });
    assert.ok(code.statusCode >= 400 && code.statusCode < 500, String(code.statusCode));
  });
});
