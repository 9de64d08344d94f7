/**
 * Every option of createVerifier is documented, with its default, in docs/sdk.md.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DEFAULT_ALGORITHMS, VERIFIER_DEFAULTS, verifierOptions, type VerifierOptions } from '../src/index.js';

const docs = readFileSync(new URL('../../../docs/sdk.md', import.meta.url), 'utf8');
const optionsSection = docs.split('## Options')[1]?.split('\n## ')[0] ?? '';

function documentedDefault(option: string): string | undefined {
  const row = new RegExp(`^\\| \`${option}\` \\| ([^|]+) \\|`, 'm').exec(optionsSection);
  return row?.[1]?.trim();
}

describe('verifier options', () => {
  it('documents every option with its default in docs/sdk.md', () => {
    for (const [name, doc] of Object.entries(verifierOptions)) {
      const documented = documentedDefault(name);
      assert.ok(documented !== undefined, `option ${name} is missing from the docs table`);
      if (doc.required) assert.equal(documented, 'required', name);
      else if (typeof doc.default === 'number') assert.equal(documented, `\`${doc.default}\``, name);
    }
  });

  it('documents the default algorithm allowlist exactly', () => {
    assert.equal(documentedDefault('algorithms'), `\`[${DEFAULT_ALGORITHMS.map((alg) => `'${alg}'`).join(', ')}]\``);
  });

  it('describes every key of VerifierOptions and nothing else', () => {
    // Compile-time half: each documented name is a VerifierOptions key and vice versa.
    const names: Record<keyof VerifierOptions, true> = {
      issuer: true,
      audience: true,
      algorithms: true,
      requiredScopes: true,
      clockToleranceSeconds: true,
      jwksCacheTtlSeconds: true,
      jwksRefreshMinIntervalSeconds: true,
      fetchTimeoutSeconds: true,
      fetch: true,
      clock: true,
    };
    assert.deepEqual(Object.keys(verifierOptions).sort(), Object.keys(names).sort());
  });

  it('keeps the documented numeric defaults', () => {
    assert.deepEqual(VERIFIER_DEFAULTS, {
      clockToleranceSeconds: 60,
      jwksCacheTtlSeconds: 600,
      jwksRefreshMinIntervalSeconds: 30,
      fetchTimeoutSeconds: 5,
    });
  });
});
