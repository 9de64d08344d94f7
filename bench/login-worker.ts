/**
 * The browsers of the sign-in benchmark (`bench/login.ts`), run in a worker thread so that
 * the main thread is the server alone: the client's fetch, cookie jar, HTML scraping and
 * PKCE hashing would otherwise be counted as the server's CPU and event-loop time.
 *
 * The main thread starts it with `startLoginDriver()` and sends one command at a time:
 * a closed loop of logins, the sign-ins that open the refresh-token chains, or a closed
 * loop of refresh grants. Each command answers with the operations' count, duration and
 * latencies; CPU is measured by the main thread, which knows this thread's id.
 *
 * `closedLoop` is also used by the main thread for the raw Argon2id baseline.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { basicAuth } from './lib.js';

export const passwordOf = (i: number) => `bench user ${i} keeps a long passphrase`;
export const emailOf = (i: number) => `user${i}@bench.test`;

/** What the browsers need to know about the server under test. */
export interface LoginTarget {
  url: string;
  tenant: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  users: number;
}

/** Operations of one closed loop, as seen by the side that ran them. */
export interface LoopResult {
  ops: number;
  seconds: number;
  /** Milliseconds, in completion order. */
  latencies: Float64Array;
  failed: number;
  firstErrors: string[];
}

export type DriverCommand =
  | { kind: 'logins'; concurrency: number; seconds: number }
  | { kind: 'open-chains'; chains: number; concurrency: number }
  | { kind: 'refreshes'; concurrency: number; seconds: number };

type DriverReply = { ok: true; loop?: LoopResult; requestsPerLogin: number } | { ok: false; error: string };

/**
 * `concurrency` loops each run `op` back to back until `seconds` have passed (a closed
 * loop: a new operation starts when the last one ended). Operations in flight at the end
 * finish and count, and the time counts until they do. A failure stops its loop.
 */
export async function closedLoop(concurrency: number, seconds: number, op: (loop: number) => Promise<void>): Promise<LoopResult> {
  const latencies: number[] = [];
  const firstErrors: string[] = [];
  let failed = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        try {
          await op(loop);
          latencies.push(performance.now() - t);
        } catch (error) {
          failed++;
          if (firstErrors.length < 3) firstErrors.push(error instanceof Error ? error.message : String(error));
          return;
        }
      }
    }),
  );
  return { ops: latencies.length, seconds: (performance.now() - started) / 1000, latencies: Float64Array.from(latencies), failed, firstErrors };
}

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

/** One person signing in through the pages; the authorization code and its PKCE verifier. */
async function signIn(target: LoginTarget, user: number, params: Record<string, string> = {}): Promise<{ code: string; verifier: string; requests: number }> {
  const agent = new Agent(target.url);
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(12).toString('base64url');
  const url = new URL(`${target.url}/t/${target.tenant}/auth`);
  const query = {
    client_id: target.clientId,
    response_type: 'code',
    redirect_uri: target.redirectUri,
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
async function token(target: LoginTarget, form: Record<string, string>): Promise<Record<string, string>> {
  const response = await fetch(`${target.url}/t/${target.tenant}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(target.clientId, target.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const json = (await response.json()) as Record<string, string>;
  if (response.status !== 200) throw new Error(`${form.grant_type} grant answered ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

/** This thread's Linux id ("<pid>/task/<tid>"), so the main thread can read its CPU time; elsewhere none. */
function ownThreadId(): number | undefined {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return undefined;
  }
}

/** The worker's side: the browsers, the refresh-token chains, and the command loop. */
function serve(target: LoginTarget): void {
  let next = 0;
  let requestsPerLogin = 0;
  // Each refresh loop owns the chains `loop`, `loop + concurrency`, … and sends one request
  // per chain at a time: the token it presents is always the newest of its chain, never one
  // already used (rotation: a used one would revoke the grant).
  let chains: string[] = [];
  let turn: number[] = [];

  const login = async () => {
    requestsPerLogin = (await signIn(target, next++ % target.users)).requests;
  };

  async function openChains(count: number, concurrency: number): Promise<void> {
    chains = new Array<string>(count);
    for (let i = 0; i < count; i += concurrency) {
      await Promise.all(
        Array.from({ length: Math.min(concurrency, count - i) }, async (_, k) => {
          const { code, verifier } = await signIn(target, (i + k) % target.users, { scope: 'openid offline_access', prompt: 'consent' });
          const issued = await token(target, { grant_type: 'authorization_code', code, redirect_uri: target.redirectUri, code_verifier: verifier });
          if (!issued.refresh_token) throw new Error(`no refresh token for scope "${issued.scope}"`);
          chains[i + k] = issued.refresh_token;
        }),
      );
    }
  }

  const refresh = (concurrency: number) => async (loop: number) => {
    const owned = Math.ceil((chains.length - loop) / concurrency);
    const chain = loop + (turn[loop]! % owned) * concurrency;
    turn[loop]!++;
    const rotated = await token(target, { grant_type: 'refresh_token', refresh_token: chains[chain]! });
    if (!rotated.refresh_token || rotated.refresh_token === chains[chain]) throw new Error('the refresh grant did not rotate the refresh token');
    chains[chain] = rotated.refresh_token;
  };

  async function run(command: DriverCommand): Promise<LoopResult | undefined> {
    switch (command.kind) {
      case 'logins':
        return closedLoop(command.concurrency, command.seconds, login);
      case 'open-chains':
        await openChains(command.chains, command.concurrency);
        return undefined;
      case 'refreshes':
        if (chains.length < command.concurrency) throw new TypeError(`${chains.length} refresh chains for ${command.concurrency} concurrent requests`);
        if (turn.length !== command.concurrency) turn = new Array<number>(command.concurrency).fill(0);
        return closedLoop(command.concurrency, command.seconds, refresh(command.concurrency));
    }
  }

  parentPort!.on('message', (command: DriverCommand) => {
    run(command).then(
      (loop) => parentPort!.postMessage({ ok: true, loop, requestsPerLogin } satisfies DriverReply),
      (error: unknown) => parentPort!.postMessage({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies DriverReply),
    );
  });
  parentPort!.postMessage({ tid: ownThreadId() });
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'login-driver') serve((workerData as { target: LoginTarget }).target);

// Node 20 does not apply `--import tsx` to a worker's entry module (ERR_UNKNOWN_FILE_EXTENSION);
// a plain-JavaScript bootstrap registers tsx inside the worker, then imports this file.
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.tsx).then((tsx) => { tsx.register(); return import(workerData.file); }).catch((error) => {
  setImmediate(() => { throw error; });
});
`;

export interface LoginDriver {
  /** Linux thread id of the worker, for its CPU time in /proc/self/task/<tid>/schedstat. */
  readonly tid: number | undefined;
  /** Runs one command; the loop's result for `logins` and `refreshes`. */
  send(command: DriverCommand): Promise<{ loop?: LoopResult; requestsPerLogin: number }>;
  stop(): Promise<void>;
}

/** Starts the browsers in a worker thread; resolves once the worker is ready for commands. */
export function startLoginDriver(target: LoginTarget): Promise<LoginDriver> {
  const worker = new Worker(BOOTSTRAP, {
    eval: true,
    execArgv: [], // the bootstrap registers tsx itself
    workerData: { role: 'login-driver', target, tsx: import.meta.resolve('tsx/esm/api'), file: import.meta.url },
  });
  let pending: { resolve: (reply: DriverReply) => void; reject: (error: Error) => void } | undefined;
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    pending?.reject(error);
    pending = undefined;
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the login driver exited with code ${code}`)));
  return new Promise((resolve, reject) => {
    const notReady = (error: Error) => reject(error);
    const onReady = (message: { tid?: number }) => {
      worker.off('error', notReady);
      worker.on('message', (reply: DriverReply) => {
        pending?.resolve(reply);
        pending = undefined;
      });
      resolve({
        tid: message.tid,
        async send(command) {
          if (failure) throw failure;
          if (pending) throw new Error('the login driver runs one command at a time');
          const reply = await new Promise<DriverReply>((resolveReply, rejectReply) => {
            pending = { resolve: resolveReply, reject: rejectReply };
            worker.postMessage(command);
          });
          if (!reply.ok) throw new Error(`the login driver failed: ${reply.error}`);
          return { loop: reply.loop, requestsPerLogin: reply.requestsPerLogin };
        },
        async stop() {
          worker.removeAllListeners('exit');
          await worker.terminate();
        },
      });
    };
    worker.once('message', onReady);
    worker.once('error', notReady);
    worker.once('exit', (code) => reject(new Error(`the login driver exited with code ${code} before it was ready`)));
  });
}
