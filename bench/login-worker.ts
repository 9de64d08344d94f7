/**
 * The browsers of the sign-in benchmark (`bench/login.ts`), run in a child process so that
 * the benchmark's process is the server alone: the client's fetch, cookie jar, HTML
 * scraping and PKCE hashing, and the garbage collection of all that (V8 runs it on helper
 * threads a worker thread would share with the server), would otherwise be counted as the
 * server's CPU and event-loop time.
 *
 * The benchmark starts it with `startLoginDriver()` and sends one command at a time: a
 * closed loop of logins, the sign-ins that open the refresh-token chains, or a closed loop
 * of refresh grants. Each command answers with the operations' count, duration and
 * latencies; CPU is measured by the benchmark, which knows this process's id.
 *
 * `closedLoop` is also used by the benchmark for the raw Argon2id baseline.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fork } from 'node:child_process';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
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

interface Reply {
  status: number;
  location?: string;
  setCookie: string[];
  body: string;
}

// node:http over kept-alive connections rather than fetch: the client shares the machine's
// cores with the server, and fetch costs it several times more CPU per request.
const connections = new http.Agent({ keepAlive: true });

function send(url: URL, method: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent: connections }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, location: response.headers.location, setCookie: response.headers['set-cookie'] ?? [], body: text }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** A browser without a screen: a cookie jar (names only) and redirects followed by hand. */
class Agent {
  readonly cookies = new Map<string, string>();
  requests = 0;
  constructor(private readonly origin: string) {}

  async request(url: string, form?: URLSearchParams): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'text/html' };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    this.requests++;
    const reply = await send(new URL(url, this.origin), form ? 'POST' : 'GET', headers, form?.toString());
    for (const line of reply.setCookie) {
      const pair = line.split(';')[0]!;
      const at = pair.indexOf('=');
      const value = pair.slice(at + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(pair.slice(0, at));
      else this.cookies.set(pair.slice(0, at), value);
    }
    return reply;
  }

  /** Follows redirects inside Gatehouse; stops at a page, or at the application's redirect URI. */
  async follow(url: string, form?: URLSearchParams): Promise<{ status: number; page?: string; callback?: URL }> {
    let reply = await this.request(url, form);
    for (let hops = 0; hops < 10 && reply.status >= 300 && reply.status < 400; hops++) {
      const location = new URL(reply.location!, this.origin);
      if (location.origin !== this.origin) return { status: reply.status, callback: location };
      reply = await this.request(location.href);
    }
    return { status: reply.status, page: reply.body };
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
  const done = await agent.follow(login, new URLSearchParams({ csrf, email: emailOf(user), password: passwordOf(user) }));
  const code = done.callback?.searchParams.get('code');
  if (!code || done.callback!.searchParams.get('state') !== state) throw new Error(`no code at the redirect URI: ${done.status} ${done.callback?.href ?? done.page?.slice(0, 200)}`);
  return { code, verifier, requests: agent.requests };
}

/** A form POST to the tenant's token endpoint with client_secret_basic. */
async function token(target: LoginTarget, form: Record<string, string>): Promise<Record<string, string>> {
  const reply = await send(new URL(`${target.url}/t/${target.tenant}/token`), 'POST', { authorization: basicAuth(target.clientId, target.clientSecret), 'content-type': 'application/x-www-form-urlencoded' }, new URLSearchParams(form).toString());
  const json = JSON.parse(reply.body) as Record<string, string>;
  if (reply.status !== 200) throw new Error(`${form.grant_type} grant answered ${reply.status}: ${JSON.stringify(json)}`);
  return json;
}

/** The child's side: the browsers, the refresh-token chains, and the command loop. */
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

  const reply = (message: DriverReply | 'ready') => process.send!(message);
  process.on('message', (command: DriverCommand) => {
    run(command).then(
      (loop) => reply({ ok: true, loop, requestsPerLogin }),
      (error: unknown) => reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  // The benchmark going away (killed, crashed) takes the browsers with it.
  process.on('disconnect', () => process.exit(0));
  reply('ready');
}

const DRIVER_TARGET = 'GATEHOUSE_BENCH_LOGIN_DRIVER';
if (process.send && process.env[DRIVER_TARGET]) serve(JSON.parse(process.env[DRIVER_TARGET]) as LoginTarget);

export interface LoginDriver {
  /** The child process's id, for its CPU time in /proc/<pid>/task/<tid>/schedstat. */
  readonly pid: number;
  /** Runs one command; the loop's result for `logins` and `refreshes`. */
  send(command: DriverCommand): Promise<{ loop?: LoopResult; requestsPerLogin: number }>;
  stop(): Promise<void>;
}

/** Starts the browsers in a child process; resolves once it is ready for commands. */
export function startLoginDriver(target: LoginTarget): Promise<LoginDriver> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, [DRIVER_TARGET]: JSON.stringify(target) },
    // Structured clone: the latencies stay a Float64Array.
    serialization: 'advanced',
  });
  let pending: { resolve: (reply: DriverReply) => void; reject: (error: Error) => void } | undefined;
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    pending?.reject(error);
    pending = undefined;
  };
  child.on('error', fail);
  child.on('exit', (code, signal) => fail(new Error(`the login driver exited (${signal ?? `code ${code}`})`)));
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`the login driver exited (${signal ?? `code ${code}`}) before it was ready`)));
    child.once('message', () => {
      child.on('message', (reply: DriverReply) => {
        pending?.resolve(reply);
        pending = undefined;
      });
      resolve({
        pid: child.pid!,
        async send(command) {
          if (failure) throw failure;
          if (pending) throw new Error('the login driver runs one command at a time');
          const reply = await new Promise<DriverReply>((resolveReply, rejectReply) => {
            pending = { resolve: resolveReply, reject: rejectReply };
            child.send(command);
          });
          if (!reply.ok) throw new Error(`the login driver failed: ${reply.error}`);
          return { loop: reply.loop, requestsPerLogin: reply.requestsPerLogin };
        },
        async stop() {
          child.removeAllListeners('exit');
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((done) => child.once('exit', done));
          child.kill();
          await exited;
        },
      });
    });
  });
}
