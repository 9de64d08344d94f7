import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { seedClient, startServer, tokenRequest, basic, type TestServer } from '../helpers.js';

const SDK = fileURLToPath(new URL('../../../sdk/', import.meta.url));

function run(command: string, args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 180_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The first ```js block after `## Example` in the package README: the example a user copies. */
function readmeExample(): string {
  const readme = readFileSync(join(SDK, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Example'));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(match, 'the README has a js example');
  return match[1]!;
}

// The SDK as a user gets it: packed, installed from the tarball into a project outside this
// workspace (no workspace link, no hoisted node_modules), running the README's own example
// against a listening Gatehouse.
describe('the packages as users get them', () => {
  let scratch: string;
  let tarball: string;
  let files: string[];
  let server: TestServer;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-sdk-user-'));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: SDK });
    assert.equal(packed.code, 0, packed.stderr);
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(scratch, info!.filename);
    files = info!.files.map((f) => f.path);
    server = await startServer({ listen: true });
  });
  after(async () => {
    await server?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** What `npm pack` puts in a package's tarball, and the package's own files to read them from. */
  async function packedFiles(dir: string): Promise<string[]> {
    const packed = await run('npm', ['pack', '--dry-run', '--json'], { cwd: dir });
    assert.equal(packed.code, 0, packed.stderr);
    return (JSON.parse(packed.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  }

  function assertClean(dir: string, packed: string[], required: string[]) {
    for (const file of ['README.md', 'LICENSE', 'package.json', ...required]) assert.ok(packed.includes(file), `${dir}: ${file}`);
    assert.deepEqual(packed.filter((f) => f.endsWith('.tsbuildinfo') || f.includes('test/') || f.endsWith('.tgz')), [], 'no build state, tests or tarballs');
    const maps = packed.filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 0);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(dir, map), 'utf8')) as { sources: string[] };
      for (const source of sources) assert.ok(packed.includes(posix.join(posix.dirname(map), source)), `${map} names ${source}, which the package lacks`);
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports: unknown; engines: unknown; license: string };
    assert.ok(manifest.exports && manifest.engines);
    assert.equal(manifest.license, 'Apache-2.0');
  }

  it('both packages pack clean: README, LICENSE, types and code; no build state; every source map with its sources', async () => {
    assertClean(SDK, files, ['dist/index.js', 'dist/index.d.ts']);
    const SERVER = fileURLToPath(new URL('../../', import.meta.url));
    assertClean(SERVER, await packedFiles(SERVER), ['bin/gatehouse.js', 'dist/cli/main.js', 'dist/index.d.ts', 'resources/common-passwords.txt', 'resources/README.md']);
  });

  it('installs from the tarball outside the workspace and runs the README example against a live server', { timeout: 240_000 }, async () => {
    const project = join(scratch, 'service');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-service', private: true, type: 'module' }));
    const installed = await run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project });
    assert.equal(installed.code, 0, installed.stderr);
    writeFileSync(join(project, 'verify.mjs'), readmeExample());

    const client = await seedClient(server, { identifier: 'https://api.example.com', scopes: ['read', 'write'], allowed: ['read'] });
    const issued = await tokenRequest(server, { grant_type: 'client_credentials', resource: client.identifier }, { authorization: basic(client.clientId, client.clientSecret) });
    const env = { GATEHOUSE_ISSUER: `${server.url}/t/default`, GATEHOUSE_AUDIENCE: client.identifier };
    const verified = await run(process.execPath, ['verify.mjs', issued.json.access_token!], { cwd: project, env });
    assert.equal(verified.code, 0, verified.stderr);
    assert.deepEqual(JSON.parse(verified.stdout), { sub: client.clientId, client_id: client.clientId, scopes: ['read'] });
    // What ran is the unpacked tarball, not a link to this workspace.
    const installedSdk = join(project, 'node_modules', '@gatehouse', 'sdk');
    assert.equal(lstatSync(installedSdk).isSymbolicLink(), false);
    assert.ok(existsSync(join(installedSdk, 'dist', 'index.js')) && existsSync(join(project, 'node_modules', 'jose')));

    const refused = await run(process.execPath, ['verify.mjs', 'not-a-token'], { cwd: project, env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^refused: TOKEN_MALFORMED$/m);
  });
});
