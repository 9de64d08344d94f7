/**
 * Sign-in benchmark: what password sign-in and refresh cost on one Gatehouse node.
 *
 *   1. password logins per second through the whole form flow, over real HTTP with
 *      keep-alive: GET /auth (PKCE S256) → the login page (CSRF token, form action) → POST
 *      email and password → resume → first-party grant → 303 to the application's redirect
 *      URI. A login counts when that redirect carries the code (and our state); the code is
 *      not exchanged in this loop. Every login is a new browser (empty cookie jar), and the
 *      logins go round a pool of users, so each account signs in successfully and no
 *      brute-force counter comes near a limit (the per-IP limit is raised all the same: every
 *      browser here is 127.0.0.1);
 *   2. against raw Argon2id verifies per second through the same hasher module
 *      (`createPasswordHasher()`, default parameters) at the same concurrency: @node-rs/argon2
 *      runs on libuv's threadpool, so both sides keep the same number of hashes in flight.
 *      The two are measured in alternating segments (A B B A…) and the ratio is the median of
 *      adjacent pairs, so load from elsewhere on a shared machine falls on both alike;
 *   3. refresh_token grants per second over sessions obtained by that flow (scope
 *      `openid offline_access`, prompt=consent, codes exchanged), each chain always presenting
 *      its newest token (rotation: a used one would revoke the grant).
 *
 * The server (SQLite, audit on) and the browsers share this process: CPU per operation is the
 * whole process (server, client and threadpool), and the main thread's event-loop utilisation
 * says whether JavaScript or the hashing was the limit.
 *
 * It reports; it does not fail on a missed target. It exits 1 when a login or a refresh failed.
 * Knobs (environment):
 *   BENCH_SECONDS               measured time per figure, default 10
 *   BENCH_WARMUP_SECONDS        warm-up per figure, default 2
 *   BENCH_SEGMENTS              segments the login and verify time is split into, default 4
 *   BENCH_CONCURRENCY           concurrent browsers = Argon2 verifies in flight, default
 *                               the CPU count, between 2 and 4
 *   BENCH_LOGIN_USERS           users the logins go round, default 50
 *   BENCH_REFRESH_CONCURRENCY   concurrent refresh requests, default 8
 *   BENCH_REFRESH_CHAINS        refresh-token chains (sessions), default 32
 * With the defaults the whole run takes under a minute.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createPasswordHasher, defaultPasswordHashParams } from '../packages/server/src/identity/index.js';
import { startServer, type TestServer } from '../packages/server/test/helpers.js';
import { percentile } from './authz-lib.js';
import { basicAuth, createCleanup, envNumber, fmt, formatTable, median, runMain } from './lib.js';

const SECONDS = envNumber('BENCH_SECONDS', 10);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 2);
const SEGMENTS = Math.round(envNumber('BENCH_SEGMENTS', 4));
const CONCURRENCY = Math.round(envNumber('BENCH_CONCURRENCY', Math.min(4, Math.max(2, cpus().length))));
const USERS = Math.round(envNumber('BENCH_LOGIN_USERS', 50));
const REFRESH_CONCURRENCY = Math.round(envNumber('BENCH_REFRESH_CONCURRENCY', 8));
const REFRESH_CHAINS = Math.max(REFRESH_CONCURRENCY, Math.round(envNumber('BENCH_REFRESH_CHAINS', 32)));

const TARGETS = { loginRatio: 0.8 } as const;
// For scale only (Keycloak's sizing guide, per vCPU): not a target of ours.
const KEYCLOAK_PER_VCPU = { logins: 15, refreshes: 120 } as const;

const TENANT = 'bench';
const REDIRECT = 'https://bench.test/callback';
const passwordOf = (i: number) => `bench user ${i} keeps a long passphrase`;
const emailOf = (i: number) => `user${i}@bench.test`;

/** A browser without a screen: a cookie jar (names only) and redirects followed by hand. */
class Agent {
  readonly cookies = new Map<string, string>();
  requests = 0;
  constructor(private readonly origin: string) {}

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    headers.set('accept', 'text/html');
    this.requests++;
    const response = await fetch(new URL(url, this.origin), { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';')[0]!;
      const at = pair.indexOf('=');
      const value = pair.slice(at + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(pair.slice(0, at));
      else this.cookies.set(pair.slice(0, at), value);
    }
    return response;
  }

  /** Follows redirects inside Gatehouse; stops at a page, or at the application's redirect URI. */
  async follow(url: string, init?: RequestInit): Promise<{ status: number; page?: string; callback?: URL }> {
    let response = await this.request(url, init);
    for (let hops = 0; hops < 10 && response.status >= 300 && response.status < 400; hops++) {
      const location = new URL(response.headers.get('location')!, this.origin);
      if (location.origin !== this.origin) {
        await response.body?.cancel();
        return { status: response.status, callback: location };
      }
      await response.body?.cancel();
      response = await this.request(location.href);
    }
    return { status: response.status, page: await response.text() };
  }
}

const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
const action = (html: string, path: string) => new RegExp(`action="([^"]*/${path})"`).exec(html)?.[1];

interface Bench {
  server: TestServer;
  clientId: string;
  clientSecret: string;
}

/** One person signing in through the pages; the authorization code and its PKCE verifier. */
async function signIn(bench: Bench, user: number, params: Record<string, string> = {}): Promise<{ code: string; verifier: string; requests: number }> {
  const agent = new Agent(bench.server.url);
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(12).toString('base64url');
  const url = new URL(`${bench.server.url}/t/${TENANT}/auth`);
  const query = {
    client_id: bench.clientId,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: 'openid email',
    state,
    nonce: randomBytes(12).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...params,
  };
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const start = await agent.follow(url.href);
  const login = start.page === undefined ? undefined : action(start.page, 'login');
  const csrf = start.page === undefined ? undefined : field(start.page, 'csrf');
  if (!login || !csrf) throw new Error(`no login form: ${start.status} ${start.callback?.href ?? start.page?.slice(0, 200)}`);
  const done = await agent.follow(login, { method: 'POST', body: new URLSearchParams({ csrf, email: emailOf(user), password: passwordOf(user) }) });
  const code = done.callback?.searchParams.get('code');
  if (!code || done.callback!.searchParams.get('state') !== state) throw new Error(`no code at the redirect URI: ${done.status} ${done.callback?.href ?? done.page?.slice(0, 200)}`);
  return { code, verifier, requests: agent.requests };
}

/** A form POST to the tenant's token endpoint with client_secret_basic. */
async function token(bench: Bench, form: Record<string, string>): Promise<Record<string, string>> {
  const response = await fetch(`${bench.server.url}/t/${TENANT}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(bench.clientId, bench.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const json = (await response.json()) as Record<string, string>;
  if (response.status !== 200) throw new Error(`${form.grant_type} grant answered ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

interface Run {
  ops: number;
  seconds: number;
  perSecond: number;
  /** Sorted, milliseconds. */
  latencies: Float64Array;
  failed: number;
  firstErrors: string[];
  /** Process CPU (all threads) per operation, milliseconds. */
  cpuMsPerOp: number;
  elu: number;
}

/**
 * `concurrency` workers each run `op` back to back until `seconds` have passed (a closed
 * loop: a new operation starts when the last one ended). Operations in flight at the end
 * finish and count, and the time counts until they do. A failure stops its worker.
 */
async function closedLoop(concurrency: number, seconds: number, op: (worker: number) => Promise<void>): Promise<Run> {
  const latencies: number[] = [];
  const firstErrors: string[] = [];
  let failed = 0;
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        try {
          await op(worker);
          latencies.push(performance.now() - t);
        } catch (error) {
          failed++;
          if (firstErrors.length < 3) firstErrors.push(error instanceof Error ? error.message : String(error));
          return;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    ops: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    latencies: Float64Array.from(latencies).sort(),
    failed,
    firstErrors,
    cpuMsPerOp: (cpu.user + cpu.system) / 1000 / Math.max(1, latencies.length),
    elu: performance.eventLoopUtilization(elu0).utilization,
  };
}

/** Several runs of one kind as one: totals summed, latencies merged. */
function merge(runs: Run[]): Run {
  const ops = runs.reduce((sum, r) => sum + r.ops, 0);
  const seconds = runs.reduce((sum, r) => sum + r.seconds, 0);
  const all = new Float64Array(runs.reduce((sum, r) => sum + r.latencies.length, 0));
  let at = 0;
  for (const r of runs) {
    all.set(r.latencies, at);
    at += r.latencies.length;
  }
  return {
    ops,
    seconds,
    perSecond: ops / seconds,
    latencies: all.sort(),
    failed: runs.reduce((sum, r) => sum + r.failed, 0),
    firstErrors: runs.flatMap((r) => r.firstErrors).slice(0, 3),
    cpuMsPerOp: runs.reduce((sum, r) => sum + r.cpuMsPerOp * r.ops, 0) / Math.max(1, ops),
    elu: median(runs.map((r) => r.elu)),
  };
}

const ms = (value: number) => `${fmt(value, 1)} ms`;
const p = (run: Run, q: number) => (run.latencies.length ? percentile(run.latencies, q) : NaN);
const describe = (run: Run, unit: string) =>
  `${fmt(run.perSecond, 1)} ${unit}/s (${fmt(run.ops)} in ${fmt(run.seconds, 2)} s), p50 ${ms(p(run, 50))}, p99 ${ms(p(run, 99))}; ` +
  `CPU ${ms(run.cpuMsPerOp)} per op, main-thread event loop ${fmt(run.elu * 100)} % busy`;

function reportFailures(name: string, run: Run): void {
  if (run.failed > 0) console.log(`  !!! ${name}: ${run.failed} failed; first: ${run.firstErrors.join(' | ')}`);
}

async function setUp(cleanup: ReturnType<typeof createCleanup>): Promise<Bench> {
  // Every browser here comes from 127.0.0.1: a per-IP budget sized for the benchmark, not
  // for an attacker. Logins succeed, so the per-account counters stay at zero.
  const server = await startServer({ listen: true, env: { GATEHOUSE_LOGIN_MAX_FAILURES_PER_IP: '100000' } });
  cleanup.add('close server and remove its data dir', () => server.close());
  await server.core.tenants.create(TENANT, 'Bench');
  const { client, clientSecret } = await server.core.catalog.createClient(TENANT, {
    name: 'Bench app',
    grantTypes: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT],
    // The tenant's own application: granted without a consent page, even with prompt=consent.
    firstParty: true,
  });
  // Users are hashed as the server hashes them (its configured, default, parameters).
  for (let i = 0; i < USERS; i += CONCURRENCY) {
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, USERS - i) }, (_, k) => server.core.users.create(TENANT, { email: emailOf(i + k), password: passwordOf(i + k), emailVerified: true })),
    );
  }
  return { server, clientId: client.clientId, clientSecret: clientSecret! };
}

async function main(): Promise<number> {
  const cleanup = createCleanup();
  const onSignal = () => {
    void cleanup.runAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    console.log(`Gatehouse sign-in benchmark — node ${process.version}, ${cpus().length} CPU(s), ${cpus()[0]?.model ?? 'unknown CPU'}`);
    const threadpool = process.env.UV_THREADPOOL_SIZE ? `${process.env.UV_THREADPOOL_SIZE} (UV_THREADPOOL_SIZE)` : '4 (libuv default)';
    console.log(`concurrency ${CONCURRENCY} (browsers, and verifies in flight); libuv threadpool ${threadpool}; ${WARMUP_SECONDS} s warm-up + ${SECONDS} s measured per figure`);

    let t = performance.now();
    const bench = await setUp(cleanup);
    const serverParams = bench.server.core.passwords.params;
    console.log(`server: SQLite, audit on; tenant "${TENANT}", ${USERS} users created in ${fmt((performance.now() - t) / 1000, 1)} s`);
    console.log(`Argon2id server m=${serverParams.memoryCost} KiB t=${serverParams.timeCost} p=${serverParams.parallelism}; baseline hasher m=${defaultPasswordHashParams.memoryCost} t=${defaultPasswordHashParams.timeCost} p=${defaultPasswordHashParams.parallelism}`);

    let next = 0;
    let requestsPerLogin = 0;
    const login = async () => {
      const user = next++ % USERS;
      requestsPerLogin = (await signIn(bench, user)).requests;
    };
    const hasher = createPasswordHasher();
    const stored = await hasher.hash(passwordOf(0));
    const verify = async () => {
      if (!(await hasher.verify(stored, passwordOf(0))).ok) throw new Error('the baseline verify said no');
    };

    console.log(`\n1–2. password logins through the form flow vs raw Argon2id verify, ${SEGMENTS} alternating segments of ${fmt(SECONDS / SEGMENTS, 1)} s each`);
    const warmLogin = await closedLoop(CONCURRENCY, WARMUP_SECONDS, login);
    const warmVerify = await closedLoop(CONCURRENCY, WARMUP_SECONDS, verify);
    console.log(`  warm-up: ${fmt(warmLogin.perSecond, 1)} logins/s, ${fmt(warmVerify.perSecond, 1)} verifies/s; ${requestsPerLogin} HTTP requests per login`);
    const logins: Run[] = [];
    const verifies: Run[] = [];
    for (let s = 0; s < SEGMENTS; s++) {
      const order = s % 2 === 0 ? (['login', 'verify'] as const) : (['verify', 'login'] as const);
      for (const kind of order) {
        if (kind === 'login') logins.push(await closedLoop(CONCURRENCY, SECONDS / SEGMENTS, login));
        else verifies.push(await closedLoop(CONCURRENCY, SECONDS / SEGMENTS, verify));
      }
    }
    const loginRun = merge(logins);
    const verifyRun = merge(verifies);
    const pairRatios = logins.map((run, i) => run.perSecond / verifies[i]!.perSecond);
    const loginRatio = median(pairRatios);
    console.log(`  logins:   ${describe(loginRun, 'logins')}`);
    console.log(`  verifies: ${describe(verifyRun, 'verifies')}`);
    console.log(`  segments: logins ${logins.map((r) => fmt(r.perSecond, 1)).join(', ')}; verifies ${verifies.map((r) => fmt(r.perSecond, 1)).join(', ')}`);
    console.log(`  logins / verifies: ${fmt(loginRatio, 2)} (median of pairs ${pairRatios.map((r) => fmt(r, 2)).join(', ')}; whole-run totals give ${fmt(loginRun.perSecond / verifyRun.perSecond, 2)})`);
    reportFailures('logins (warm-up)', warmLogin);
    reportFailures('logins', loginRun);
    reportFailures('verifies', merge([warmVerify, verifyRun]));

    console.log(`\n3. refresh_token grants: ${REFRESH_CHAINS} sessions, ${REFRESH_CONCURRENCY} concurrent requests, rotation on every grant`);
    t = performance.now();
    // Each worker owns its chains and sends one request per chain at a time: the token it
    // presents is always the newest of its chain, never one already used.
    const chains: string[] = [];
    for (let i = 0; i < REFRESH_CHAINS; i += CONCURRENCY) {
      await Promise.all(
        Array.from({ length: Math.min(CONCURRENCY, REFRESH_CHAINS - i) }, async (_, k) => {
          const { code, verifier } = await signIn(bench, (i + k) % USERS, { scope: 'openid offline_access', prompt: 'consent' });
          const issued = await token(bench, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
          if (!issued.refresh_token) throw new Error(`no refresh token for scope "${issued.scope}"`);
          chains[i + k] = issued.refresh_token;
        }),
      );
    }
    console.log(`  ${REFRESH_CHAINS} sessions signed in and codes exchanged in ${fmt((performance.now() - t) / 1000, 1)} s`);
    const turn = new Array<number>(REFRESH_CONCURRENCY).fill(0);
    const refresh = async (worker: number) => {
      const owned = Math.ceil((REFRESH_CHAINS - worker) / REFRESH_CONCURRENCY);
      const chain = worker + (turn[worker]! % owned) * REFRESH_CONCURRENCY;
      turn[worker]!++;
      const rotated = await token(bench, { grant_type: 'refresh_token', refresh_token: chains[chain]! });
      if (!rotated.refresh_token || rotated.refresh_token === chains[chain]) throw new Error('the refresh grant did not rotate the refresh token');
      chains[chain] = rotated.refresh_token;
    };
    const warmRefresh = await closedLoop(REFRESH_CONCURRENCY, WARMUP_SECONDS, refresh);
    const refreshRun = await closedLoop(REFRESH_CONCURRENCY, SECONDS, refresh);
    console.log(`  warm-up: ${fmt(warmRefresh.perSecond)} refreshes/s`);
    console.log(`  refreshes: ${describe(refreshRun, 'refreshes')}`);
    reportFailures('refreshes (warm-up)', warmRefresh);
    reportFailures('refreshes', refreshRun);

    const failed = warmLogin.failed + loginRun.failed + warmVerify.failed + verifyRun.failed + warmRefresh.failed + refreshRun.failed;
    const cpuCount = cpus().length;
    const verdict = (pass: boolean) => (pass ? 'PASS' : 'MISS');
    console.log(`\nSummary (concurrency ${CONCURRENCY} for logins and verifies, ${REFRESH_CONCURRENCY} for refreshes; ${cpuCount} CPU(s), shared)`);
    console.log(
      formatTable(
        ['figure', 'value', 'target', 'result'],
        [
          ['password logins (form flow)', `${fmt(loginRun.perSecond, 1)}/s`, '', ''],
          ['  latency p50 / p99', `${ms(p(loginRun, 50))} / ${ms(p(loginRun, 99))}`, '', ''],
          ['  process CPU per login', ms(loginRun.cpuMsPerOp), '', ''],
          ['raw Argon2id verify', `${fmt(verifyRun.perSecond, 1)}/s`, '', ''],
          ['  latency p50 / p99', `${ms(p(verifyRun, 50))} / ${ms(p(verifyRun, 99))}`, '', ''],
          ['  process CPU per verify', ms(verifyRun.cpuMsPerOp), '', ''],
          ['logins / verifies', fmt(loginRatio, 2), `>= ${TARGETS.loginRatio}`, verdict(loginRatio >= TARGETS.loginRatio)],
          ['refresh_token grants', `${fmt(refreshRun.perSecond)}/s`, '', ''],
          ['  latency p50 / p99', `${ms(p(refreshRun, 50))} / ${ms(p(refreshRun, 99))}`, '', ''],
          ['  process CPU per refresh', ms(refreshRun.cpuMsPerOp), '', ''],
          ['logins/s per CPU', fmt(loginRun.perSecond / cpuCount, 1), `(Keycloak ${KEYCLOAK_PER_VCPU.logins})`, ''],
          ['refreshes/s per CPU', fmt(refreshRun.perSecond / cpuCount), `(Keycloak ${KEYCLOAK_PER_VCPU.refreshes})`, ''],
          ['failed logins, verifies, refreshes', String(failed), '0', failed === 0 ? 'PASS' : 'FAIL'],
        ],
      ),
    );
    if (failed > 0) {
      console.log(`\n!!! ${failed} OPERATIONS FAILED — the figures above are not valid. Exit code 1.`);
      return 1;
    }
    return 0;
  } finally {
    await cleanup.runAll();
    process.off('SIGINT', onSignal);
  }
}

runMain(main);
