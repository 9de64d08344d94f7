import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createPasswordHasher } from '../../src/identity/passwords.js';
import { createUserService, emailKeyOf, newUserId, type UserService } from '../../src/identity/users.js';
import { openDatabase, type DatabaseHandle } from '../../src/store/database.js';
import { createIdentityRepository } from '../../src/store/identity-repository.js';
import { createRepositories } from '../../src/store/repositories.js';
import { dialects, freshPostgres, testClock } from '../helpers.js';

// Argon2's smallest settings keep the suite fast; the hash format is the password module's business.
const hasher = createPasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });
const PASSWORD = 'plum tree under snow';

for (const dialect of dialects) {
  describe(`user service (${dialect})`, () => {
    let handle: DatabaseHandle;
    let dataDir: string;
    let dropPostgres: (() => Promise<void>) | undefined;
    let users: UserService;
    let deactivated: string[];
    const clock = testClock();

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-users-'));
      const pg = dialect === 'postgres' ? await freshPostgres() : undefined;
      dropPostgres = pg?.drop;
      handle = await openDatabase({ databaseUrl: pg?.url, dataDir });
      const { tenants } = createRepositories(handle);
      for (const id of ['acme', 'globex']) await tenants.create({ id, displayName: id, createdAt: clock() });
      users = createUserService({
        store: createIdentityRepository(handle),
        hasher,
        clock,
        onDeactivated: (tenantId, userId) => {
          deactivated.push(`${tenantId}/${userId}`);
        },
      });
    });
    beforeEach(() => {
      deactivated = [];
    });
    after(async () => {
      await handle.close();
      await dropPostgres?.();
      rmSync(dataDir, { recursive: true, force: true });
    });

    const row = (tenantId: string, id: string) => handle.db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirstOrThrow();

    it('creates a user with a random usr_ id, the profile claims and no password', async () => {
      const user = await users.create('acme', { email: 'Grace@Example.com', name: 'Grace Hopper', givenName: 'Grace', familyName: 'Hopper', locale: 'en-US', picture: 'https://img.example.com/g.png' });
      assert.match(user.id, /^usr_[a-z2-7]{26}$/);
      assert.equal(user.email, 'Grace@Example.com');
      assert.deepEqual(
        [user.emailVerified, user.name, user.givenName, user.familyName, user.locale, user.picture, user.disabled, user.hasPassword, user.passwordChangedAt],
        [false, 'Grace Hopper', 'Grace', 'Hopper', 'en-US', 'https://img.example.com/g.png', false, false, null],
      );
      assert.equal(user.createdAt, clock());
      assert.equal('passwordHash' in user, false);
      assert.deepEqual(await users.get('acme', user.id), user);
      assert.equal((await row('acme', user.id)).email_key, 'grace@example.com');
    });

    it('never hands out the same id twice', () => {
      const ids = new Set(Array.from({ length: 10_000 }, newUserId));
      assert.equal(ids.size, 10_000);
    });

    it('refuses a second user whose email differs only in case or Unicode form (409)', async () => {
      await users.create('acme', { email: 'Ann@X.com' });
      await assert.rejects(users.create('acme', { email: 'ann@x.com' }), { code: 'USERS_EMAIL_TAKEN', status: 409 });
      // Fullwidth Ａ folds to A under NFKC.
      await assert.rejects(users.create('acme', { email: '\uff21nn@x.com' }), { code: 'USERS_EMAIL_TAKEN' });
      assert.equal((await users.list('acme', { emailPrefix: 'ann@' })).users.length, 1);
    });

    it('keeps tenants apart: the same email in two tenants, and no user read across them', async () => {
      const a = await users.create('acme', { email: 'bob@shared.test' });
      const b = await users.create('globex', { email: 'bob@shared.test' });
      assert.notEqual(a.id, b.id);
      await assert.rejects(users.get('globex', a.id), { code: 'USERS_NOT_FOUND', status: 404 });
      await assert.rejects(users.disable('globex', a.id), { code: 'USERS_NOT_FOUND' });
      await assert.rejects(users.delete('globex', a.id), { code: 'USERS_NOT_FOUND' });
      assert.equal((await users.findByEmail('globex', 'BOB@shared.test'))?.id, b.id);
      assert.equal(await users.findById('globex', a.id), undefined);
      assert.equal((await users.get('acme', a.id)).disabled, false);
      assert.deepEqual(deactivated, []);
    });

    it('finds a user by email for sign-in, case-insensitively, with the hash to verify against', async () => {
      const created = await users.create('acme', { email: 'carol@Example.org', password: PASSWORD });
      const found = await users.findByEmail('acme', '  CAROL@example.ORG ');
      assert.equal(found?.id, created.id);
      assert.match(String(found?.passwordHash), /^\$argon2id\$/);
      assert.equal((await hasher.verify(found!.passwordHash!, PASSWORD)).ok, true);
      assert.equal(await users.findByEmail('acme', 'nobody@example.org'), undefined);
    });

    it('stores an Argon2id hash of the password, never the password itself', async () => {
      const user = await users.create('acme', { email: 'dave@example.org', password: PASSWORD });
      assert.equal(user.hasPassword, true);
      assert.equal(user.passwordChangedAt, clock());
      const stored = await row('acme', user.id);
      assert.match(String(stored.password_hash), /^\$argon2id\$/);
      assert.equal(JSON.stringify(stored).includes(PASSWORD), false);
    });

    it('applies the password policy on create and on reset, and a refused password changes nothing', async () => {
      await assert.rejects(users.create('acme', { email: 'erin@example.org', password: 'short' }), { code: 'USERS_PASSWORD_TOO_SHORT' });
      await assert.rejects(users.create('acme', { email: 'erin@example.org', password: 'password1234' }), { code: 'USERS_PASSWORD_COMMON' });
      assert.equal(await users.findByEmail('acme', 'erin@example.org'), undefined);
      const erin = await users.create('acme', { email: 'erin@example.org', password: PASSWORD });
      const before = await row('acme', erin.id);
      await assert.rejects(users.setPassword('acme', erin.id, 'x'.repeat(129)), { code: 'USERS_PASSWORD_TOO_LONG' });
      assert.deepEqual(await row('acme', erin.id), before);
      assert.deepEqual(deactivated, []);
    });

    it('resets a password: a new hash, the time of the change, and the sessions end', async () => {
      const frank = await users.create('acme', { email: 'frank@example.org' });
      clock.advance(60_000);
      const reset = await users.setPassword('acme', frank.id, PASSWORD);
      assert.equal(reset.hasPassword, true);
      assert.equal(reset.passwordChangedAt, clock());
      const found = await users.findById('acme', frank.id);
      assert.equal((await hasher.verify(found!.passwordHash!, PASSWORD)).ok, true);
      assert.deepEqual(deactivated, [`acme/${frank.id}`]);
      await assert.rejects(users.setPassword('acme', 'usr_nobody', PASSWORD), { code: 'USERS_NOT_FOUND' });
    });

    it('rehashes a password without touching updated_at (a claim) or password_changed_at', async () => {
      const user = await users.create('acme', { email: 'rehash@example.org', password: PASSWORD });
      clock.advance(1000);
      const verified = (await users.findById('acme', user.id))!.passwordHash!;
      const rehashed = await createPasswordHasher({ memoryCost: 2048, timeCost: 1, parallelism: 1 }).hash(PASSWORD);
      assert.equal(await users.rehashPassword('acme', user.id, verified, rehashed), true);
      const after = await users.findById('acme', user.id);
      assert.equal(after?.passwordHash, rehashed);
      assert.equal(after?.updatedAt, user.updatedAt);
      assert.equal(after?.passwordChangedAt, user.passwordChangedAt);
    });

    it('writes no rehash over a password reset made since the old hash was verified', async () => {
      const user = await users.create('acme', { email: 'raced@example.org', password: PASSWORD });
      const verified = (await users.findById('acme', user.id))!.passwordHash!;
      const rehashOfOld = await createPasswordHasher({ memoryCost: 2048, timeCost: 1, parallelism: 1 }).hash(PASSWORD);
      await users.setPassword('acme', user.id, 'a brand new admin-set passphrase');
      const reset = (await row('acme', user.id)).password_hash!;

      assert.equal(await users.rehashPassword('acme', user.id, verified, rehashOfOld), false);
      assert.equal((await row('acme', user.id)).password_hash, reset);
      assert.equal((await hasher.verify(reset, 'a brand new admin-set passphrase')).ok, true);
      // Nor for a user deleted meanwhile, or in another tenant.
      assert.equal(await users.rehashPassword('globex', user.id, reset, rehashOfOld), false);
      assert.equal(await users.rehashPassword('acme', 'usr_nobody', reset, rehashOfOld), false);
      assert.equal((await row('acme', user.id)).password_hash, reset);
    });

    it('pages through users in email order, with a case-insensitive email prefix filter', async () => {
      for (const name of ['p1', 'P2', 'p3', 'p4', 'p5']) await users.create('globex', { email: `${name}@page.test` });
      await users.create('globex', { email: 'p_x@other.test' });
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await users.list('globex', { emailPrefix: 'P', limit: 2, after });
        seen.push(...page.users.map((u) => u.email));
        after = page.next ?? undefined;
        pages++;
      } while (after);
      assert.deepEqual(seen, ['p1@page.test', 'P2@page.test', 'p3@page.test', 'p4@page.test', 'p5@page.test', 'p_x@other.test']);
      assert.equal(pages, 3);
      // `_` and `%` in a prefix are literal characters, not LIKE wildcards.
      assert.deepEqual((await users.list('globex', { emailPrefix: 'p_' })).users.map((u) => u.email), ['p_x@other.test']);
      assert.deepEqual((await users.list('globex', { emailPrefix: '%' })).users, []);
    });

    it('updates with PATCH semantics: absent fields stay, null clears, updated_at moves', async () => {
      const user = await users.create('acme', { email: 'gina@example.org', name: 'Gina', locale: 'de', emailVerified: true });
      clock.advance(5000);
      const updated = await users.update('acme', user.id, { familyName: 'Rossi', locale: null });
      assert.deepEqual([updated.name, updated.familyName, updated.locale, updated.emailVerified], ['Gina', 'Rossi', null, true]);
      assert.equal(updated.updatedAt, clock());
      assert.equal(updated.createdAt, user.createdAt);
    });

    it('keeps verification through a change of case, and drops it for a new address', async () => {
      const user = await users.create('acme', { email: 'hal@example.org', emailVerified: true });
      assert.equal((await users.update('acme', user.id, { email: 'Hal@Example.org' })).emailVerified, true);
      const moved = await users.update('acme', user.id, { email: 'hal@new.example' });
      assert.deepEqual([moved.email, moved.emailVerified], ['hal@new.example', false]);
      assert.equal((await users.update('acme', user.id, { email: 'hal2@new.example', emailVerified: true })).emailVerified, true);
      assert.equal((await users.setEmailVerified('acme', user.id, false)).emailVerified, false);
      await users.create('acme', { email: 'taken@example.org' });
      await assert.rejects(users.update('acme', user.id, { email: 'TAKEN@example.org' }), { code: 'USERS_EMAIL_TAKEN' });
      assert.equal((await users.get('acme', user.id)).email, 'hal2@new.example');
    });

    const invalid: [string, Parameters<UserService['create']>[1], string][] = [
      ['no @', { email: 'ivan.example.org' }, 'USERS_EMAIL_INVALID'],
      ['two @', { email: 'ivan@x@example.org' }, 'USERS_EMAIL_INVALID'],
      ['a space', { email: 'iv an@example.org' }, 'USERS_EMAIL_INVALID'],
      ['a control character', { email: 'ivan\u0000@example.org' }, 'USERS_EMAIL_INVALID'],
      ['a zero-width space', { email: 'ivan\u200b@example.org' }, 'USERS_EMAIL_INVALID'],
      ['nothing before @', { email: '@example.org' }, 'USERS_EMAIL_INVALID'],
      ['255 characters', { email: `${'i'.repeat(243)}@example.org` }, 'USERS_EMAIL_INVALID'],
      ['an http picture', { email: 'ivan@example.org', picture: 'http://img.example.com/i.png' }, 'USERS_PICTURE_INVALID'],
      ['a javascript: picture', { email: 'ivan@example.org', picture: 'javascript:alert(1)' }, 'USERS_PICTURE_INVALID'],
      ['a picture that is no URL', { email: 'ivan@example.org', picture: 'me.png' }, 'USERS_PICTURE_INVALID'],
      ['a locale with a space', { email: 'ivan@example.org', locale: 'en US' }, 'USERS_LOCALE_INVALID'],
      ['a locale of one letter', { email: 'ivan@example.org', locale: 'e' }, 'USERS_LOCALE_INVALID'],
      ['a name with a newline', { email: 'ivan@example.org', name: 'Ivan\nAdmin' }, 'USERS_PROFILE_INVALID'],
      ['a name of 257 characters', { email: 'ivan@example.org', name: 'i'.repeat(257) }, 'USERS_PROFILE_INVALID'],
    ];
    for (const [what, input, code] of invalid) {
      it(`refuses ${what} with ${code} and creates nothing`, async () => {
        await assert.rejects(users.create('acme', input), { code, status: 400 });
        assert.equal(await users.findByEmail('acme', 'ivan@example.org'), undefined);
      });
    }

    it('accepts a 254-character email, an http picture on localhost and a locale with script and region', async () => {
      const user = await users.create('acme', { email: `${'j'.repeat(242)}@example.org`, picture: 'http://localhost:8080/j.png', locale: 'zh-Hant-TW' });
      assert.equal(user.email.length, 254);
    });

    it('refuses an invalid profile change and leaves the user as it was', async () => {
      const user = await users.create('acme', { email: 'kim@example.org', name: 'Kim' });
      const before = await row('acme', user.id);
      await assert.rejects(users.update('acme', user.id, { name: 'Kimberly', picture: 'ftp://x.test/k.png' }), { code: 'USERS_PICTURE_INVALID' });
      await assert.rejects(users.update('acme', user.id, { name: 'Kimberly', email: 'not-an-email' }), { code: 'USERS_EMAIL_INVALID' });
      assert.deepEqual(await row('acme', user.id), before);
    });

    it('disables and enables a user; disabling ends their sessions', async () => {
      const user = await users.create('acme', { email: 'leo@example.org' });
      const disabled = await users.disable('acme', user.id);
      assert.equal(disabled.disabled, true);
      assert.equal((await users.findByEmail('acme', 'leo@example.org'))?.disabled, true);
      assert.deepEqual(deactivated, [`acme/${user.id}`]);
      assert.equal((await users.enable('acme', user.id)).disabled, false);
      assert.deepEqual(deactivated, [`acme/${user.id}`]);
    });

    it('deletes a user and ends their sessions; the email is free again, under a new id', async () => {
      const user = await users.create('acme', { email: 'mia@example.org' });
      await users.delete('acme', user.id);
      assert.deepEqual(deactivated, [`acme/${user.id}`]);
      await assert.rejects(users.get('acme', user.id), { code: 'USERS_NOT_FOUND' });
      await assert.rejects(users.delete('acme', user.id), { code: 'USERS_NOT_FOUND' });
      const again = await users.create('acme', { email: 'mia@example.org' });
      assert.notEqual(again.id, user.id);
    });

    it('resolves an id or an email address (the CLI\'s argument)', async () => {
      const user = await users.create('acme', { email: 'ned@example.org' });
      assert.equal((await users.resolve('acme', user.id)).id, user.id);
      assert.equal((await users.resolve('acme', 'NED@example.org')).id, user.id);
      await assert.rejects(users.resolve('acme', 'nobody@example.org'), { code: 'USERS_NOT_FOUND' });
    });
  });
}

describe('email keys', () => {
  it('fold case and Unicode compatibility forms, and trim surrounding space', () => {
    assert.equal(emailKeyOf(' Ann@X.COM '), 'ann@x.com');
    assert.equal(emailKeyOf('\uff41nn@x.com'), 'ann@x.com');
  });
});
