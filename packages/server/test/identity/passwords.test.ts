import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Algorithm, hash as argon2Hash, parseOptions } from '@node-rs/argon2';
import { ConfigError, loadConfig } from '../../src/config/defaults.js';
import { GatehouseError } from '../../src/errors.js';
import { readCommonPasswords } from '../../src/identity/common-passwords.js';
import { checkPasswordPolicy, createPasswordHasher, defaultPasswordHashParams } from '../../src/identity/passwords.js';

// Argon2's smallest settings keep the suite fast; one test below runs the real defaults.
const fast = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

const refusal = (password: string): string | undefined => {
  try {
    checkPasswordPolicy(password);
    return undefined;
  } catch (error) {
    assert.ok(error instanceof GatehouseError);
    return error.code;
  }
};

describe('password hashing', () => {
  const hasher = createPasswordHasher(fast);

  it('verifies the password a hash was made from, with the defaults m=19456 t=2 p=1 in the PHC string', async () => {
    const defaults = createPasswordHasher();
    const stored = await defaults.hash('correct horse battery staple');
    assert.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.deepEqual(await defaults.verify(stored, 'correct horse battery staple'), { ok: true, needsRehash: false });
    assert.deepEqual(defaults.params, defaultPasswordHashParams);
  });

  it('refuses a wrong password, one differing in case and an empty one', async () => {
    const stored = await hasher.hash('correct horse battery staple');
    for (const wrong of ['correct horse battery stapler', 'Correct horse battery staple', '']) {
      assert.deepEqual(await hasher.verify(stored, wrong), { ok: false, needsRehash: false }, wrong);
    }
  });

  it('salts every hash', async () => {
    assert.notEqual(await hasher.hash('correct horse battery staple'), await hasher.hash('correct horse battery staple'));
  });

  it('matches a password typed with fullwidth, ligature or decomposed characters to its NFKC form', async () => {
    const cases: [typed: string, normalized: string][] = [
      ['ｃｏｒｒｅｃｔ ｈｏｒｓｅ', 'correct horse'],
      ['oﬃce ﬁle cabinet', 'office file cabinet'],
      ['cafe\u0301 au lait', 'caf\u00e9 au lait'],
    ];
    for (const [typed, normalized] of cases) {
      assert.equal((await hasher.verify(await hasher.hash(normalized), typed)).ok, true, typed);
      assert.equal((await hasher.verify(await hasher.hash(typed), normalized)).ok, true, normalized);
    }
  });

  it('asks for a rehash after a right password on a hash with other parameters, and only then', async () => {
    const older = createPasswordHasher({ ...fast, timeCost: 2 });
    const stored = await older.hash('correct horse battery staple');
    assert.deepEqual(await hasher.verify(stored, 'correct horse battery staple'), { ok: true, needsRehash: true });
    assert.deepEqual(await hasher.verify(stored, 'wrong horse battery staple'), { ok: false, needsRehash: false });
    assert.deepEqual(await older.verify(stored, 'correct horse battery staple'), { ok: true, needsRehash: false });
  });

  it('asks for a rehash of an Argon2i hash with the same cost', async () => {
    const argon2i = await argon2Hash('correct horse battery staple', { ...fast, algorithm: Algorithm.Argon2i });
    assert.deepEqual(await hasher.verify(argon2i, 'correct horse battery staple'), { ok: true, needsRehash: true });
  });

  it('throws on a stored hash that is not a PHC string instead of answering "wrong password"', async () => {
    await assert.rejects(hasher.verify('not-a-hash', 'correct horse battery staple'));
  });

  it('answers false for an unknown account after an Argon2 verify at the current parameters', async () => {
    const dummy = await hasher.dummyHash();
    const used = parseOptions(dummy);
    assert.equal(used.algorithm, Algorithm.Argon2id);
    assert.deepEqual({ memoryCost: used.memoryCost, timeCost: used.timeCost, parallelism: used.parallelism }, fast);
    assert.equal(await hasher.dummyHash(), dummy, 'computed once');
    for (const password of ['', 'correct horse battery staple', randomBytes(32).toString('base64url')]) {
      assert.equal(await hasher.verifyDummy(password), false);
    }
    assert.equal(await hasher.verifyDummy('x'), false);
  });

  it('refuses parameters Argon2 cannot use, at construction', () => {
    assert.throws(() => createPasswordHasher({ ...fast, memoryCost: 4 }), TypeError);
    assert.throws(() => createPasswordHasher({ ...fast, timeCost: 0 }), TypeError);
    assert.throws(() => createPasswordHasher({ ...fast, parallelism: 1.5 }), TypeError);
  });
});

describe('password policy', () => {
  const table: [name: string, password: string, refused: string | undefined][] = [
    ['11 characters', 'Tr0ub4dor&3', 'USERS_PASSWORD_TOO_SHORT'],
    ['12 characters', 'Tr0ub4dor&3x', undefined],
    ['128 characters', 'ab3$'.repeat(32), undefined],
    ['129 characters', `${'ab3$'.repeat(32)}x`, 'USERS_PASSWORD_TOO_LONG'],
    ['11 emoji (22 UTF-16 units)', '🔒'.repeat(11), 'USERS_PASSWORD_TOO_SHORT'],
    ['12 emoji', '🔒'.repeat(12), undefined],
    ['128 emoji (256 UTF-16 units)', '🔒'.repeat(128), undefined],
    ['129 emoji', '🔒'.repeat(129), 'USERS_PASSWORD_TOO_LONG'],
    ['6 ligatures that NFKC turns into 12 letters', 'ﬁ'.repeat(6), undefined],
    ['the empty string', '', 'USERS_PASSWORD_TOO_SHORT'],
    ['a long random password', randomBytes(48).toString('base64url'), undefined],
    ['a common password', 'qwerty123456', 'USERS_PASSWORD_COMMON'],
    ['a common password in upper case', 'QWERTY123456', 'USERS_PASSWORD_COMMON'],
    ['a common password in mixed case', 'LeaveMeAlone', 'USERS_PASSWORD_COMMON'],
    ['a common password in fullwidth characters', 'ｆｉｎａｌｆａｎｔａｓｙ', 'USERS_PASSWORD_COMMON'],
    ['a common password with one more character', 'finalfantasy7!', undefined],
  ];
  for (const [name, password, refused] of table) {
    it(refused ? `refuses ${name} with ${refused}` : `accepts ${name}`, () => assert.equal(refusal(password), refused));
  }

  it('takes its refusals from a list of at least 10,000 common passwords that really holds them', () => {
    const list = readCommonPasswords();
    assert.ok(list.length >= 10_000, `${list.length} entries`);
    for (const entry of ['qwerty123456', 'leavemealone', 'finalfantasy']) assert.ok(list.includes(entry), entry);
  });

  it('never puts the password in the error message or details', () => {
    for (const password of ['Tr0ub4dor&3', `${'ab3$'.repeat(32)}x`, 'QWERTY123456']) {
      assert.throws(
        () => checkPasswordPolicy(password),
        (error: unknown) => {
          assert.ok(error instanceof GatehouseError);
          const shown = `${error.message} ${JSON.stringify(error.details ?? {})}`.toLowerCase();
          assert.ok(!shown.includes(password.toLowerCase()), shown);
          // Not even its length: the details name the limit only.
          assert.deepEqual(Object.keys(error.details ?? {}).filter((key) => key !== 'minimum' && key !== 'maximum'), []);
          return true;
        },
      );
    }
  });
});

describe('password hashing settings', () => {
  it('default to the hasher defaults and refuse values out of range, naming the variable', () => {
    const config = loadConfig({});
    assert.deepEqual({ memoryCost: config.passwordMemoryKib, timeCost: config.passwordTimeCost, parallelism: config.passwordParallelism }, defaultPasswordHashParams);
    for (const env of [{ GATEHOUSE_PASSWORD_MEMORY_KIB: '4096' }, { GATEHOUSE_PASSWORD_TIME_COST: '0' }, { GATEHOUSE_PASSWORD_PARALLELISM: '17' }]) {
      assert.throws(() => loadConfig(env), (error: unknown) => error instanceof ConfigError && error.variable === Object.keys(env)[0]);
    }
  });
});
