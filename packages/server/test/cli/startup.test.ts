import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { unknownVariables } from '../../src/config/defaults.js';
import { freePort } from '../helpers.js';
import { renderLogLine } from '../../src/logging/pretty.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Runs the CLI with exactly `env` (plus PATH and HOME): no setting leaks in from the test runner. */
function gatehouse(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', main, ...args], { env: { PATH: process.env.PATH!, HOME: process.env.HOME!, GATEHOUSE_LOG_LEVEL: 'silent', ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end('');
  });
}

/** One line a person can act on: no stack trace, no driver dump. */
function assertOneLine(stderr: string, ...mentions: RegExp[]) {
  const lines = stderr.trim().split('\n').filter((l) => !l.includes('warning:') && !l.includes('oidc-provider WARNING'));
  assert.equal(lines.length, 1, stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  for (const mention of mentions) assert.match(lines[0]!, mention);
}

describe('start-up errors and what the CLI says about its storage', () => {
  let scratch: string;
  let taken: Server;
  let takenPort: number;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-startup-'));
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as { port: number }).port;
  });
  after(() => {
    taken.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('names a misspelt setting and the one it most likely meant', () => {
    const found = unknownVariables({ GATEHOUSE_PROT: '8080', GATEHOUSE_PORT: '1', GATEHOUSE_CLIENT_SECRET: 's', GATEHOUSE_SOMETHING_ELSE_ENTIRELY: 'x', PATH: '/bin' });
    assert.deepEqual(found, [{ name: 'GATEHOUSE_PROT', meant: 'GATEHOUSE_PORT' }, { name: 'GATEHOUSE_SOMETHING_ELSE_ENTIRELY' }]);
  });

  it('a port in use: one line naming GATEHOUSE_PORT, exit 1, nothing created on disk; a misspelt setting is warned about', async () => {
    const dataDir = join(scratch, 'port');
    const run = await gatehouse(['serve'], { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_HOST: '127.0.0.1', GATEHOUSE_PORT: String(takenPort), GATEHOUSE_PROT: '1' });
    assert.equal(run.code, 1);
    assertOneLine(run.stderr, /GATEHOUSE_PORT/, new RegExp(`port ${takenPort} .* in use`), /Fix:/);
    assert.match(run.stderr, /warning: GATEHOUSE_PROT is not a Gatehouse setting .*did you mean GATEHOUSE_PORT\?/);
    assert.equal(existsSync(dataDir), false, 'no data directory, database or master key');
  });

  it('PostgreSQL unreachable: one line naming DATABASE_URL, and no SQLite created instead', async () => {
    const dataDir = join(scratch, 'pg-down');
    const closed = await freePort();
    const run = await gatehouse(['serve'], { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_HOST: '127.0.0.1', GATEHOUSE_PORT: '0', DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${closed}/gatehouse` });
    assert.equal(run.code, 1);
    assertOneLine(run.stderr, /DATABASE_URL/, new RegExp(`cannot reach PostgreSQL at 127\\.0\\.0\\.1:${closed}/gatehouse`));
    assert.doesNotMatch(run.stderr, /secret/, 'the password stays out of the message');
    assert.equal(existsSync(dataDir), false);
  });

  if (process.env.GATEHOUSE_TEST_DATABASE_URL) {
    it('a PostgreSQL database that does not exist: one line saying so, with the command that creates it', async () => {
      const url = new URL(process.env.GATEHOUSE_TEST_DATABASE_URL!);
      url.pathname = '/gh_no_such_database';
      const run = await gatehouse(['tenants', 'list'], { GATEHOUSE_DATA_DIR: join(scratch, 'pg-missing'), DATABASE_URL: url.href });
      assert.equal(run.code, 1);
      assertOneLine(run.stderr.split('\n').filter((l) => !l.startsWith('gatehouse: storage:')).join('\n'), /DATABASE_URL/, /gh_no_such_database does not exist/, /createdb gh_no_such_database/);
    });
  }

  it('every CLI command says which storage it uses: a line on stderr, or the storage member of the JSON there', async () => {
    const dataDir = join(scratch, 'cli');
    const human = await gatehouse(['tenants', 'list'], { GATEHOUSE_DATA_DIR: dataDir });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, new RegExp(`^gatehouse: storage: SQLite ${join(dataDir, 'gatehouse.db').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    const json = await gatehouse(['--json', 'tenants', 'list'], { GATEHOUSE_DATA_DIR: dataDir });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stderr), { storage: { kind: 'sqlite', path: join(dataDir, 'gatehouse.db') } });
    assert.ok(JSON.parse(json.stdout).tenants, 'stdout keeps the answer alone');
    const failed = await gatehouse(['--json', 'users', 'list', '--tenant', 'nobody'], { GATEHOUSE_DATA_DIR: dataDir });
    assert.equal(failed.code, 1);
    const error = JSON.parse(failed.stderr) as { code: string; storage: { kind: string } };
    assert.equal(error.code, 'TENANTS_NOT_FOUND');
    assert.equal(error.storage.kind, 'sqlite');
  });

  it('renders log lines for a person in development: time, level, message, fields', () => {
    const line = renderLogLine(JSON.stringify({ level: 30, time: Date.parse('2026-12-04T10:11:12.345Z'), pid: 1, hostname: 'h', msg: 'gatehouse ready', url: 'http://localhost:4455', readyMs: 812 }));
    assert.equal(line, '10:11:12.345 INFO gatehouse ready url=http://localhost:4455 readyMs=812');
    const failure = renderLogLine(JSON.stringify({ level: 50, time: 0, msg: 'boom', err: { message: 'x', stack: 'Error: x\n    at here' } }));
    assert.equal(failure, '00:00:00.000 ERROR boom\nError: x\n    at here');
    assert.equal(renderLogLine('not json'), 'not json');
  });
});
