import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/defaults.js';
import { GatehouseError } from '../../src/errors.js';
import { bruteForceErrors } from '../../src/identity/brute-force-errors.js';
import { accountKeyOf, createLoginThrottle, ipBucket, progressiveDelayMs, type LoginAdmission, type LoginAttempt, type LoginThrottleOptions } from '../../src/identity/brute-force.js';

const redisUrl = process.env.REDIS_URL;
const defaults = loadConfig({});
const limits = { maxFailuresPerAccount: defaults.loginMaxFailuresPerAccount, maxFailuresPerIp: defaults.loginMaxFailuresPerIp, windowSeconds: defaults.loginFailureWindowSeconds };

const attempt = (overrides: Partial<LoginAttempt> = {}): LoginAttempt => ({ tenantId: 'acme', email: 'alice@example.com', ip: '203.0.113.7', ...overrides });

function admitted(admission: LoginAdmission) {
  assert.equal(admission.allowed, true, `refused: ${JSON.stringify(admission)}`);
  return admission as Extract<LoginAdmission, { allowed: true }>;
}

function refused(admission: LoginAdmission) {
  assert.equal(admission.allowed, false, 'allowed, expected a refusal');
  return admission as Extract<LoginAdmission, { allowed: false }>;
}

/** Plays `count` wrong passwords, each admitted first; returns what each failure locked. */
async function fail(throttle: ReturnType<typeof createLoginThrottle>, count: number, make: (i: number) => LoginAttempt) {
  const locks = [];
  for (let i = 0; i < count; i++) locks.push((await admitted(await throttle.before(make(i))).failed()).locked);
  return locks;
}

describe('login throttle settings', () => {
  it('defaults to 10 failures per account and 100 per IP in a 15-minute window', () => {
    assert.deepEqual(limits, { maxFailuresPerAccount: 10, maxFailuresPerIp: 100, windowSeconds: 900 });
  });

  it('refuses limits that are not positive whole numbers, naming the option', () => {
    for (const bad of [{ maxFailuresPerAccount: 0 }, { maxFailuresPerIp: 1.5 }, { windowSeconds: -1 }]) {
      assert.throws(() => createLoginThrottle({ ...limits, ...bad }), (error: unknown) => error instanceof TypeError && error.message.includes(Object.keys(bad)[0]!));
    }
  });

  it('answers 429 LOGIN_RATE_LIMITED with retryAfterSeconds and nothing about the email', () => {
    const error = bruteForceErrors.create('LOGIN_RATE_LIMITED', { retryAfterSeconds: 42 });
    assert.ok(error instanceof GatehouseError);
    assert.equal(error.code, 'LOGIN_RATE_LIMITED');
    assert.equal(error.status, 429);
    assert.equal(error.message, 'Too many failed sign-ins; try again in 42 seconds');
    assert.deepEqual(error.details, { retryAfterSeconds: 42 });
  });
});

describe('account keys', () => {
  it('digest the email as users compare it, keyed by a secret when one is given', () => {
    const attempt = { tenantId: 'acme', email: ' Ann@Example.COM ', ip: '203.0.113.7' };
    const plain = `acme:${createHash('sha256').update('acme\u0000ann@example.com').digest('base64url')}`;
    assert.equal(accountKeyOf(attempt), plain);
    assert.equal(accountKeyOf({ ...attempt, email: 'ａnn@example.com' }), plain, 'NFKC: a fullwidth letter is the same address');
    const secret = randomBytes(32);
    const keyed = accountKeyOf(attempt, secret);
    assert.match(keyed, /^acme:[\w-]{43}$/);
    assert.notEqual(keyed, plain, 'with a secret, hashing a list of known addresses finds nothing');
    assert.notEqual(keyed, accountKeyOf(attempt, randomBytes(32)));
    assert.equal(keyed, accountKeyOf({ ...attempt, email: 'ann@example.com' }, secret));
  });
});

describe('progressive delay', () => {
  const curve: [number, number][] = [[0, 0], [1, 0], [2, 0], [3, 250], [4, 500], [5, 1000], [6, 2000], [9, 2000], [1000, 2000]];
  for (const [failures, delay] of curve) {
    it(`waits ${delay} ms after ${failures} failures`, () => assert.equal(progressiveDelayMs(failures), delay));
  }
});

describe('client address buckets', () => {
  const table: [string, string][] = [
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ];
  for (const [ip, bucket] of table) it(`counts ${ip} as ${bucket}`, () => assert.equal(ipBucket(ip), bucket));

  it('refuses an attempt whose ip is not an IP address (a wiring mistake)', () => {
    assert.throws(() => ipBucket('unknown'), TypeError);
  });
});

const stores: [string, string | undefined][] = [['memory', undefined]];
if (redisUrl) stores.push(['Redis', redisUrl]);

for (const [store, url] of stores) {
  describe(`login throttle on ${store}`, () => {
    // A random prefix per run: runs never see each other's counters, and cleanup deletes only ours.
    const keyPrefix = `gatehouse-test:${randomUUID()}`;
    const open: ReturnType<typeof createLoginThrottle>[] = [];
    const throttle = (overrides: Partial<LoginThrottleOptions> = {}) => {
      const created = createLoginThrottle({ ...limits, redisUrl: url, keyPrefix: `${keyPrefix}:${randomUUID()}`, ...overrides });
      open.push(created);
      return created;
    };

    after(async () => {
      await Promise.all(open.map((t) => t.close()));
      if (!url) return;
      const redis = new Redis(url);
      const keys: string[] = [];
      for await (const batch of redis.scanStream({ match: `${keyPrefix}:*`, count: 1000 })) keys.push(...(batch as string[]));
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    });

    it('allows 10 wrong passwords for an account and refuses the 11th for the rest of the window, whatever the IP', async () => {
      const t = throttle();
      await fail(t, 10, (i) => attempt({ ip: `198.51.100.${i + 1}` }));
      const refusal = refused(await t.before(attempt({ ip: '192.0.2.99' })));
      assert.equal(refusal.reason, 'account');
      assert.ok(refusal.retryAfterSeconds <= 900 && refusal.retryAfterSeconds >= 895, `Retry-After ${refusal.retryAfterSeconds}`);
    });

    it('reports the lock once, on the failure that used the last slot', async () => {
      const t = throttle();
      const locks = await fail(t, 10, () => attempt());
      assert.deepEqual(locks, [[], [], [], [], [], [], [], [], [], ['account']]);
    });

    it('counts an email in any case and with spaces around it as the same account', async () => {
      const t = throttle();
      await fail(t, 10, (i) => attempt({ email: i % 2 ? 'ALICE@example.com' : ' alice@EXAMPLE.com ' }));
      assert.equal(refused(await t.before(attempt())).reason, 'account');
    });

    it('forgets the failures of an account when its password is right', async () => {
      const t = throttle();
      await fail(t, 9, () => attempt());
      await admitted(await t.before(attempt())).succeeded();
      await fail(t, 10, () => attempt());
      assert.equal(refused(await t.before(attempt())).reason, 'account');
    });

    it('leaves other emails and the same email in another tenant alone when an account is locked', async () => {
      const t = throttle();
      await fail(t, 10, () => attempt());
      refused(await t.before(attempt()));
      assert.equal(admitted(await t.before(attempt({ email: 'bob@example.com' }))).delayMs, 0);
      assert.equal(admitted(await t.before(attempt({ tenantId: 'globex' }))).delayMs, 0);
    });

    it('slows each further guess down: 0, 0, 0, 250, 500, 1000, 2000 ms…', async () => {
      const t = throttle();
      const delays = [];
      for (let i = 0; i < 10; i++) {
        const admission = admitted(await t.before(attempt()));
        delays.push(admission.delayMs);
        await admission.failed();
      }
      assert.deepEqual(delays, [0, 0, 0, 250, 500, 1000, 2000, 2000, 2000, 2000]);
    });

    it('refuses an IP after 100 wrong passwords over as many emails, in its tenant only', async () => {
      const t = throttle();
      const locks = await fail(t, 100, (i) => attempt({ email: `user${i}@example.com` }));
      assert.deepEqual(locks.at(-1), ['ip']);
      const refusal = refused(await t.before(attempt({ email: 'fresh@example.com' })));
      assert.equal(refusal.reason, 'ip');
      assert.ok(refusal.retryAfterSeconds <= 900 && refusal.retryAfterSeconds >= 895, `Retry-After ${refusal.retryAfterSeconds}`);
      admitted(await t.before(attempt({ email: 'fresh@example.com', ip: '203.0.113.8' })));
      admitted(await t.before(attempt({ email: 'fresh@example.com', tenantId: 'globex' })));
    });

    it('counts the addresses of one IPv6 /64 as one client', async () => {
      const t = throttle({ maxFailuresPerIp: 3 });
      await fail(t, 3, (i) => attempt({ email: `user${i}@example.com`, ip: `2001:db8:1:2::${i + 1}` }));
      assert.equal(refused(await t.before(attempt({ email: 'x@example.com', ip: '2001:db8:1:2:ffff::9' }))).reason, 'ip');
      admitted(await t.before(attempt({ email: 'x@example.com', ip: '2001:db8:1:3::1' })));
    });

    it('does not charge an IP for attempts refused because the account is locked', async () => {
      const t = throttle({ maxFailuresPerIp: 12 });
      await fail(t, 10, () => attempt());
      for (let i = 0; i < 5; i++) refused(await t.before(attempt()));
      await fail(t, 2, (i) => attempt({ email: `other${i}@example.com` }));
      assert.equal(refused(await t.before(attempt({ email: 'third@example.com' }))).reason, 'ip');
    });

    it('gives the IP its slot back on a successful sign-in', async () => {
      const t = throttle({ maxFailuresPerIp: 3 });
      await fail(t, 2, (i) => attempt({ email: `user${i}@example.com` }));
      for (let i = 0; i < 5; i++) await admitted(await t.before(attempt({ email: 'right@example.com' }))).succeeded();
      await fail(t, 1, () => attempt({ email: 'last@example.com' }));
      assert.equal(refused(await t.before(attempt({ email: 'next@example.com' }))).reason, 'ip');
    });

    it('lets an account in again once its window has passed', async () => {
      const t = throttle({ windowSeconds: 1, maxFailuresPerAccount: 2 });
      await fail(t, 2, () => attempt());
      const refusal = refused(await t.before(attempt()));
      assert.equal(refusal.retryAfterSeconds, 1);
      await sleep(refusal.retryAfterSeconds * 1000 + 300);
      assert.equal(admitted(await t.before(attempt())).delayMs, 0);
    });

    it('checks exactly 10 of 20 concurrent guesses for one account and counts every failure', async () => {
      const t = throttle();
      const admissions = await Promise.all(Array.from({ length: 20 }, (_, i) => t.before(attempt({ ip: `198.51.100.${i + 1}` }))));
      const allowed = admissions.filter((a) => a.allowed);
      assert.equal(allowed.length, 10);
      const locks = await Promise.all(allowed.map((a) => a.failed()));
      assert.equal(locks.filter((l) => l.locked.includes('account')).length, 1);
      assert.equal(refused(await t.before(attempt())).reason, 'account');
    });

    it('counts 20 concurrent failures from one IP exactly', async () => {
      const t = throttle({ maxFailuresPerIp: 25 });
      const admissions = await Promise.all(Array.from({ length: 20 }, (_, i) => t.before(attempt({ email: `user${i}@example.com` }))));
      await Promise.all(admissions.map((a) => admitted(a).failed()));
      await fail(t, 5, (i) => attempt({ email: `late${i}@example.com` }));
      assert.equal(refused(await t.before(attempt({ email: 'one-more@example.com' }))).reason, 'ip');
    });

    if (url) {
      it('keeps the counters in Redis, keyed by tenant, with no email in any key', async () => {
        const prefix = `${keyPrefix}:${randomUUID()}`;
        const t = throttle({ keyPrefix: prefix });
        await fail(t, 1, () => attempt({ email: 'Carol@Example.com' }));
        const redis = new Redis(url);
        try {
          const keys = (await redis.keys(`${prefix}:*`)).sort();
          assert.equal(keys.length, 2);
          assert.match(keys[0]!, new RegExp(`^${prefix}:account:acme:[\\w-]{43}$`));
          assert.equal(keys[1], `${prefix}:ip:acme:203.0.113.7`);
          assert.ok(keys.every((key) => !key.toLowerCase().includes('carol')));
          const ttl = await redis.ttl(keys[0]!);
          assert.ok(ttl > 890 && ttl <= 900, `TTL ${ttl}`);
        } finally {
          await redis.quit();
        }
      });
    }

    it('settles an admission once', async () => {
      const t = throttle();
      const admission = admitted(await t.before(attempt()));
      await admission.failed();
      await assert.rejects(admission.succeeded(), TypeError);
      await assert.rejects(admission.failed(), TypeError);
    });
  });
}

describe('login throttle while Redis is unreachable', () => {
  it('keeps limiting in memory and reports the store error', async () => {
    const errors: Error[] = [];
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const t = createLoginThrottle({ ...limits, redisUrl: 'redis://127.0.0.1:1', keyPrefix: `gatehouse-test:${randomUUID()}`, onStoreError: (e) => errors.push(e) });
    try {
      await fail(t, 10, () => attempt());
      assert.equal(refused(await t.before(attempt())).reason, 'account');
      admitted(await t.before(attempt({ email: 'bob@example.com' })));
      assert.ok(errors.length > 0);
    } finally {
      await t.close();
    }
  });
});
