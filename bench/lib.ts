/**
 * Small helpers shared by the benchmarks: HTTP load through autocannon, ports, child
 * processes, timing and the result table. Nothing here knows about Gatehouse.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

// autocannon is CommonJS and ships no type declarations; we type the part we use.
interface AutocannonHistogram {
  p50: number;
  p99: number;
  max: number;
}
/** What autocannon hands back from a worker thread: counters plus encoded histograms. */
export interface RawLoadResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AggregatedResult extends RawLoadResult {
  latency: AutocannonHistogram;
}
interface Autocannon {
  aggregateResult(results: RawLoadResult[], options: { url: string; connections: number }): AggregatedResult;
}
const require = createRequire(import.meta.url);
const autocannon = require('autocannon') as Autocannon;

/** A positive number from the environment, or the default. Misuse throws (it is our own knob). */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number, got "${raw}"`);
  return value;
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export const basicAuth = (id: string, secret: string) =>
  // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export interface LoadTarget {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** When given, the connections cycle through these bodies instead (autocannon `requests`). */
  bodies?: string[];
}

export interface LoadResult {
  seconds: number;
  /** Successful (2xx) responses per second. */
  okPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  ok: number;
  non2xx: number;
  /** Connection errors, including timeouts. */
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

// The load generator runs in a worker thread: in the server's own event loop it would steal
// the very CPU it measures. Inside a worker, autocannon returns its raw result with encoded
// histograms, which `aggregateResult` can later merge exactly across segments.
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const autocannon = require(workerData.module);
autocannon(workerData.options, (error, result) => {
  parentPort.postMessage(error ? { error: String((error && error.stack) || error) } : { result });
});
`;

/** POSTs `target` over keep-alive connections for `seconds`; one segment of a measurement. */
export function loadSegment(target: LoadTarget, options: { connections: number; seconds: number }): Promise<RawLoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(LOAD_WORKER, {
      eval: true,
      execArgv: [], // plain JavaScript: no TypeScript loader in the load generator
      workerData: {
        module: require.resolve('autocannon'),
        options: {
          url: target.url,
          method: 'POST',
          headers: target.headers,
          ...(target.bodies ? { requests: target.bodies.map((body) => ({ method: 'POST', body })) } : { body: target.body }),
          connections: options.connections,
          duration: options.seconds,
          pipelining: 1,
          timeout: 10,
          // autocannon checks for the end of the run once per sample interval (default 1 s),
          // which would round every segment up to whole seconds.
          sampleInt: 100,
        },
      },
    });
    let settled = false;
    worker.once('message', (message: { error?: string; result?: RawLoadResult }) => {
      settled = true;
      void worker.terminate();
      if (message.result) resolve(message.result);
      else reject(new Error(`autocannon failed: ${message.error}`));
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the load worker exited with code ${code} before reporting`));
    });
  });
}

/** Merges segments of one target: totals are summed, latency histograms merged exactly. */
export function summarize(url: string, connections: number, segments: RawLoadResult[]): LoadResult {
  // aggregateResult mutates the first result's status counters; work on a copy.
  const merged = autocannon.aggregateResult(structuredClone(segments), { url, connections });
  const seconds = segments.reduce((sum, s) => sum + s.duration, 0);
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(merged.statusCodeStats)) statusCodes[code] = Number(count);
  return {
    seconds,
    okPerSecond: merged['2xx'] / seconds,
    p50Ms: merged.latency.p50,
    p99Ms: merged.latency.p99,
    maxMs: merged.latency.max,
    ok: merged['2xx'],
    non2xx: merged.non2xx,
    errors: merged.errors,
    timeouts: merged.timeouts,
    statusCodes,
  };
}

/** Runs `fn` `n` times in sequence; operations per second. */
export async function opsPerSecond(n: number, fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return n / ((performance.now() - started) / 1000);
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Status and body of a GET, with a fresh connection (no keep-alive socket left behind). */
export function httpGet(url: string, timeoutMs = 1000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resident set size of a process in MiB, from /proc (Linux). */
export function rssMb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  if (!match) throw new Error(`${field} not found in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

export interface Child {
  process: ChildProcess;
  /** The last few KB of stderr, for diagnostics when the child fails. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }>;
}

// Children still running when this process exits for any reason (a crash included).
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts a child process. stdout is discarded: Gatehouse prints its bootstrap secret there. */
export function startChild(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd: string }): Child {
  const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let tail = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4096);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    process: child,
    stderrTail: () => tail,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return { ...(await exited), forced: false };
      child.kill('SIGTERM');
      let forced = false;
      const timer = setTimeout(() => {
        forced = true;
        child.kill('SIGKILL');
      }, graceMs);
      const result = await exited;
      clearTimeout(timer);
      return { ...result, forced };
    },
  };
}

/** Polls `url` until it answers 200; milliseconds from `since` to that answer. */
export async function waitForOk(url: string, since: number, child: Child, timeoutMs = 30_000): Promise<number> {
  for (;;) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) {
      throw new Error(`the server exited before it was ready (code ${child.process.exitCode}, signal ${child.process.signalCode})\n${child.stderrTail()}`);
    }
    try {
      const { status } = await httpGet(url, 500);
      if (status === 200) return performance.now() - since;
    } catch {
      // Not listening yet.
    }
    if (performance.now() - since > timeoutMs) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms\n${child.stderrTail()}`);
    await sleep(5);
  }
}

/** Undo steps run last-in first-out; each failure is reported and the rest still run. */
export function createCleanup() {
  const steps: { name: string; run: () => unknown }[] = [];
  return {
    add(name: string, run: () => unknown) {
      steps.push({ name, run });
    },
    async runAll(): Promise<void> {
      while (steps.length > 0) {
        const step = steps.pop()!;
        try {
          await step.run();
        } catch (error) {
          console.error(`cleanup "${step.name}" failed:`, error);
        }
      }
    },
  };
}

/** A plain-text table with right-aligned numbers. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const fmt = (value: number, digits = 0) =>
  value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Runs a bench's main: its exit code, and a report of whatever still holds the loop. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
      // Everything should be closed now; if a handle still holds the loop, say which.
      setTimeout(() => {
        console.error('bench did not exit on its own; still open:', process.getActiveResourcesInfo());
        process.exit(code || 1);
      }, 5000).unref();
    },
    (error: unknown) => {
      console.error('benchmark failed:', error);
      process.exitCode = 1;
    },
  );
}
