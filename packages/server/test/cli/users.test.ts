import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const PASSWORD = 'plum tree under snow';

/** Runs the CLI with `stdin` piped in (closed at once when absent). */
function gatehouse(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'silent', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

// The CLI works on the server's own database (SQLite here); the test reads it through the server's core.
describe('gatehouse users', () => {
  let server: TestServer;
  let env: Record<string, string>;

  before(async () => {
    server = await startServer();
    await server.core.tenants.create('shop');
    env = { GATEHOUSE_DATA_DIR: server.config.dataDir, GATEHOUSE_PUBLIC_URL: server.url };
  });
  after(() => server.close());

  it('creates a user with a password read from stdin, and never prints or stores the password', async () => {
    const created = await gatehouse(['--json', 'users', 'create', '--tenant', 'shop', '--email', 'Ann@Shop.test', '--name', 'Ann', '--email-verified', '--password-stdin'], env, `${PASSWORD}\n`);
    assert.equal(created.code, 0, created.stderr);
    const user = JSON.parse(created.stdout);
    assert.match(user.id, /^usr_/);
    assert.deepEqual([user.email, user.name, user.email_verified, user.has_password], ['Ann@Shop.test', 'Ann', true, true]);
    assert.equal(`${created.stdout}${created.stderr}`.includes(PASSWORD), false);
    assert.equal(created.stdout.includes('argon2'), false);
    // The trailing newline of the pipe is not part of the password.
    const stored = await server.core.users.findByEmail('shop', 'ann@shop.test');
    assert.equal((await server.core.passwords.verify(stored!.passwordHash!, PASSWORD)).ok, true);
    await server.core.audit.flush();
    const [event] = await server.core.repos.audit.query({ tenantId: 'shop', action: 'user.created', limit: 5 });
    assert.deepEqual([event?.actor, event?.target], ['cli', user.id]);
  });

  it('refuses --password on the command line without echoing it, and creates nothing', async () => {
    const refused = await gatehouse(['users', 'create', '--tenant', 'shop', '--email', 'argv@shop.test', '--password', PASSWORD], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--password-stdin/);
    assert.equal(`${refused.stdout}${refused.stderr}`.includes(PASSWORD), false);
    assert.equal(await server.core.users.findByEmail('shop', 'argv@shop.test'), undefined);
  });

  it('applies the password policy to a piped password, and names the rule with --json', async () => {
    const weak = await gatehouse(['--json', 'users', 'create', '--tenant', 'shop', '--email', 'weak@shop.test', '--password-stdin'], env, 'password1234');
    assert.equal(weak.code, 1);
    assert.equal(JSON.parse(weak.stderr).code, 'USERS_PASSWORD_COMMON');
    assert.equal(weak.stderr.includes('password1234'), false);
    assert.equal(await server.core.users.findByEmail('shop', 'weak@shop.test'), undefined);
  });

  it('refuses a duplicate email in another case', async () => {
    const duplicate = await gatehouse(['--json', 'users', 'create', '--tenant', 'shop', '--email', 'ANN@shop.test'], env);
    assert.equal(duplicate.code, 1);
    assert.equal(JSON.parse(duplicate.stderr).code, 'USERS_EMAIL_TAKEN');
  });

  it('lists users with an email prefix, as JSON and as lines', async () => {
    assert.equal((await gatehouse(['users', 'create', '--tenant', 'shop', '--email', 'bob@shop.test'], env)).code, 0);
    assert.equal((await gatehouse(['users', 'create', '--tenant', 'shop', '--email', 'carl@other.test'], env)).code, 0);
    const json = await gatehouse(['--json', 'users', 'list', '--tenant', 'shop', '--email-prefix', 'B'], env);
    assert.equal(json.code, 0, json.stderr);
    const { users } = JSON.parse(json.stdout);
    assert.deepEqual(users.map((u: { email: string }) => u.email), ['bob@shop.test']);
    assert.equal('password_hash' in users[0], false);
    const lines = await gatehouse(['users', 'list', '--tenant', 'shop'], env);
    assert.deepEqual(lines.stdout.trim().split('\n').map((line) => line.split('\t')[1]), ['Ann@Shop.test', 'bob@shop.test', 'carl@other.test']);
    assert.match(lines.stdout, /usr_\w+\tAnn@Shop\.test\tactive,verified,password/);
  });

  it('disables, enables and deletes by email or id, ending the sessions', async () => {
    const bob = await server.core.users.findByEmail('shop', 'bob@shop.test');
    const signIn = () => server.core.repos.oauth.upsertPayload({ tenantId: 'shop', model: 'Session', id: `s-${bob!.id}`, payload: '{}', grantId: null, userCode: null, uid: null, accountId: bob!.id, expiresAt: server.core.clock() + 3600_000, consumedAt: null });
    const sessions = async () => (await server.core.handle.db.selectFrom('oidc_payloads').select('id').where('account_id', '=', bob!.id).execute()).length;
    await signIn();
    const disabled = await gatehouse(['--json', 'users', 'disable', '--tenant', 'shop', 'BOB@shop.test'], env);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.equal(JSON.parse(disabled.stdout).disabled, true);
    assert.equal(await sessions(), 0);
    const enabled = await gatehouse(['users', 'enable', '--tenant', 'shop', bob!.id], env);
    assert.match(enabled.stdout, /enabled user usr_/);
    assert.equal((await server.core.users.get('shop', bob!.id)).disabled, false);
    await signIn();
    const deleted = await gatehouse(['--json', 'users', 'delete', '--tenant', 'shop', bob!.id], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(JSON.parse(deleted.stdout), { id: bob!.id, deleted: true });
    assert.equal(await sessions(), 0);
    const again = await gatehouse(['--json', 'users', 'delete', '--tenant', 'shop', bob!.id], env);
    assert.equal(JSON.parse(again.stderr).code, 'USERS_NOT_FOUND');
  });

  it('resets a password from stdin only', async () => {
    const missing = await gatehouse(['users', 'reset-password', '--tenant', 'shop', 'carl@other.test'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--password-stdin/);
    const reset = await gatehouse(['users', 'reset-password', '--tenant', 'shop', 'carl@other.test', '--password-stdin'], env, `${PASSWORD}\r\n`);
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal(`${reset.stdout}${reset.stderr}`.includes(PASSWORD), false);
    const carl = await server.core.users.findByEmail('shop', 'carl@other.test');
    assert.equal((await server.core.passwords.verify(carl!.passwordHash!, PASSWORD)).ok, true);
    const argv = await gatehouse(['users', 'reset-password', '--tenant', 'shop', 'carl@other.test', '--password-stdin', '--password', 'another one entirely'], env);
    assert.equal(argv.code, 1);
    assert.equal(argv.stderr.includes('another one entirely'), false);
  });
});
