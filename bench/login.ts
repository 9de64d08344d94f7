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
 * Where the work runs. The server (SQLite, audit on) is this process: its main thread, with
 * libuv's threadpool for the hashing and V8's helper threads for its garbage collection. The
 * browsers and the refresh client run in a child process (`bench/login-worker.ts`), so none
 * of their work, garbage collection included, is counted as the server's; the raw verifies
 * are started from the main thread (a few microseconds of JavaScript each, the hash on the
 * threadpool), exactly as the server starts them. The machine's cores are still shared: the
 * client's CPU competes with the server's, for logins and refreshes only, so on a small
 * machine the throughput ratio understates the server; the CPU ratio does not.
 *
 * What the CPU figures are (getrusage; Linux /proc schedstat for threads and the client):
 *   server CPU per op   this whole process: main thread, threadpool (Argon2), V8 helpers;
 *   main thread         the server's JavaScript and I/O (event loop), on its own;
 *   client              the child process, reported apart and in no other figure.
 * "server CPU: verify / login" is what the flow adds to the hash on the server, free of the
 * client and of how well a closed loop keeps the cores busy; "per server CPU-second" turns
 * CPU per operation into capacity per core (the unit of Keycloak's sizing guide). The main
 * thread's event-loop utilisation says whether the server's JavaScript or the hashing was
 * the limit. Where /proc is missing, the main-thread and client figures are n/a.
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
 *   BENCH_CPU_PROFILE           a file: after the measured logins, one more login run of
 *                               BENCH_SECONDS under the V8 profiler of the main thread (the
 *                               server alone), written there as a .cpuprofile; not counted
 * With the defaults the whole run takes under a minute.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createPasswordHasher, defaultPasswordHashParams } from '../packages/server/src/identity/index.js';
import { startServer, type TestServer } from '../packages/server/test/helpers.js';
import { percentile } from './authz-lib.js';
import { createCleanup, envNumber, fmt, formatTable, median, runMain } from './lib.js';
import { closedLoop, emailOf, passwordOf, startLoginDriver, type LoginDriver, type LoopResult } from './login-worker.js';

const SECONDS = envNumber('BENCH_SECONDS', 10);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 2);
const SEGMENTS = Math.round(envNumber('BENCH_SEGMENTS', 4));
const CONCURRENCY = Math.round(envNumber('BENCH_CONCURRENCY', Math.min(4, Math.max(2, cpus().length))));
const USERS = Math.round(envNumber('BENCH_LOGIN_USERS', 50));
const REFRESH_CONCURRENCY = Math.round(envNumber('BENCH_REFRESH_CONCURRENCY', 8));
const REFRESH_CHAINS = Math.max(REFRESH_CONCURRENCY, Math.round(envNumber('BENCH_REFRESH_CHAINS', 32)));
const CPU_PROFILE = process.env.BENCH_CPU_PROFILE || undefined;

const TARGETS = { loginRatio: 0.8 } as const;
// For scale only (Keycloak's sizing guide, per vCPU): not a target of ours.
const KEYCLOAK_PER_VCPU = { logins: 15, refreshes: 120 } as const;

const TENANT = 'bench';
const REDIRECT = 'https://bench.test/callback';

interface Bench {
  server: TestServer;
  clientId: string;
  clientSecret: string;
}

/** CPU time, ms, of one thread (schedstat: nanoseconds on CPU); undefined off Linux. */
function threadCpuMs(pid: number | 'self', tid: number | string): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return undefined;
  }
}

/** CPU time, ms, of every thread of another process (the client); undefined off Linux. */
function processCpuMs(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/task`).reduce((sum, tid) => sum + (threadCpuMs(pid, tid) ?? 0), 0);
  } catch {
    return undefined;
  }
}

interface CpuSnapshot {
  processMs: number;
  mainMs: number | undefined;
  clientMs: number | undefined;
  elu: ReturnType<typeof performance.eventLoopUtilization>;
}

function cpuSnapshot(clientPid: number): CpuSnapshot {
  const { user, system } = process.cpuUsage();
  // The main thread's id is the process id.
  return { processMs: (user + system) / 1000, mainMs: threadCpuMs('self', process.pid), clientMs: processCpuMs(clientPid), elu: performance.eventLoopUtilization() };
}

interface Run {
  ops: number;
  seconds: number;
  perSecond: number;
  /** Sorted, milliseconds. */
  latencies: Float64Array;
  failed: number;
  firstErrors: string[];
  /** Per operation, ms: this process (the server). */
  serverCpuMs: number;
  /** Per operation, ms: the main thread, i.e. the server's JavaScript; NaN where unknown. */
  mainCpuMs: number;
  /** Per operation, ms: the client's process; NaN where unknown (and ~0 for the verifies). */
  clientCpuMs: number;
  /** Main-thread event-loop utilisation, 0–1. */
  elu: number;
}

/** Runs one closed loop (here or in the client) and charges this process's CPU to it. */
async function measured(clientPid: number, loop: () => Promise<LoopResult>): Promise<Run> {
  const before = cpuSnapshot(clientPid);
  const result = await loop();
  const after = cpuSnapshot(clientPid);
  const per = (ms: number) => ms / Math.max(1, result.ops);
  const delta = (pick: (s: CpuSnapshot) => number | undefined) => {
    const [a, b] = [pick(before), pick(after)];
    return a === undefined || b === undefined ? NaN : b - a;
  };
  const clientMs = delta((s) => s.clientMs);
  return {
    ops: result.ops,
    seconds: result.seconds,
    perSecond: result.ops / result.seconds,
    latencies: result.latencies.sort(),
    failed: result.failed,
    firstErrors: result.firstErrors,
    serverCpuMs: per(after.processMs - before.processMs),
    mainCpuMs: per(delta((s) => s.mainMs)),
    clientCpuMs: per(clientMs),
    elu: performance.eventLoopUtilization(after.elu, before.elu).utilization,
  };
}

/** Several runs of one kind as one: totals summed, latencies merged, CPU weighted by operations. */
function merge(runs: Run[]): Run {
  const ops = runs.reduce((sum, r) => sum + r.ops, 0);
  const seconds = runs.reduce((sum, r) => sum + r.seconds, 0);
  const all = new Float64Array(runs.reduce((sum, r) => sum + r.latencies.length, 0));
  let at = 0;
  for (const r of runs) {
    all.set(r.latencies, at);
    at += r.latencies.length;
  }
  const weighted = (pick: (r: Run) => number) => runs.reduce((sum, r) => sum + pick(r) * r.ops, 0) / Math.max(1, ops);
  return {
    ops,
    seconds,
    perSecond: ops / seconds,
    latencies: all.sort(),
    failed: runs.reduce((sum, r) => sum + r.failed, 0),
    firstErrors: runs.flatMap((r) => r.firstErrors).slice(0, 3),
    serverCpuMs: weighted((r) => r.serverCpuMs),
    mainCpuMs: weighted((r) => r.mainCpuMs),
    clientCpuMs: weighted((r) => r.clientCpuMs),
    elu: median(runs.map((r) => r.elu)),
  };
}

const ms = (value: number) => (Number.isNaN(value) ? 'n/a' : `${fmt(value, 1)} ms`);
const p = (run: Run, q: number) => (run.latencies.length ? percentile(run.latencies, q) : NaN);
const describe = (run: Run, unit: string, client = true) =>
  `${fmt(run.perSecond, 1)} ${unit}/s (${fmt(run.ops)} in ${fmt(run.seconds, 2)} s), p50 ${ms(p(run, 50))}, p99 ${ms(p(run, 99))}; ` +
  `server CPU ${ms(run.serverCpuMs)} per op (main thread ${ms(run.mainCpuMs)}${client ? `; client ${ms(run.clientCpuMs)} apart` : ''}), ` +
  `main-thread event loop ${fmt(run.elu * 100)} % busy`;

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

/** Runs `work` under the main thread's V8 sampling profiler and writes the profile to `file`. */
async function profiled<T>(file: string, work: () => Promise<T>): Promise<T> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const result = await work();
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    return result;
  } finally {
    session.disconnect();
  }
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
    console.log(`server: SQLite, audit on, main thread; tenant "${TENANT}", ${USERS} users created in ${fmt((performance.now() - t) / 1000, 1)} s`);
    console.log(`Argon2id server m=${serverParams.memoryCost} KiB t=${serverParams.timeCost} p=${serverParams.parallelism}; baseline hasher m=${defaultPasswordHashParams.memoryCost} t=${defaultPasswordHashParams.timeCost} p=${defaultPasswordHashParams.parallelism}`);

    const driver: LoginDriver = await startLoginDriver({ url: bench.server.url, tenant: TENANT, clientId: bench.clientId, clientSecret: bench.clientSecret, redirectUri: REDIRECT, users: USERS });
    cleanup.add('stop the client process', () => driver.stop());
    console.log(`client: browsers in a child process (pid ${driver.pid})`);
    let requestsPerLogin = 0;
    const logins = async (seconds: number) =>
      measured(driver.pid, async () => {
        const reply = await driver.send({ kind: 'logins', concurrency: CONCURRENCY, seconds });
        requestsPerLogin = reply.requestsPerLogin;
        return reply.loop!;
      });
    const hasher = createPasswordHasher();
    const stored = await hasher.hash(passwordOf(0));
    const verify = async () => {
      if (!(await hasher.verify(stored, passwordOf(0))).ok) throw new Error('the baseline verify said no');
    };
    const verifies = (seconds: number) => measured(driver.pid, () => closedLoop(CONCURRENCY, seconds, verify));

    console.log(`\n1–2. password logins through the form flow vs raw Argon2id verify, ${SEGMENTS} alternating segments of ${fmt(SECONDS / SEGMENTS, 1)} s each`);
    const warmLogin = await logins(WARMUP_SECONDS);
    const warmVerify = await verifies(WARMUP_SECONDS);
    console.log(`  warm-up: ${fmt(warmLogin.perSecond, 1)} logins/s, ${fmt(warmVerify.perSecond, 1)} verifies/s; ${requestsPerLogin} HTTP requests per login`);
    const loginRuns: Run[] = [];
    const verifyRuns: Run[] = [];
    for (let s = 0; s < SEGMENTS; s++) {
      const order = s % 2 === 0 ? (['login', 'verify'] as const) : (['verify', 'login'] as const);
      for (const kind of order) {
        if (kind === 'login') loginRuns.push(await logins(SECONDS / SEGMENTS));
        else verifyRuns.push(await verifies(SECONDS / SEGMENTS));
      }
    }
    const loginRun = merge(loginRuns);
    const verifyRun = merge(verifyRuns);
    const pairRatios = loginRuns.map((run, i) => run.perSecond / verifyRuns[i]!.perSecond);
    const loginRatio = median(pairRatios);
    console.log(`  logins:   ${describe(loginRun, 'logins')}`);
    console.log(`  verifies: ${describe(verifyRun, 'verifies', false)}`);
    console.log(`  segments: logins ${loginRuns.map((r) => fmt(r.perSecond, 1)).join(', ')}; verifies ${verifyRuns.map((r) => fmt(r.perSecond, 1)).join(', ')}`);
    console.log(`  logins / verifies: ${fmt(loginRatio, 2)} (median of pairs ${pairRatios.map((r) => fmt(r, 2)).join(', ')}; whole-run totals give ${fmt(loginRun.perSecond / verifyRun.perSecond, 2)})`);
    reportFailures('logins (warm-up)', warmLogin);
    reportFailures('logins', loginRun);
    reportFailures('verifies', merge([warmVerify, verifyRun]));
    let profiledRun: Run | undefined;
    if (CPU_PROFILE) {
      profiledRun = await profiled(CPU_PROFILE, () => logins(SECONDS));
      console.log(`  profiled (not counted above): ${describe(profiledRun, 'logins')}; main-thread profile in ${CPU_PROFILE}`);
      reportFailures('logins (profiled)', profiledRun);
    }

    console.log(`\n3. refresh_token grants: ${REFRESH_CHAINS} sessions, ${REFRESH_CONCURRENCY} concurrent requests, rotation on every grant`);
    t = performance.now();
    await driver.send({ kind: 'open-chains', chains: REFRESH_CHAINS, concurrency: CONCURRENCY });
    console.log(`  ${REFRESH_CHAINS} sessions signed in and codes exchanged in ${fmt((performance.now() - t) / 1000, 1)} s`);
    const refreshes = (seconds: number) => measured(driver.pid, async () => (await driver.send({ kind: 'refreshes', concurrency: REFRESH_CONCURRENCY, seconds })).loop!);
    const warmRefresh = await refreshes(WARMUP_SECONDS);
    const refreshRun = await refreshes(SECONDS);
    console.log(`  warm-up: ${fmt(warmRefresh.perSecond)} refreshes/s`);
    console.log(`  refreshes: ${describe(refreshRun, 'refreshes')}`);
    reportFailures('refreshes (warm-up)', warmRefresh);
    reportFailures('refreshes', refreshRun);

    const failed = [warmLogin, loginRun, warmVerify, verifyRun, warmRefresh, refreshRun, ...(profiledRun ? [profiledRun] : [])].reduce((sum, r) => sum + r.failed, 0);
    const cpuCount = cpus().length;
    const verdict = (pass: boolean) => (pass ? 'PASS' : 'MISS');
    const cpuRatio = verifyRun.serverCpuMs / loginRun.serverCpuMs;
    const perCpuSecond = (run: Run) => 1000 / run.serverCpuMs;
    console.log(`\nSummary (concurrency ${CONCURRENCY} for logins and verifies, ${REFRESH_CONCURRENCY} for refreshes; ${cpuCount} CPU(s), shared with the client; CPU is the server's alone)`);
    console.log(
      formatTable(
        ['figure', 'value', 'target', 'result'],
        [
          ['password logins (form flow)', `${fmt(loginRun.perSecond, 1)}/s`, '', ''],
          ['  latency p50 / p99', `${ms(p(loginRun, 50))} / ${ms(p(loginRun, 99))}`, '', ''],
          ['  server CPU per login', ms(loginRun.serverCpuMs), '', ''],
          ['    of which main thread', ms(loginRun.mainCpuMs), '', ''],
          ['  (client per login)', ms(loginRun.clientCpuMs), '', ''],
          ['raw Argon2id verify', `${fmt(verifyRun.perSecond, 1)}/s`, '', ''],
          ['  latency p50 / p99', `${ms(p(verifyRun, 50))} / ${ms(p(verifyRun, 99))}`, '', ''],
          ['  server CPU per verify', ms(verifyRun.serverCpuMs), '', ''],
          ['logins / verifies', fmt(loginRatio, 2), `>= ${TARGETS.loginRatio}`, verdict(loginRatio >= TARGETS.loginRatio)],
          ['server CPU: verify / login', fmt(cpuRatio, 2), '', ''],
          ['refresh_token grants', `${fmt(refreshRun.perSecond)}/s`, '', ''],
          ['  latency p50 / p99', `${ms(p(refreshRun, 50))} / ${ms(p(refreshRun, 99))}`, '', ''],
          ['  server CPU per refresh', ms(refreshRun.serverCpuMs), '', ''],
          ['    of which main thread', ms(refreshRun.mainCpuMs), '', ''],
          ['  (client per refresh)', ms(refreshRun.clientCpuMs), '', ''],
          ['logins per server CPU-second', fmt(perCpuSecond(loginRun), 1), `(Keycloak ${KEYCLOAK_PER_VCPU.logins}/vCPU)`, ''],
          ['refreshes per server CPU-second', fmt(perCpuSecond(refreshRun)), `(Keycloak ${KEYCLOAK_PER_VCPU.refreshes}/vCPU)`, ''],
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
