// Runs every *.test.ts under packages/*/test with node's own test runner (through tsx),
// so the suite needs no extra framework and CI can read node's closing summary.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
const files = ['packages/sdk/test', 'packages/server/test']
  .flatMap((dir) => collect(dir, []))
  .filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)))
  .sort();

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
