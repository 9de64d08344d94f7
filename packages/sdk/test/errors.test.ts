/**
 * The error catalogue, the ErrorCode type and docs/sdk.md must agree.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { errorCatalogue, GatehouseTokenError, type ErrorCode } from '../src/index.js';

const docs = readFileSync(new URL('../../../docs/sdk.md', import.meta.url), 'utf8');
const codes = Object.keys(errorCatalogue) as ErrorCode[];

/** Rows of the "Error codes" table: | `CODE` | status | `error` | meaning | */
function documentedErrors(): Map<string, { status: number; error: string }> {
  const section = docs.split('## Error codes')[1]?.split('\n## ')[0] ?? '';
  const rows = new Map<string, { status: number; error: string }>();
  for (const match of section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| `([a-z_]+)` \|/gm)) {
    const [, code = '', status = '', error = ''] = match;
    assert.ok(!rows.has(code), `${code} is documented twice`);
    rows.set(code, { status: Number(status), error });
  }
  return rows;
}

describe('error catalogue', () => {
  it('has a unique, well-formed code per entry', () => {
    assert.equal(new Set(codes).size, codes.length);
    for (const code of codes) assert.match(code, /^[A-Z]+(_[A-Z]+)+$/);
  });

  it('maps every code to an RFC 6750 / RFC 6749 error and a matching status', () => {
    const statusOf: Record<string, number[]> = {
      invalid_request: [400, 401],
      invalid_token: [401],
      insufficient_scope: [403],
      server_error: [500],
      temporarily_unavailable: [503],
    };
    for (const code of codes) {
      const { status, error } = errorCatalogue[code];
      assert.ok(statusOf[error]?.includes(status), `${code}: ${error} with status ${status}`);
    }
  });

  it('uses only characters RFC 6750 §3 allows in error_description', () => {
    for (const code of codes) {
      assert.match(errorCatalogue[code].description, /^[\x20\x21\x23-\x5B\x5D-\x7E]+$/, code);
    }
  });

  it('builds a GatehouseTokenError carrying each entry', () => {
    for (const code of codes) {
      const error = new GatehouseTokenError(code, { detail: 'detail' });
      assert.equal(error.code, code);
      assert.equal(error.status, errorCatalogue[code].status);
      assert.equal(error.error, errorCatalogue[code].error);
      assert.equal(error.description, errorCatalogue[code].description);
      assert.equal(error.message, `${errorCatalogue[code].message}: detail`);
      assert.equal(error.name, 'GatehouseTokenError');
    }
  });

  it('documents every code in docs/sdk.md with its status and error, and no other code', () => {
    const documented = documentedErrors();
    for (const code of codes) {
      assert.ok(docs.includes(code), `${code} is missing from docs/sdk.md`);
      assert.deepEqual(documented.get(code), { status: errorCatalogue[code].status, error: errorCatalogue[code].error }, code);
    }
    assert.deepEqual([...documented.keys()].sort(), [...codes].sort());
  });
});
