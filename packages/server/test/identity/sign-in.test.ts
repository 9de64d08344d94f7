import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLoginThrottle } from '../../src/identity/brute-force.js';
import { createPasswordHasher, type PasswordHasher } from '../../src/identity/passwords.js';
import { createSignInAccounts } from '../../src/identity/sign-in.js';
import { createUserService, type UserService } from '../../src/identity/users.js';
import type { SignInAccounts } from '../../src/oauth/index.js';
import { openDatabase, type DatabaseHandle } from '../../src/store/database.js';
import { createIdentityRepository } from '../../src/store/identity-repository.js';
import { createRepositories } from '../../src/store/repositories.js';
import { dialects, freshPostgres, testClock } from '../helpers.js';

// Argon2's smallest settings keep the suite fast. Hashes made with `outdated` need a rehash
// when `current` verifies them (the operator raised the cost since).
const outdated = createPasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
const current = createPasswordHasher({ memoryCost: 2048, timeCost: 1, parallelism: 1 });
const OLD_PASSWORD = 'plum tree under snow';
const NEW_PASSWORD = 'a brand new admin-set passphrase';

for (const dialect of dialects) {
  describe(`password sign-in (${dialect})`, () => {
    let handle: DatabaseHandle;
    let dataDir: string;
    let dropPostgres: (() => Promise<void>) | undefined;
    let users: UserService;
    const throttle = createLoginThrottle({ maxFailuresPerAccount: 10, maxFailuresPerIp: 100, windowSeconds: 900, keyPrefix: `test:${randomUUID()}` });
    const clock = testClock();
    let rehashErrors: unknown[] = [];

    const accountsWith = (hasher: PasswordHasher): SignInAccounts =>
      createSignInAccounts({ users, hasher, throttle, auditKey: Buffer.alloc(32, 7), wait: async () => {}, onRehashError: (error) => rehashErrors.push(error) });
    const storedHash = async (id: string) => (await users.findById('acme', id))!.passwordHash!;

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-sign-in-'));
      const pg = dialect === 'postgres' ? await freshPostgres() : undefined;
      dropPostgres = pg?.drop;
      handle = await openDatabase({ databaseUrl: pg?.url, dataDir });
      await createRepositories(handle).tenants.create({ id: 'acme', displayName: 'Acme', createdAt: clock() });
      // The service writes hashes at the outdated cost, as the server did before the cost was raised.
      users = createUserService({ store: createIdentityRepository(handle), hasher: outdated, clock });
    });
    after(async () => {
      await throttle.close();
      await handle.close();
      await dropPostgres?.();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('names the account a failed sign-in tried: the user id, or an HMAC of the normalised email, never the email', async () => {
      const user = await users.create('acme', { email: 'cat@example.org', password: OLD_PASSWORD });
      const accounts = accountsWith(current);
      const attempt = (email: string) => accounts.authenticate({ tenantId: 'acme', email, password: 'not the password', ip: '203.0.113.8' });
      const known = await attempt('cat@example.org');
      assert.equal(known.ok, false);
      assert.equal(!known.ok && known.account, user.id);
      const unknown = await attempt('nobody@example.org');
      const sameUnknown = await attempt('  NOBODY@example.org ');
      const otherUnknown = await attempt('someone-else@example.org');
      assert.ok(!unknown.ok && !sameUnknown.ok && !otherUnknown.ok);
      assert.match(unknown.account, /^email-hmac:[A-Za-z0-9_-]{43}$/);
      assert.equal(sameUnknown.account, unknown.account, 'the same address, however typed, has one name');
      assert.notEqual(otherUnknown.account, unknown.account);
      assert.ok(!unknown.account.includes('nobody'));
      // Another key (another installation's master key) gives another name: not a plain hash anyone can recompute.
      const elsewhere = createSignInAccounts({ users, hasher: current, throttle, auditKey: Buffer.alloc(32, 8), wait: async () => {} });
      const there = await elsewhere.authenticate({ tenantId: 'acme', email: 'nobody@example.org', password: 'x', ip: '203.0.113.8' });
      assert.ok(!there.ok && there.account !== unknown.account);
    });

    it('rehashes a right password whose hash has outdated parameters', async () => {
      rehashErrors = [];
      const user = await users.create('acme', { email: 'ann@example.org', password: OLD_PASSWORD });
      assert.equal((await current.verify(await storedHash(user.id), OLD_PASSWORD)).needsRehash, true);

      const outcome = await accountsWith(current).authenticate({ tenantId: 'acme', email: 'ann@example.org', password: OLD_PASSWORD, ip: '203.0.113.7' });
      assert.deepEqual(outcome, { ok: true, accountId: user.id });
      assert.deepEqual(await current.verify(await storedHash(user.id), OLD_PASSWORD), { ok: true, needsRehash: false });
      assert.deepEqual(rehashErrors, []);
    });

    it('keeps a password reset that lands between the check of the old password and its rehash', async () => {
      rehashErrors = [];
      const user = await users.create('acme', { email: 'bob@example.org', password: OLD_PASSWORD });
      // The sign-in hashes the password again only after verifying it; the admin's reset is
      // slipped in right there, before the rehash is stored.
      let resets = 0;
      const resetDuringRehash: PasswordHasher = {
        ...current,
        async hash(password) {
          const rehashed = await current.hash(password);
          resets++;
          await users.setPassword('acme', user.id, NEW_PASSWORD);
          return rehashed;
        },
      };

      await accountsWith(resetDuringRehash).authenticate({ tenantId: 'acme', email: 'bob@example.org', password: OLD_PASSWORD, ip: '203.0.113.7' });
      assert.equal(resets, 1);
      assert.deepEqual(rehashErrors, []);
      const stored = await storedHash(user.id);
      assert.equal((await current.verify(stored, NEW_PASSWORD)).ok, true, 'the reset was overwritten');
      assert.equal((await current.verify(stored, OLD_PASSWORD)).ok, false, 'the old password works again');
      // And from now on only the new password signs in.
      const accounts = accountsWith(current);
      assert.equal((await accounts.authenticate({ tenantId: 'acme', email: 'bob@example.org', password: OLD_PASSWORD, ip: '203.0.113.7' })).ok, false);
      assert.equal((await accounts.authenticate({ tenantId: 'acme', email: 'bob@example.org', password: NEW_PASSWORD, ip: '203.0.113.7' })).ok, true);
    });
  });
}
