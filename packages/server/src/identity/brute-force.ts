import { createHash, createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';
import { emailKeyOf } from './users.js';

/**
 * Brute-force protection for password sign-in (OWASP Authentication Cheat Sheet, "Account
 * lockout"; NIST SP 800-63B §5.2.2 "Rate limiting"). Two fixed-window counters, both kept by
 * `rate-limiter-flexible` (in memory, or in Redis when several nodes must share them):
 *
 * - per account (tenant + lower-cased email): stops guessing one user's password;
 * - per client IP (IPv6: its /64) within the tenant: stops spraying passwords over many emails.
 *
 * A window starts at the first failure and lasts `windowSeconds`; once a counter holds its
 * maximum of failures, every further attempt is refused until the window ends (the temporary
 * lock), with `Retry-After` = what is left of that window. A successful sign-in clears the
 * account counter (not the IP one: a sprayer may know one password of its own).
 *
 * Every attempt takes a slot *before* its password is checked, atomically (an `INCRBY` in a
 * Lua script on Redis), rather than counting after the fact: a check-then-count design lets
 * an attacker who sends 1,000 guesses at once past a limit of 10. So at most
 * `maxFailuresPerAccount` passwords are ever checked per account and window, concurrency or not.
 *
 * Unknown emails are counted like known ones (the caller does not tell, and must not), so
 * the 429 reveals nothing about which accounts exist.
 *
 * Time is kept by the store (Redis key TTLs, or the library's own timers in memory), so no
 * clock is injected: a fixed window's end is the store's business.
 */

/** One password sign-in attempt, as the login step sees it. */
export interface LoginAttempt {
  tenantId: string;
  /** As typed: normalised here as users compare emails (NFKC, lower case). Never stored or logged: keys carry its SHA-256. */
  email: string;
  /** The client address (`request.ip`, which honours GATEHOUSE_TRUST_PROXY). */
  ip: string;
}

export type LockReason = 'account' | 'ip';

/** The answer of `beforeUserCode()`: look the code up and report whether it existed, or answer 429. */
export type UserCodeAdmission =
  | { allowed: true; found(): Promise<void> }
  | { allowed: false; retryAfterSeconds: number; reason: 'ip' | 'tenant' };

/** The answer of `before()`: go on (after `delayMs`) and report the outcome, or answer 429. */
export type LoginAdmission =
  | {
      allowed: true;
      /** How long to wait before checking the password: see `progressiveDelayMs`. */
      delayMs: number;
      /**
       * The password was wrong (or the account unknown). Returns the limits this failure
       * has just locked, to audit as `login.locked`: empty almost always.
       */
      failed(): Promise<{ locked: LockReason[] }>;
      /** The password was right: forgets the account's failures and gives the IP its slot back. */
      succeeded(): Promise<void>;
    }
  | { allowed: false; retryAfterSeconds: number; reason: LockReason };

export interface LoginThrottleOptions {
  /** When set, counters live in Redis and every node shares them; else in this process. */
  redisUrl?: string | undefined;
  maxFailuresPerAccount: number;
  maxFailuresPerIp: number;
  windowSeconds: number;
  /** Wrong device user codes (RFC 8628 §5.1) per client IP and per tenant within the window. */
  maxUserCodeFailuresPerIp?: number;
  maxUserCodeFailuresPerTenant?: number;
  /** Prefix of every counter key; tests use a random one. */
  keyPrefix?: string;
  /**
   * Key of the HMAC that turns emails into counter keys. Without it a plain SHA-256 is used,
   * which anyone holding a list of addresses can reverse by hashing them.
   */
  keySecret?: Buffer;
  /** Receives Redis connection errors (to log them); the throttle carries on in memory meanwhile. */
  onStoreError?: (error: Error) => void;
}

/**
 * The delay curve: no delay for the first 3 failures of an account (typos), then 250 ms
 * doubling with each further failure, capped at 2 s — 0, 0, 0, 250, 500, 1000, 2000, 2000…
 * It slows scripted guessing without making a person who mistyped wait, and the cap keeps a
 * victim's own sign-in bearable while someone else hammers the account.
 */
export function progressiveDelayMs(previousFailures: number): number {
  if (previousFailures < FREE_FAILURES) return 0;
  return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (previousFailures - FREE_FAILURES));
}

const FREE_FAILURES = 3;
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 2000;

// A login must not hang on a sick Redis: past these, the in-memory insurance answers.
const REDIS_COMMAND_TIMEOUT_MS = 500;
const REDIS_CONNECT_TIMEOUT_MS = 2000;

/** The counter key of an account: the tenant, then a digest of the email as users compare it (no email in any store). */
export function accountKeyOf({ tenantId, email }: LoginAttempt, secret?: Buffer): string {
  const text = `${tenantId}\0${emailKeyOf(email)}`;
  const digest = secret ? createHmac('sha256', secret).update(text) : createHash('sha256').update(text);
  return `${tenantId}:${digest.digest('base64url')}`;
}

/**
 * The counter key of an address. An IPv6 client usually holds a whole /64 (SLAAC, privacy
 * addresses), so counting single IPv6 addresses would give it 2^64 fresh budgets; an
 * IPv4-mapped IPv6 address is its IPv4 address.
 */
export function ipBucket(ip: string): string {
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family !== 6) throw new TypeError(`LoginAttempt.ip must be an IP address, not ${JSON.stringify(ip.slice(0, 64))}`);
  const groups = ipv6Groups(ip);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (zone id dropped, dotted tail folded in). */
function ipv6Groups(ip: string): number[] {
  let text = ip.split('%')[0]!;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => parseInt(g, 16));
}

function whole(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new TypeError(`createLoginThrottle: ${name} must be an integer between ${min} and ${max}, not ${value}`);
}

const retryAfter = (res: RateLimiterRes): number => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

/**
 * Builds the throttle. With `redisUrl`, counters are shared through Redis; when Redis cannot
 * be reached (down, timing out, not yet connected) each call falls back to an in-memory
 * limiter of the same limits (`insuranceLimiter`): sign-in stays available and still
 * limited, per node, instead of failing closed (every user locked out by a cache outage) or
 * open (no limit at all). With N nodes an attacker gets at most N times the limit while
 * Redis is away.
 *
 * @example
 * const throttle = createLoginThrottle({ redisUrl: config.redisUrl, maxFailuresPerAccount: 10, maxFailuresPerIp: 100, windowSeconds: 900 });
 * const admission = await throttle.before({ tenantId, email, ip: request.ip });
 * if (!admission.allowed) throw bruteForceErrors.create('LOGIN_RATE_LIMITED', { retryAfterSeconds: admission.retryAfterSeconds });
 * await setTimeout(admission.delayMs);
 * if (await passwordIsRight()) await admission.succeeded();
 * else for (const reason of (await admission.failed()).locked) audit('login.locked', { reason });
 */
export function createLoginThrottle(options: LoginThrottleOptions) {
  const { redisUrl, maxFailuresPerAccount, maxFailuresPerIp, windowSeconds, keyPrefix = 'gatehouse:login', onStoreError } = options;
  whole('maxFailuresPerAccount', maxFailuresPerAccount, 1, 1_000_000);
  whole('maxFailuresPerIp', maxFailuresPerIp, 1, 1_000_000);
  whole('windowSeconds', windowSeconds, 1, 31 * 86400);

  let redis: Redis | undefined;
  let connected: Promise<unknown> = Promise.resolve();
  if (redisUrl) {
    redis = new Redis(redisUrl, {
      lazyConnect: true,
      // rate-limiter-flexible's advice: fail a command at once while disconnected, so the
      // insurance limiter answers instead of the login waiting for a reconnect.
      enableOfflineQueue: false,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    });
    redis.on('error', (error: Error) => onStoreError?.(error));
    // Until the first connection is up (or has failed), calls wait for it: otherwise the first
    // sign-ins after a start would be counted in memory and those after in Redis.
    connected = redis.connect().catch(() => undefined);
  }

  const limiter = (kind: string, points: number): RateLimiterAbstract => {
    const common = { points, duration: windowSeconds, keyPrefix: `${keyPrefix}:${kind}` };
    if (!redis) return new RateLimiterMemory(common);
    return new RateLimiterRedis({ ...common, storeClient: redis, rejectIfRedisNotReady: true, insuranceLimiter: new RateLimiterMemory(common) });
  };
  const accounts = limiter('account', maxFailuresPerAccount);
  const ips = limiter('ip', maxFailuresPerIp);
  const { maxUserCodeFailuresPerIp = 20, maxUserCodeFailuresPerTenant = 1000 } = options;
  whole('maxUserCodeFailuresPerIp', maxUserCodeFailuresPerIp, 1, 1_000_000);
  whole('maxUserCodeFailuresPerTenant', maxUserCodeFailuresPerTenant, 1, 10_000_000);
  const userCodeIps = limiter('device-ip', maxUserCodeFailuresPerIp);
  const userCodeTenants = limiter('device-tenant', maxUserCodeFailuresPerTenant);

  // The tenant leads every key, so tenants never share a counter and one tenant's keys can be
  // found; the account part is a digest (no email in Redis), salted with the tenant as well.
  // The email as users compare it (emailKeyOf): every way of writing one address shares a counter.
  const accountKey = (attempt: LoginAttempt) => accountKeyOf(attempt, options.keySecret);
  const ipKey = ({ tenantId, ip }: LoginAttempt) => `${tenantId}:${ipBucket(ip)}`;

  // `penalty` is the same atomic increment as `consume` but always resolves with the count,
  // so a refusal is our decision, not a rejected promise.
  const take = (store: RateLimiterAbstract, key: string) => store.penalty(key, 1);

  async function before(attempt: LoginAttempt): Promise<LoginAdmission> {
    const account = accountKey(attempt);
    const ip = ipKey(attempt);
    await connected;

    const ipSlot = await take(ips, ip);
    if (ipSlot.consumedPoints > maxFailuresPerIp) return { allowed: false, retryAfterSeconds: retryAfter(ipSlot), reason: 'ip' };
    const accountSlot = await take(accounts, account);
    if (accountSlot.consumedPoints > maxFailuresPerAccount) {
      // No password is checked, so this was no guess from that IP: give its slot back.
      await ips.reward(ip, 1);
      return { allowed: false, retryAfterSeconds: retryAfter(accountSlot), reason: 'account' };
    }

    let settled = false;
    const settle = () => {
      if (settled) throw new TypeError('A login admission is settled once: failed() or succeeded(), not both or twice');
      settled = true;
    };
    return {
      allowed: true,
      delayMs: progressiveDelayMs(accountSlot.consumedPoints - 1),
      async failed() {
        settle();
        // The slot was taken in before(); this failure locks a limit when it held the last slot.
        const locked: LockReason[] = [];
        if (accountSlot.consumedPoints === maxFailuresPerAccount) locked.push('account');
        if (ipSlot.consumedPoints === maxFailuresPerIp) locked.push('ip');
        return { locked };
      },
      async succeeded() {
        settle();
        await Promise.all([accounts.delete(account), ips.reward(ip, 1)]);
      },
    };
  }

  /**
   * RFC 8628 §5.1: a user code is short enough to be typed, so guesses at the verification
   * page are limited, per client IP (within the tenant) and per tenant over all addresses
   * (guessing spread over many IPs). As for passwords, every lookup takes its slot before the
   * code is looked up, atomically, so parallel guesses cannot pass the limit; a code that
   * existed gives the slots back.
   */
  async function beforeUserCode({ tenantId, ip }: { tenantId: string; ip: string }): Promise<UserCodeAdmission> {
    const ipKey = `${tenantId}:${ipBucket(ip)}`;
    await connected;
    const ipSlot = await take(userCodeIps, ipKey);
    if (ipSlot.consumedPoints > maxUserCodeFailuresPerIp) return { allowed: false, retryAfterSeconds: retryAfter(ipSlot), reason: 'ip' };
    const tenantSlot = await take(userCodeTenants, tenantId);
    if (tenantSlot.consumedPoints > maxUserCodeFailuresPerTenant) {
      await userCodeIps.reward(ipKey, 1);
      return { allowed: false, retryAfterSeconds: retryAfter(tenantSlot), reason: 'tenant' };
    }
    return {
      allowed: true,
      async found() {
        await Promise.all([userCodeIps.reward(ipKey, 1), userCodeTenants.reward(tenantId, 1)]);
      },
    };
  }

  return {
    before,
    beforeUserCode,
    async close(): Promise<void> {
      if (!redis) return;
      await connected;
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
