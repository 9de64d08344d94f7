import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { validateFiles } from '../../src/authz/validate-files.js';
import { KNOWN_FAILURES } from './known-failures.js';

// SpiceDB's own validation files (../shared/conformance), used as they are.
const corpus = fileURLToPath(new URL('../../../../../shared/conformance/spicedb/validation/', import.meta.url));
const files = readdirSync(corpus)
  .filter((name) => name.endsWith('.yaml'))
  .sort()
  .map((name) => join(corpus, name));
const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const label = (f: { file: string; kind: string; assertion: string }) => `${f.file.slice(corpus.length)} ${f.kind}: ${f.assertion}`;

describe('SpiceDB validation corpus', () => {
  it('has the 73 files the corpus README lists', () => {
    assert.equal(files.length, 73);
  });

  it('passes every assertion and check/lookup consistency, except the known failures listed in known-failures.ts', () => {
    const report = validateFiles(files, { consistency: true });
    assert.ok(report.passed > 0);
    const failing = report.failures.map(label).sort();
    const unexpected = failing.filter((f) => !KNOWN_FAILURES.includes(f));
    const fixed = KNOWN_FAILURES.filter((f) => !failing.includes(f));
    assert.deepEqual(unexpected, [], 'new failures');
    assert.deepEqual(fixed, [], 'known failures that now pass: remove them from known-failures.ts');
  });

  it('runs through `gatehouse authz validate` with the 411 assertions and its summary line', async () => {
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', main, 'authz', 'validate', ...files], { maxBuffer: 10 * 1024 * 1024 }, (error, out) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout: out }),
      );
    });
    const summary = /^(\d+) passed, (\d+) failed$/m.exec(stdout);
    assert.ok(summary, stdout.slice(-500));
    const inProcess = validateFiles(files);
    assert.deepEqual([Number(summary[1]), Number(summary[2])], [inProcess.passed, inProcess.failed]);
    // Every assertion of the corpus is evaluated once (a file that fails to load would count as one).
    if (!inProcess.failures.some((f) => f.kind === 'load')) assert.equal(inProcess.passed + inProcess.failed, 411);
    assert.equal(code, Number(summary[2]) > 0 ? 1 : 0);
  });
});
