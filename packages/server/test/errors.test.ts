import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { errorCatalogues } from '../src/error-catalogues.js';

const src = fileURLToPath(new URL('../src', import.meta.url));
const sources = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });

describe('error catalogues', () => {
  const all = Object.values(errorCatalogues).flatMap((c) => Object.entries(c));

  it('gives every code one entry, an UPPER_SNAKE name and an error status', () => {
    const codes = all.map(([code]) => code);
    assert.equal(new Set(codes).size, codes.length);
    for (const [code, spec] of all) {
      assert.match(code, /^[A-Z]+(_[A-Z]+)+$/);
      assert.ok(spec.status >= 400 && spec.status < 600, code);
    }
  });

  it('documents every code in docs/errors.md with its status', () => {
    const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, spec] of all) assert.match(doc, new RegExp(`\\| \`${code}\` \\| [\\w ]+ \\| ${spec.status} \\|`), `${code} (run npm run docs:generate)`);
  });

  it('lists every code the server source sends', () => {
    const known = new Set(all.map(([code]) => code));
    const sent = new Set<string>();
    for (const file of sources(src)) {
      for (const match of readFileSync(file, 'utf8').matchAll(/code: '([A-Z]+(?:_[A-Z]+)+)'/g)) sent.add(match[1]!);
      for (const match of readFileSync(file, 'utf8').matchAll(/Errors\.create\('([A-Z_]+)'/g)) sent.add(match[1]!);
    }
    // errno-style codes on socket errors (oauth/outbound.ts) end a connection inside the process
    // and reach no client: the back-channel logout that failed is audited with its message.
    const internal = new Set(['EGATEHOUSE_PRIVATE_TARGET']);
    for (const code of sent) assert.ok(known.has(code) || internal.has(code) || code.startsWith('CLI_') || code === 'CONFIG_INVALID', `${code} is sent but not catalogued`);
  });
});
