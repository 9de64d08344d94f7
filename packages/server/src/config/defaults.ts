import { parseTrustProxy, type TrustProxy } from '../http/client-ip.js';

/**
 * Every Gatehouse option, in one place. Each entry names its environment variable,
 * says what it does, its default, an example and our recommendation. `docs/configuration.md`
 * is generated from this table (`npm run docs:generate`), and boot-time validation reads it too,
 * so an option cannot exist undocumented.
 */
export interface OptionSpec<T> {
  env: string;
  description: string;
  default: T | ((env: Record<string, string | undefined>) => T) | undefined;
  /** Shown in the docs when the default is computed. */
  defaultText?: string;
  example: string;
  recommendation: string;
  parse(raw: string): T;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly variable: string,
    problem: string,
    readonly fix: string,
  ) {
    super(`${variable}: ${problem}. Fix: ${fix}`);
    this.name = 'ConfigError';
  }
}

const SIGNING_ALGS = ['ES256', 'EdDSA', 'RS256', 'PS256'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];
export const signingAlgs: readonly SigningAlg[] = SIGNING_ALGS;

function integer(env: string, min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(env, `"${raw}" is not a whole number`, `set it to an integer between ${min} and ${max}`);
    const value = Number(raw);
    if (value < min || value > max) throw new ConfigError(env, `${value} is out of range`, `set it to an integer between ${min} and ${max}`);
    return value;
  };
}

function url(env: string, protocols: string[]) {
  return (raw: string): string => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new ConfigError(env, `"${raw}" is not a URL`, `use an absolute URL such as ${protocols[0]}//host`);
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new ConfigError(env, `protocol ${parsed.protocol} is not supported`, `use one of ${protocols.join(', ')}`);
    }
    return raw;
  };
}

function oneOf<T extends string>(env: string, values: readonly T[]) {
  return (raw: string): T => {
    if (!values.includes(raw as T)) throw new ConfigError(env, `"${raw}" is not allowed`, `use one of ${values.join(', ')}`);
    return raw as T;
  };
}

function bool(env: string) {
  return (raw: string): boolean => {
    if (['1', 'true', 'yes'].includes(raw)) return true;
    if (['0', 'false', 'no'].includes(raw)) return false;
    throw new ConfigError(env, `"${raw}" is not a boolean`, 'use true or false');
  };
}

/**
 * A key someone typed rather than generated: all zeros, a repeated byte or short pattern,
 * or a counting sequence. 32 random bytes have about 30 distinct values; fewer than 16
 * happens by chance with probability far below 2^-100.
 */
function degenerate(key: Buffer): boolean {
  if (new Set(key).size < 16) return true;
  const step = (key[1]! - key[0]! + 256) % 256;
  return key.every((byte, i) => i === 0 || (byte - key[i - 1]! + 256) % 256 === step);
}

/** Accepts 32 bytes as 64 hex characters or as base64/base64url. */
export function parseMasterKey(raw: string, env = 'GATEHOUSE_MASTER_KEY'): Buffer {
  const trimmed = raw.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64url');
  if (key.length !== 32) {
    throw new ConfigError(env, 'the master key must be exactly 32 bytes', 'generate one with `openssl rand -base64 32` (or 64 hex characters)');
  }
  if (degenerate(key)) {
    throw new ConfigError(env, 'the master key is not random (a repeated byte, a pattern or a counting sequence)', 'generate one with `openssl rand -base64 32`');
  }
  return key;
}

export const options = {
  nodeEnv: {
    env: 'NODE_ENV',
    description: 'Runtime mode. `production` turns on the safety checks: an https public URL and an explicit master key.',
    default: 'development',
    example: 'production',
    recommendation: 'Set `production` on every deployed node.',
    parse: oneOf('NODE_ENV', ['development', 'production', 'test'] as const),
  },
  port: {
    env: 'GATEHOUSE_PORT',
    description: 'TCP port the HTTP server listens on.',
    default: 4455,
    example: '8080',
    recommendation: 'Keep the default unless it collides.',
    parse: integer('GATEHOUSE_PORT', 0, 65535),
  },
  host: {
    env: 'GATEHOUSE_HOST',
    description: 'Interface the HTTP server binds to. The default `::` accepts IPv6 and IPv4 (falls back to 0.0.0.0 where IPv6 is off).',
    default: '::',
    example: '127.0.0.1',
    recommendation: 'Bind to 127.0.0.1 when a reverse proxy on the same host terminates TLS.',
    parse: (raw: string) => raw,
  },
  publicUrl: {
    env: 'GATEHOUSE_PUBLIC_URL',
    description: 'The URL clients use to reach Gatehouse; issuers are `{publicUrl}/t/{tenant}`.',
    default: (env: Record<string, string | undefined>) => `http://localhost:${env.GATEHOUSE_PORT ?? 4455}`,
    defaultText: 'http://localhost:{port}',
    example: 'https://id.example.com',
    recommendation: 'Always https in production (enforced); no trailing slash.',
    parse: (raw: string) => {
      const parsed = new URL(url('GATEHOUSE_PUBLIC_URL', ['http:', 'https:'])(raw));
      // Issuers are built by appending /t/{tenant}; a query, fragment or credentials would end
      // up inside every issuer and redirect URI (OpenID Connect Discovery §3: no query or fragment).
      if (parsed.search || parsed.hash || raw.includes('#') || raw.includes('?') || parsed.username || parsed.password) {
        throw new ConfigError('GATEHOUSE_PUBLIC_URL', `"${raw}" has a query, a fragment or credentials`, 'use scheme, host, optional port and optional path only, e.g. https://id.example.com');
      }
      return raw.replace(/\/+$/, '');
    },
  },
  dataDir: {
    env: 'GATEHOUSE_DATA_DIR',
    description: 'Directory for the embedded SQLite database and the development master key file.',
    default: './data',
    example: '/var/lib/gatehouse',
    recommendation: 'A persistent volume; back it up with the database.',
    parse: (raw: string) => raw,
  },
  databaseUrl: {
    env: 'DATABASE_URL',
    description: 'PostgreSQL connection URL. When unset, Gatehouse uses SQLite in the data directory.',
    default: undefined,
    example: 'postgres://gatehouse:secret@db:5432/gatehouse',
    recommendation: 'PostgreSQL for production and for more than one node.',
    parse: url('DATABASE_URL', ['postgres:', 'postgresql:']),
  },
  redisUrl: {
    env: 'REDIS_URL',
    description: 'Redis URL for counters shared between nodes (rate limits).',
    default: undefined,
    example: 'redis://127.0.0.1:6379',
    recommendation: 'Set it when more than one Gatehouse node runs.',
    parse: url('REDIS_URL', ['redis:', 'rediss:']),
  },
  loginMaxFailuresPerAccount: {
    env: 'GATEHOUSE_LOGIN_MAX_FAILURES_PER_ACCOUNT',
    description: 'Wrong passwords allowed for one account (tenant + email) within the failure window; the next attempt gets 429 until the window ends. A successful sign-in clears the count.',
    default: 10,
    example: '5',
    recommendation: 'Keep 10 or fewer (NIST SP 800-63B allows up to 100); lower it only with a password reset that users can reach, as anyone can lock an account they know the email of.',
    parse: integer('GATEHOUSE_LOGIN_MAX_FAILURES_PER_ACCOUNT', 1, 100),
  },
  loginMaxFailuresPerIp: {
    env: 'GATEHOUSE_LOGIN_MAX_FAILURES_PER_IP',
    description: 'Wrong passwords allowed from one client IP (IPv6: one /64) per tenant within the failure window, whatever the accounts; it stops password spraying across many emails.',
    default: 100,
    example: '300',
    recommendation: 'Raise it when many users sign in from behind one NAT or proxy (and set GATEHOUSE_TRUST_PROXY behind a proxy, or every user shares its IP).',
    parse: integer('GATEHOUSE_LOGIN_MAX_FAILURES_PER_IP', 1, 100000),
  },
  deviceMaxFailuresPerIp: {
    env: 'GATEHOUSE_DEVICE_MAX_FAILURES_PER_IP',
    description: 'Wrong device-flow user codes allowed from one client IP (IPv6: one /64) per tenant within the failure window (RFC 8628 §5.1); further attempts get 429 until the window ends.',
    default: 20,
    example: '50',
    recommendation: 'People mistype a code once or twice; raise it only when many people connect devices from behind one NAT.',
    parse: integer('GATEHOUSE_DEVICE_MAX_FAILURES_PER_IP', 1, 100000),
  },
  deviceMaxFailuresPerTenant: {
    env: 'GATEHOUSE_DEVICE_MAX_FAILURES_PER_TENANT',
    description: 'Wrong device-flow user codes allowed per tenant from all addresses together within the failure window (RFC 8628 §5.1): bounds guessing spread over many IPs.',
    default: 1000,
    example: '5000',
    recommendation: 'With eight base-20 characters (20^8 codes) and codes living 10 minutes, 1,000 guesses per 15 minutes leave a guess-in odds far below one in a million while few codes are live.',
    parse: integer('GATEHOUSE_DEVICE_MAX_FAILURES_PER_TENANT', 1, 10000000),
  },
  loginFailureWindowSeconds: {
    env: 'GATEHOUSE_LOGIN_FAILURE_WINDOW_SECONDS',
    description: 'Window in seconds over which failed sign-ins are counted, starting at the first failure; a locked account or IP stays locked until it ends.',
    default: 900,
    example: '3600',
    recommendation: 'The default 15 minutes: with 10 failures per account that is under 1,000 guesses a day for an attacker.',
    parse: integer('GATEHOUSE_LOGIN_FAILURE_WINDOW_SECONDS', 1, 86400),
  },
  masterKey: {
    env: 'GATEHOUSE_MASTER_KEY',
    description: '32-byte key (base64 or hex) that encrypts private keys at rest (AES-256-GCM). In development a key file `{dataDir}/master.key` (mode 0600) is generated when unset.',
    default: undefined,
    example: '$(openssl rand -base64 32)',
    recommendation: 'Required in production; keep it in a secret manager, never in the database backup.',
    parse: (raw: string) => parseMasterKey(raw),
  },
  bootstrapSecretFile: {
    env: 'GATEHOUSE_BOOTSTRAP_SECRET_FILE',
    description: 'On the very first start, write the bootstrap admin client\'s secret to this file (created mode 0600) instead of printing it on stdout.',
    default: undefined,
    example: '/run/secrets/gatehouse-bootstrap',
    recommendation: 'Set it where stdout is collected by a log system; read the file once, store the secret in your secret manager, delete the file.',
    parse: (raw: string) => raw,
  },
  logLevel: {
    env: 'GATEHOUSE_LOG_LEVEL',
    description: 'pino log level.',
    default: 'info',
    example: 'debug',
    recommendation: '`info` in production.',
    parse: oneOf('GATEHOUSE_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
  },
  signingAlg: {
    env: 'GATEHOUSE_SIGNING_ALG',
    description: 'Algorithm of the signing key generated for a new tenant.',
    default: 'ES256' as SigningAlg,
    example: 'EdDSA',
    recommendation: 'ES256: small, fast and understood by every client library.',
    parse: oneOf('GATEHOUSE_SIGNING_ALG', SIGNING_ALGS),
  },
  accessTokenTtl: {
    env: 'GATEHOUSE_ACCESS_TOKEN_TTL',
    description: 'Default access-token lifetime in seconds for a new API.',
    default: 600,
    example: '300',
    recommendation: 'Keep access tokens short (5–15 minutes); revocation of JWTs is only as fast as their expiry.',
    parse: integer('GATEHOUSE_ACCESS_TOKEN_TTL', 30, 86400),
  },
  secretGraceSeconds: {
    env: 'GATEHOUSE_SECRET_GRACE_SECONDS',
    description: 'How long a rotated client secret keeps working, unless the rotation call sets its own grace period.',
    default: 86400,
    example: '3600',
    recommendation: 'Long enough to roll the new secret out to every instance of the client, no longer.',
    parse: integer('GATEHOUSE_SECRET_GRACE_SECONDS', 0, 30 * 86400),
  },
  sessionIdleSeconds: {
    env: 'GATEHOUSE_SESSION_IDLE_SECONDS',
    description: 'A sign-in session ends after this many seconds without use (sign-in at another application of the tenant counts as use).',
    default: 8 * 3600,
    example: '3600',
    recommendation: 'A working day (8 h) for staff tools; shorter for sensitive applications.',
    parse: integer('GATEHOUSE_SESSION_IDLE_SECONDS', 60, 30 * 86400),
  },
  sessionAbsoluteSeconds: {
    env: 'GATEHOUSE_SESSION_ABSOLUTE_SECONDS',
    description: 'A sign-in session ends this many seconds after the sign-in, however much it is used.',
    default: 7 * 86400,
    example: '86400',
    recommendation: 'A week at most; people then sign in again (OWASP session management).',
    parse: integer('GATEHOUSE_SESSION_ABSOLUTE_SECONDS', 60, 365 * 86400),
  },
  refreshTokenIdleSeconds: {
    env: 'GATEHOUSE_REFRESH_TOKEN_IDLE_SECONDS',
    description: 'A refresh token expires after this many seconds unused, unless the client sets its own lifetime.',
    default: 14 * 86400,
    example: '86400',
    recommendation: 'Days to weeks: every use rotates the token, and a reused one revokes the whole grant.',
    parse: integer('GATEHOUSE_REFRESH_TOKEN_IDLE_SECONDS', 60, 365 * 86400),
  },
  refreshTokenAbsoluteSeconds: {
    env: 'GATEHOUSE_REFRESH_TOKEN_ABSOLUTE_SECONDS',
    description: 'Refreshing stops this many seconds after the sign-in that started the grant, unless the client sets its own lifetime.',
    default: 30 * 86400,
    example: '604800',
    recommendation: 'A month for ordinary applications; people then sign in again.',
    parse: integer('GATEHOUSE_REFRESH_TOKEN_ABSOLUTE_SECONDS', 60, 365 * 86400),
  },
  passwordMemoryKib: {
    env: 'GATEHOUSE_PASSWORD_MEMORY_KIB',
    description: 'Argon2id memory cost of new password hashes, in KiB. Stored hashes keep their own parameters and are rehashed at the next sign-in when these change.',
    default: 19456,
    example: '47104',
    recommendation: 'At least 19456 (OWASP); raise it while a hash stays under ~100 ms on your nodes and memory allows one per concurrent sign-in.',
    parse: integer('GATEHOUSE_PASSWORD_MEMORY_KIB', 8192, 1048576),
  },
  passwordTimeCost: {
    env: 'GATEHOUSE_PASSWORD_TIME_COST',
    description: 'Argon2id passes over the memory for new password hashes.',
    default: 2,
    example: '3',
    recommendation: 'At least 2 with 19456 KiB; use 3 or more when you lower the memory (OWASP: 12288 KiB with 3 passes).',
    parse: integer('GATEHOUSE_PASSWORD_TIME_COST', 1, 10),
  },
  passwordParallelism: {
    env: 'GATEHOUSE_PASSWORD_PARALLELISM',
    description: 'Argon2id lanes of new password hashes (threads per hash).',
    default: 1,
    example: '2',
    recommendation: 'Keep 1: concurrent sign-ins already use the cores.',
    parse: integer('GATEHOUSE_PASSWORD_PARALLELISM', 1, 16),
  },
  providerPoolSize: {
    env: 'GATEHOUSE_PROVIDER_POOL_SIZE',
    description: 'How many tenants keep a live OAuth engine in memory; the least recently used is dropped beyond it.',
    default: 100,
    example: '1000',
    recommendation: 'At least the number of tenants that receive traffic every minute.',
    parse: integer('GATEHOUSE_PROVIDER_POOL_SIZE', 1, 100000),
  },
  adminTokenTtl: {
    env: 'GATEHOUSE_ADMIN_TOKEN_TTL',
    description: 'Lifetime in seconds of access tokens for Gatehouse\'s own APIs (urn:gatehouse:admin, urn:gatehouse:tenant); applied to them at every start.',
    default: 300,
    example: '120',
    recommendation: 'Short: a leaked admin token lives this long unless it or its client is revoked.',
    parse: integer('GATEHOUSE_ADMIN_TOKEN_TTL', 30, 3600),
  },
  bodyLimit: {
    env: 'GATEHOUSE_BODY_LIMIT',
    description: 'Largest accepted request body in bytes; larger ones get 413. Bulk check, relationship writes and imports, schema and policies have their own limits (docs/authz.md).',
    default: 65536,
    example: '131072',
    recommendation: 'Keep it small: no OAuth request needs more.',
    parse: integer('GATEHOUSE_BODY_LIMIT', 1024, 10 * 1024 * 1024),
  },
  auditFlushMs: {
    env: 'GATEHOUSE_AUDIT_FLUSH_MS',
    description: 'Longest time an audit event waits in memory before its batch is written.',
    default: 200,
    example: '1000',
    recommendation: 'Short: with GATEHOUSE_AUDIT_MODE=async a crash loses at most this window of events (durable events are written at once).',
    parse: integer('GATEHOUSE_AUDIT_FLUSH_MS', 10, 60000),
  },
  auditMode: {
    env: 'GATEHOUSE_AUDIT_MODE',
    description:
      'durable: a token response and a permission decision leave only once their audit event is written (events of concurrent requests share one write), so a crash loses no event of an answer that was sent; async: those events are written in the background every GATEHOUSE_AUDIT_FLUSH_MS, and a crash loses the last ones. Either way an admin or CLI change writes its event in its own transaction.',
    default: 'durable' as 'durable' | 'async',
    example: 'async',
    recommendation: 'durable. async only where losing the last fraction of a second of the trail on a crash is acceptable.',
    parse: oneOf('GATEHOUSE_AUDIT_MODE', ['durable', 'async'] as const),
  },
  auditRetentionDays: {
    env: 'GATEHOUSE_AUDIT_RETENTION_DAYS',
    description: 'Audit events older than this many days are deleted (checked every hour); 0 keeps them forever.',
    default: 365,
    example: '90',
    recommendation: 'As long as your compliance rules ask for (often one year); export events elsewhere if you need them longer.',
    parse: integer('GATEHOUSE_AUDIT_RETENTION_DAYS', 0, 36500),
  },
  changePollMs: {
    env: 'GATEHOUSE_CHANGE_POLL_MS',
    description: 'On SQLite, how often other processes on the same database are looked for (PostgreSQL uses LISTEN/NOTIFY).',
    default: 1000,
    example: '250',
    recommendation: 'The default; lower only when several processes share one SQLite file.',
    parse: integer('GATEHOUSE_CHANGE_POLL_MS', 50, 60000),
  },
  trustProxy: {
    env: 'GATEHOUSE_TRUST_PROXY',
    description: 'Which reverse proxies are believed about the client address (X-Forwarded-For, used for rate limits and the audit trail) and X-Forwarded-Proto: `false`, a hop count (`1` = the nearest proxy; `true` means `1`), or a comma-separated list of proxy addresses and CIDR networks. X-Forwarded-For is read from the right, one entry per trusted hop, so a client cannot choose its own address by sending the header.',
    default: false as TrustProxy,
    defaultText: 'false',
    example: '10.0.0.0/8,192.168.1.5',
    recommendation: 'The number of proxies in front of Gatehouse, or better their addresses; false when clients connect directly.',
    parse: (raw: string): TrustProxy => parseTrustProxy(raw, (problem) => {
      throw new ConfigError('GATEHOUSE_TRUST_PROXY', problem, 'use false, a hop count such as 1, or addresses/CIDR networks such as 10.0.0.0/8,192.168.1.5');
    }),
  },
  allowPrivateOutbound: {
    env: 'GATEHOUSE_ALLOW_PRIVATE_OUTBOUND',
    description: 'Let requests Gatehouse makes on its own (back-channel logout) reach private, loopback and other special-use addresses. Off, such targets are refused (SSRF protection): the address is resolved and checked before any connection opens, and back-channel logout URIs naming a private or loopback address are refused at registration.',
    default: false,
    example: 'true',
    recommendation: 'Keep false unless applications on a private network must receive back-channel logout; an admin who registers a client could otherwise make Gatehouse call internal services.',
    parse: bool('GATEHOUSE_ALLOW_PRIVATE_OUTBOUND'),
  },
} satisfies Record<string, OptionSpec<unknown>>;

type Options = typeof options;
type ValueOf<K extends keyof Options> = Options[K] extends OptionSpec<infer T> ? T : never;

export type Config = { [K in keyof Options]: Options[K]['default'] extends undefined ? ValueOf<K> | undefined : ValueOf<K> } & {
  /** True when NODE_ENV is production. */
  production: boolean;
};

/**
 * Reads and validates every option. Throws a ConfigError naming the variable and the fix;
 * in production it refuses unsafe settings instead of running with them.
 */
/** GATEHOUSE_* variables read elsewhere than this table: the CLI's client secret, the test suite's database. */
const OTHER_VARIABLES = new Set(['GATEHOUSE_CLIENT_SECRET', 'GATEHOUSE_TEST_DATABASE_URL']);

/**
 * GATEHOUSE_* variables that are no setting: a misspelt one (`GATEHOUSE_PROT`) would
 * otherwise be ignored in silence. Each comes with the setting it most likely meant, if one
 * is within three edits.
 */
export function unknownVariables(env: Record<string, string | undefined> = process.env): { name: string; meant?: string }[] {
  const known = Object.values(options).map((o) => o.env as string);
  return Object.keys(env)
    .filter((name) => name.startsWith('GATEHOUSE_') && !known.includes(name) && !OTHER_VARIABLES.has(name))
    .sort()
    .map((name) => {
      const [meant] = known.map((k) => [k, editDistance(name, k)] as const).filter(([, d]) => d <= 3).sort((a, b) => a[1] - b[1]);
      return meant ? { name, meant: meant[0] } : { name };
    });
}

/** Levenshtein distance, two rows at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(options) as [string, OptionSpec<unknown>][]) {
    const raw = env[spec.env];
    if (raw !== undefined && raw !== '') out[key] = spec.parse(raw);
    else out[key] = typeof spec.default === 'function' ? (spec.default as (e: typeof env) => unknown)(env) : spec.default;
  }
  const config = out as Config;
  config.production = config.nodeEnv === 'production';
  if (config.production) {
    const publicUrl = new URL(config.publicUrl);
    const local = ['localhost', '127.0.0.1', '[::1]'].includes(publicUrl.hostname);
    if (publicUrl.protocol !== 'https:' && !local) {
      throw new ConfigError('GATEHOUSE_PUBLIC_URL', `${config.publicUrl} is not https`, 'serve Gatehouse over https (terminate TLS at a proxy and set the https URL here)');
    }
    if (!config.masterKey) {
      throw new ConfigError('GATEHOUSE_MASTER_KEY', 'is required when NODE_ENV=production', 'set it to 32 random bytes, e.g. `openssl rand -base64 32`');
    }
  }
  return config;
}
