import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import inject, { type InjectOptions, type Response as InjectResponse } from 'light-my-request';
import pg from 'pg';
import pino, { type Logger } from 'pino';
import { loadConfig, type Config } from '../src/config/defaults.js';
import { createCore, type Core } from '../src/core.js';
import { createApp } from '../src/http/app.js';

export type DialectName = 'sqlite' | 'postgres';

/** SQLite always; PostgreSQL too when GATEHOUSE_TEST_DATABASE_URL is set (CI sets it). */
export const dialects: DialectName[] = process.env.GATEHOUSE_TEST_DATABASE_URL ? ['sqlite', 'postgres'] : ['sqlite'];

/** A fresh, empty PostgreSQL database for one suite; dropped by the returned cleanup. */
export async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.GATEHOUSE_TEST_DATABASE_URL;
  if (!base) throw new Error('GATEHOUSE_TEST_DATABASE_URL is not set');
  const name = `gh_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** A controllable clock: tests move time instead of sleeping. */
export function testClock(start = Date.parse('2026-11-22T10:00:00Z')) {
  let now = start;
  const clock = () => now;
  clock.advance = (ms: number) => {
    now += ms;
  };
  clock.set = (ms: number) => {
    now = ms;
  };
  return clock;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface TestServerOptions {
  dialect?: DialectName;
  clock?: ReturnType<typeof testClock>;
  /** Listen on a real port (interop tests); otherwise use inject(). */
  listen?: boolean;
  env?: Record<string, string>;
  /** A second node on the first one's database (and data directory, so the same master key). */
  sameDatabaseAs?: TestServer;
  /** Where the server logs (default: nowhere). */
  logger?: Logger;
}

export interface TestServer {
  core: Core;
  app: Awaited<ReturnType<typeof createApp>>;
  config: Config;
  /** Base URL when listening, else the configured public URL. */
  url: string;
  admin: { clientId: string; clientSecret: string };
  /** In-process request through the server's real dispatch (engine handler, then Fastify). */
  inject(options: InjectOptions): Promise<InjectResponse>;
  close(): Promise<void>;
}

/** A whole Gatehouse (storage, engine, HTTP) on a throwaway database. */
export async function startServer(options: TestServerOptions = {}): Promise<TestServer> {
  const shared = options.sameDatabaseAs;
  const dataDir = shared ? shared.config.dataDir : mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const pgdb = options.dialect === 'postgres' && !shared ? await freshPostgres() : undefined;
  const port = options.listen ? await freePort() : 4455;
  const config = loadConfig({
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_PORT: String(port),
    GATEHOUSE_PUBLIC_URL: `http://127.0.0.1:${port}`,
    GATEHOUSE_LOG_LEVEL: 'silent',
    GATEHOUSE_AUDIT_FLUSH_MS: '20',
    GATEHOUSE_CHANGE_POLL_MS: '100',
    ...(pgdb ? { DATABASE_URL: pgdb.url } : {}),
    ...(shared?.config.databaseUrl ? { DATABASE_URL: shared.config.databaseUrl } : {}),
    ...options.env,
  });
  const core = await createCore(config, { logger: options.logger ?? pino({ level: 'silent' }), clock: options.clock });
  await core.ensureDefaults();
  const admin = shared ? shared.admin : (await core.bootstrapAdminClient())!;
  const app = await createApp(core);
  if (options.listen) await app.listen({ port, host: '127.0.0.1' });
  return {
    core,
    app,
    config,
    url: config.publicUrl,
    admin,
    inject: async (opts) => {
      await app.ready();
      return inject(app.dispatch, opts);
    },
    async close() {
      await app.close();
      await core.close();
      await pgdb?.drop();
      if (!shared) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** POSTs a form to the tenant's token endpoint through inject(). */
export async function tokenRequest(server: TestServer, form: Record<string, string>, init: { tenant?: string; authorization?: string } = {}) {
  const response = await server.inject({
    method: 'POST',
    url: `/t/${init.tenant ?? 'default'}/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(init.authorization ? { authorization: init.authorization } : {}) },
    payload: new URLSearchParams(form).toString(),
  });
  return { status: response.statusCode, headers: response.headers, json: response.json() as Record<string, unknown> & { access_token?: string } };
}

/** An admin API token from the bootstrap client. */
export async function adminToken(server: TestServer): Promise<string> {
  const { json } = await tokenRequest(server, { grant_type: 'client_credentials', resource: 'urn:gatehouse:admin' }, { authorization: basic(server.admin.clientId, server.admin.clientSecret) });
  if (!json.access_token) throw new Error(`no admin token: ${JSON.stringify(json)}`);
  return json.access_token;
}

/**
 * Calls the admin API (`/api/v1…`) with the bearer token `token()` gives at call time, or
 * with another one (`null`: none).
 */
export function adminCaller(server: () => TestServer, token: () => string) {
  return (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown, bearer: string | null = token()) =>
    server().inject({
      method,
      url: `/api/v1${url}`,
      headers: bearer === null ? {} : { authorization: `Bearer ${bearer}` },
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    });
}

/** Creates an API and a client allowed `scopes` on it; returns the client credentials. */
export async function seedClient(server: TestServer, opts: { tenant?: string; identifier?: string; scopes?: string[]; allowed?: string[]; authMethod?: 'client_secret_basic' | 'client_secret_post'; ttl?: number } = {}) {
  const tenant = opts.tenant ?? 'default';
  const identifier = opts.identifier ?? 'https://api.example.com';
  if (!(await server.core.catalog.apiByIdentifier(tenant, identifier))) {
    await server.core.catalog.createApi(tenant, { identifier, scopes: opts.scopes ?? ['read', 'write'], accessTokenTtl: opts.ttl });
  }
  const { client, clientSecret } = await server.core.catalog.createClient(tenant, {
    name: 'test service',
    grantTypes: ['client_credentials'],
    apis: { [identifier]: opts.allowed ?? ['read'] },
    authMethod: opts.authMethod,
  });
  return { clientId: client.clientId, clientSecret: clientSecret!, identifier };
}

/** Decodes a JWT's header and payload without verifying (assertions only). */
export function decode(token: string) {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h!, 'base64url').toString()), payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) };
}
