import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { caveatErrors, compileCaveats, parseDuration, parseIPAddress, parseTimestamp } from '../../src/authz/caveats/index.js';
import { GatehouseError } from '../../src/errors.js';
import type { CaveatDefinition, CaveatResult } from '../../src/authz/types.js';

const position = { line: 1, column: 1 };
const caveat = (name: string, params: string, expression: string): CaveatDefinition => ({
  name,
  parameters: params
    .split(',')
    .filter((p) => p.trim())
    .map((p) => {
      const [paramName, ...type] = p.trim().split(/\s+/);
      return { name: paramName!, type: type.join(' ') };
    }),
  expression,
  position,
});
const TRUE: CaveatResult = { result: 'true' };
const FALSE: CaveatResult = { result: 'false' };
const missing = (...names: string[]): CaveatResult => ({ result: 'missing', missing: names });

/** Asserts a GatehouseError with this code (callers match on code, never on message). */
function throwsCode(fn: () => unknown, code: keyof typeof caveatErrors.catalogue, details?: Record<string, unknown>) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GatehouseError, String(error));
    assert.equal(error.code, code, error.message);
    for (const [k, v] of Object.entries(details ?? {})) assert.deepEqual(error.details?.[k], v, `${k} in ${error.message}`);
    return true;
  });
}

describe('caveat compilation', () => {
  it('compiles each caveat once and evaluates it by name, slash-qualified names included', () => {
    const caveats = compileCaveats([caveat('foo/bar/only_on_tuesday', 'day_of_week string', "day_of_week == 'tuesday'")]);
    assert.deepEqual(caveats.evaluate('foo/bar/only_on_tuesday', { day_of_week: 'tuesday' }), TRUE);
    assert.deepEqual(caveats.evaluate('foo/bar/only_on_tuesday', { day_of_week: 'monday' }), FALSE);
    assert.deepEqual(caveats.parameters('foo/bar/only_on_tuesday'), [{ name: 'day_of_week', type: 'string' }]);
    assert.equal(caveats.has('foo/bar/only_on_tuesday'), true);
    assert.equal(caveats.has('only_on_tuesday'), false);
  });

  const invalid: [string, CaveatDefinition, keyof typeof caveatErrors.catalogue][] = [
    ['a type error (int compared with string)', caveat('c', 'n int', 'n == "42"'), 'AUTHZ_CAVEAT_INVALID_EXPRESSION'],
    ['a syntax error', caveat('c', 'n int', 'n == '), 'AUTHZ_CAVEAT_INVALID_EXPRESSION'],
    ['an undeclared variable', caveat('c', 'n int', 'm == 1'), 'AUTHZ_CAVEAT_INVALID_EXPRESSION'],
    ['a result that is not a bool', caveat('c', 'n int', 'n + 1'), 'AUTHZ_CAVEAT_INVALID_EXPRESSION'],
    ['a method the type lacks', caveat('c', 's string', 's.in_cidr("10.0.0.0/8")'), 'AUTHZ_CAVEAT_INVALID_EXPRESSION'],
    ['an unknown parameter type', caveat('c', 'n list<foo>', 'size(n) == 0'), 'AUTHZ_CAVEAT_INVALID_PARAMETER'],
    ['a parameter declared twice', caveat('c', 'n int, n string', 'n == 1'), 'AUTHZ_CAVEAT_INVALID_PARAMETER'],
  ];
  for (const [label, definition, code] of invalid) {
    it(`rejects ${label} when compiling, not when checking`, () => {
      throwsCode(() => compileCaveats([definition]), code, { caveat: 'c' });
    });
  }

  it('names the line and column of an expression error inside the expression', () => {
    throwsCode(() => compileCaveats([caveat('c', 'n int', 'n == 1 &&\n  n == "x"')]), 'AUTHZ_CAVEAT_INVALID_EXPRESSION', { expression: { line: 2, column: 3 } });
  });

  it('rejects two caveats with one name', () => {
    throwsCode(() => compileCaveats([caveat('c', 'n int', 'n == 1'), caveat('c', 'n int', 'n == 2')]), 'AUTHZ_CAVEAT_DUPLICATE');
  });

  it('answers AUTHZ_CAVEAT_UNKNOWN for a caveat the schema does not define', () => {
    const caveats = compileCaveats([]);
    throwsCode(() => caveats.evaluate('nope', {}), 'AUTHZ_CAVEAT_UNKNOWN', { caveat: 'nope' });
    throwsCode(() => caveats.parameters('nope'), 'AUTHZ_CAVEAT_UNKNOWN');
  });
});

describe('caveat context conversion', () => {
  // parameters × expression × context → result, or the error code.
  const table: [string, string, Record<string, unknown>, CaveatResult | keyof typeof caveatErrors.catalogue][] = [
    ['n int', 'n == 42', { n: 42 }, TRUE],
    ['n int', 'n == 42', { n: 41 }, FALSE],
    ['n int', 'n == 42', { n: '42' }, TRUE],
    ['n int', 'n == 42', { n: 42.5 }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['n int', 'n == 42', { n: '4x' }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['n int', 'n == 42', { n: 2 ** 64 }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['n int', 'n < 0', { n: -5 }, TRUE],
    ['limit uint, count uint', 'count < limit', { limit: 4, count: 3 }, TRUE],
    ['limit uint, count uint', 'count < limit', { limit: 2, count: 3 }, FALSE],
    ['limit uint, count uint', 'count < 5', { count: 3 }, TRUE],
    ['limit uint, count uint', 'count < limit', { limit: -1, count: 3 }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['d double', 'd > 1.5', { d: 2 }, TRUE],
    ['d double', 'd > 1.5', { d: 1.25 }, FALSE],
    ['d double', 'd > 1.5', { d: true }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['b bool', 'b', { b: true }, TRUE],
    ['b bool', 'b', { b: 'true' }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['s string', 's.startsWith("he")', { s: 'hello' }, TRUE],
    ['s string', 's == "1"', { s: 1 }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['s string', 's == "x"', { s: null }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['b bytes', 'b == b"hi"', { b: 'aGk=' }, TRUE],
    ['b bytes', 'b == b"hi"', { b: 'not base64!' }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['d duration', 'd > duration("1h")', { d: '1h30m' }, TRUE],
    ['d duration', 'd > duration("1h")', { d: '10s' }, FALSE],
    ['d duration', 'd == duration("90m")', { d: '1.5h' }, TRUE],
    ['d duration', 'd < duration("0s")', { d: '-1ms' }, TRUE],
    ['d duration', 'd > duration("1h")', { d: '1x' }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['d duration', 'd > duration("1h")', { d: 3600 }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['now timestamp, expires_at timestamp', 'now < expires_at', { now: '2023-01-01T00:00:00Z', expires_at: '2024-01-01T00:00:00Z' }, TRUE],
    ['now timestamp, expires_at timestamp', 'now < expires_at', { now: '2024-10-03T14:16:29Z', expires_at: '2024-10-03T07:16:28.068632-07:00' }, FALSE],
    ['now timestamp, expires_at timestamp', 'now < expires_at', { now: '2024-10-03T14:16:28Z', expires_at: '2024-10-03T07:16:28.068632-07:00' }, TRUE],
    ['now timestamp, expires_at timestamp', 'now < expires_at', { now: '2023-02-30T00:00:00Z', expires_at: '2024-01-01T00:00:00Z' }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['now timestamp, expires_at timestamp', 'now < expires_at', { now: '2023-01-01', expires_at: '2024-01-01T00:00:00Z' }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['t timestamp', 't + duration("24h") > timestamp("2023-01-01T12:00:00Z")', { t: '2023-01-01T00:00:00Z' }, TRUE],
    ['somelist list<int>', 'somelist.all(i, i >= 42)', { somelist: [42, 43] }, TRUE],
    ['somelist list<int>', 'somelist.all(i, i >= 42)', { somelist: [42, 41] }, FALSE],
    ['somelist list<int>', 'somelist.all(i, i >= 42)', { somelist: [] }, TRUE],
    ['somelist list<int>', 'somelist.all(i, i >= 42)', { somelist: [42, 'x'] }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['somelist list<int>', 'somelist.all(i, i >= 42)', { somelist: { a: 1 } }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['admin_teams list<string>, me string', 'me in admin_teams', { admin_teams: ['A', 'B'], me: 'B' }, TRUE],
    ['somemap map<any>', 'somemap.foo == 42 && somemap.bar < 56', { somemap: { foo: 42, bar: -2 } }, TRUE],
    ['somemap map<any>', 'somemap.foo == 42 && somemap.bar < 56', { somemap: { foo: 42, bar: 56 } }, FALSE],
    ['somemap map<any>', 'somemap.foo == 42 && somemap.bar < 56', { somemap: { foo: 41 } }, FALSE],
    ['somemap map<any>', 'somemap.foo == 42', { somemap: [42] }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['m map<int>', '"x" in m && size(m) == 1 && m.x == 3', { m: { x: 3 } }, TRUE],
    ['m map<int>', 'm.x == 3', { m: { x: 'three' } }, 'AUTHZ_CAVEAT_CONTEXT_INVALID'],
    ['m map<list<int>>', 'm.a[1] == 2', { m: { a: [1, 2] } }, TRUE],
    ['m map<any>', 'm.isSubtreeOf({"a": 1.0, "b": {"c": "d"}, "e": true})', { m: { a: 1, b: { c: 'd' } } }, TRUE],
    ['m map<any>', 'm.isSubtreeOf({"a": 1.0})', { m: { a: 2 } }, FALSE],
    ['x any', 'x == 42', { x: 42 }, TRUE],
    ['x any', 'x == "a"', { x: 'a' }, TRUE],
    ['x any', 'x.y[0] == true', { x: { y: [true] } }, TRUE],
  ];
  for (const [params, expression, context, expected] of table) {
    it(`${params}: ${expression} with ${JSON.stringify(context)} → ${typeof expected === 'string' ? expected : expected.result}`, () => {
      const caveats = compileCaveats([caveat('c', params, expression)]);
      if (typeof expected === 'string') throwsCode(() => caveats.evaluate('c', context), expected);
      else assert.deepEqual(caveats.evaluate('c', context), expected);
    });
  }

  it('says which parameter, and where inside it, did not convert', () => {
    const caveats = compileCaveats([caveat('c', 'm map<list<int>>', 'size(m) > 0')]);
    throwsCode(() => caveats.evaluate('c', { m: { a: [1, 2.5] } }), 'AUTHZ_CAVEAT_CONTEXT_INVALID', { caveat: 'c', parameter: 'm.a[1]', type: 'map<list<int>>' });
  });

  it('ignores context keys that are not parameters, inherited Object properties included', () => {
    const caveats = compileCaveats([caveat('c', 'constructor string', 'constructor == "x"')]);
    assert.deepEqual(caveats.evaluate('c', { constructor: 'x', other: { anything: [1] } }), TRUE);
    assert.deepEqual(caveats.evaluate('c', {}), missing('constructor'));
  });

  it('fails evaluation (not conversion) on an integer overflow or a division by zero', () => {
    const caveats = compileCaveats([caveat('over', 'n int', 'n + 9223372036854775807 > 0'), caveat('div', 'n int', 'n / 0 == 1')]);
    assert.deepEqual(caveats.evaluate('over', { n: 0 }), TRUE);
    throwsCode(() => caveats.evaluate('over', { n: 1 }), 'AUTHZ_CAVEAT_EVALUATION_FAILED', { caveat: 'over' });
    throwsCode(() => caveats.evaluate('div', { n: 1 }), 'AUTHZ_CAVEAT_EVALUATION_FAILED');
  });
});

describe('ipaddress caveat parameters', () => {
  const caveats = compileCaveats([caveat('is_valid_ip', 'user_ip ipaddress, cidr string', 'user_ip.in_cidr(cidr)')]);
  // address × CIDR → in the block?
  const table: [string, string, boolean][] = [
    ['10.1.3.4', '10.1.0.0/16', true],
    ['10.2.3.4', '10.1.0.0/16', false],
    ['10.2.3.4', '10.0.0.0/8', true],
    ['1.2.3.4', '1.0.0.0/8', true],
    ['2.3.4.5', '1.0.0.0/8', false],
    ['10.0.0.1', '10.0.0.1/32', true],
    ['10.0.0.2', '10.0.0.1/32', false],
    ['10.0.0.130', '10.0.0.128/25', true],
    ['10.0.0.127', '10.0.0.128/25', false],
    ['192.168.1.1', '0.0.0.0/0', true],
    ['10.1.2.3', '10.1.2.3/8', true],
    ['2001:db8::1', '2001:db8::/32', true],
    ['2001:db9::1', '2001:db8::/32', false],
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1/128', true],
    ['::1', '::/0', true],
    ['fe80::1', 'fe80::/10', true],
    ['febf::1', 'fe80::/10', true],
    ['fec0::1', 'fe80::/10', false],
    // netip semantics: v4-mapped addresses are IPv4; families never cross; zones match nothing.
    ['::ffff:10.0.0.1', '10.0.0.0/8', true],
    ['10.0.0.1', '::/0', false],
    ['2001:db8::1', '0.0.0.0/0', false],
    ['fe80::1%eth0', 'fe80::/10', false],
  ];
  for (const [ip, cidr, inside] of table) {
    it(`${ip} ${inside ? 'is' : 'is not'} in ${cidr}`, () => {
      assert.deepEqual(caveats.evaluate('is_valid_ip', { user_ip: ip, cidr }), inside ? TRUE : FALSE);
    });
  }

  for (const ip of ['10.0.0', '10.0.0.256', '010.0.0.1', '1::2::3', '1:2:3:4:5:6:7:8:9', '2001:db8::g', 'localhost', '']) {
    it(`rejects the address "${ip}" as context`, () => {
      throwsCode(() => caveats.evaluate('is_valid_ip', { user_ip: ip, cidr: '10.0.0.0/8' }), 'AUTHZ_CAVEAT_CONTEXT_INVALID', { parameter: 'user_ip', type: 'ipaddress' });
    });
  }

  for (const cidr of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/08', 'fe80::/129', 'fe80::%eth0/10', 'nope/8']) {
    it(`fails evaluation on the CIDR "${cidr}"`, () => {
      throwsCode(() => caveats.evaluate('is_valid_ip', { user_ip: '10.0.0.1', cidr }), 'AUTHZ_CAVEAT_EVALUATION_FAILED');
    });
  }

  it('compares addresses with == and prints them in canonical form', () => {
    const eq = compileCaveats([caveat('eq', 'a ipaddress, b ipaddress', 'a == b && string(a) == "2001:db8::1"')]);
    assert.deepEqual(eq.evaluate('eq', { a: '2001:DB8:0::1', b: '2001:db8::1' }), TRUE);
    assert.equal(parseIPAddress('::ffff:1.2.3.4')?.toString(), '1.2.3.4');
    assert.equal(parseIPAddress('1:0:0:2:0:0:0:3')?.toString(), '1:0:0:2::3');
  });
});

describe('caveat partial evaluation', () => {
  // expression (over a, b, c bool; n int; l list<int>) × context → result, as SpiceDB's cel-go
  // partial evaluation answers: only the absent parameters the answer depends on are missing.
  const params = 'a bool, b bool, c bool, n int, l list<int>';
  const table: [string, Record<string, unknown>, CaveatResult | 'AUTHZ_CAVEAT_EVALUATION_FAILED'][] = [
    ['a || b', {}, missing('a', 'b')],
    ['a || b', { a: true }, TRUE],
    ['a || b', { b: true }, TRUE],
    ['a || b', { a: false }, missing('b')],
    ['a || b', { b: false }, missing('a')],
    ['a && b', {}, missing('a', 'b')],
    ['a && b', { a: false }, FALSE],
    ['a && b', { b: false }, FALSE],
    ['a && b', { a: true }, missing('b')],
    ['(a && b) || c', { a: false }, missing('c')],
    ['(a && b) || c', { c: true }, TRUE],
    ['(a && b) || c', { a: true }, missing('b', 'c')],
    ['(a && b) || c', { a: true, b: true }, TRUE],
    ['a ? b : c', { a: true, c: false }, missing('b')],
    ['a ? b : c', { a: false, c: true }, TRUE],
    ['a ? b : c', { b: true, c: true }, missing('a')],
    ['!a', {}, missing('a')],
    ['!a || b', { b: true }, TRUE],
    ['n > 1 || a', { n: 0 }, missing('a')],
    ['n > 1 || a', { n: 2 }, TRUE],
    // Missing parameters are listed in declaration order.
    ['n + 1 > 1 && a', {}, missing('a', 'n')],
    ['n + 1 > 1 && a', { n: 0 }, FALSE],
    // A macro that never needs the absent parameter has its value.
    ['l.exists(i, i == n)', { l: [] }, FALSE],
    ['l.exists(i, i == n)', { l: [1] }, missing('n')],
    ['l.exists(i, i == 1 || i == n)', { l: [1] }, TRUE],
    // Unknown wins over an error; a true side wins over both.
    ['a || n / 0 == 1', { n: 1 }, missing('a')],
    ['a || n / 0 == 1', { a: true, n: 1 }, TRUE],
    ['a || n / 0 == 1', { a: false, n: 1 }, 'AUTHZ_CAVEAT_EVALUATION_FAILED'],
    ['n / 0 == 1 && a', { n: 1, a: false }, FALSE],
  ];
  for (const [expression, context, expected] of table) {
    it(`${expression} with ${JSON.stringify(context)} → ${typeof expected === 'string' ? expected : JSON.stringify(expected)}`, () => {
      const caveats = compileCaveats([caveat('c', params, expression)]);
      if (typeof expected === 'string') throwsCode(() => caveats.evaluate('c', context), expected);
      else assert.deepEqual(caveats.evaluate('c', context), expected);
    });
  }

  it('never reports a parameter the expression does not mention', () => {
    const caveats = compileCaveats([caveat('c', 'x int, unused string', 'x == 1')]);
    assert.deepEqual(caveats.evaluate('c', {}), missing('x'));
  });

  it('does not count a macro variable that shadows a parameter as a use of it', () => {
    const caveats = compileCaveats([caveat('c', 'l list<int>, i int', 'l.all(i, i > 0)')]);
    assert.deepEqual(caveats.evaluate('c', { l: [1] }), TRUE);
    assert.deepEqual(caveats.evaluate('c', {}), missing('l'));
  });
});

describe('caveat time formats', () => {
  it('reads RFC 3339 timestamps with offsets and fractions, and refuses impossible dates', () => {
    assert.equal(parseTimestamp('2300-01-01T00:00:00Z'), Date.UTC(2300, 0, 1));
    assert.equal(parseTimestamp('2024-10-03T07:16:28.068632-07:00'), Date.UTC(2024, 9, 3, 14, 16, 28, 68));
    assert.equal(parseTimestamp('2024-02-29T00:00:00+01:00'), Date.UTC(2024, 1, 28, 23));
    for (const bad of ['2023-02-29T00:00:00Z', '2023-13-01T00:00:00Z', '2023-01-01T24:00:00Z', '2023-01-01 00:00:00Z', '2023-01-01T00:00:00', '2023-01-01']) {
      assert.equal(parseTimestamp(bad), undefined, bad);
    }
  });

  it('reads Go duration strings', () => {
    const table: [string, bigint | undefined][] = [
      ['1h30m', 5_400_000_000_000n],
      ['10s', 10_000_000_000n],
      ['1.5h', 5_400_000_000_000n],
      ['-1.5s', -1_500_000_000n],
      ['300ms', 300_000_000n],
      ['1µs', 1000n],
      ['2us3ns', 2003n],
      ['.5s', 500_000_000n],
      ['0', 0n],
      ['', undefined],
      ['1', undefined],
      ['1d', undefined],
      ['.s', undefined],
      ['h', undefined],
      ['3000000h', undefined],
    ];
    for (const [text, nanos] of table) assert.equal(parseDuration(text), nanos, text);
  });
});

// SpiceDB's own validation files: every caveat compiles, every assertion context converts.
const corpus = fileURLToPath(new URL('../../../../../shared/conformance/spicedb/validation/', import.meta.url));
const CAVEAT = /caveat\s+([a-z0-9_/]+)\s*\(([^)]*)\)\s*\{([^}]*)\}/g;
const WITH = / with (\{.*\})\s*$/;
const STORED = /\[([a-z0-9_/]+):(\{.*\})\]/;

describe('caveats of the SpiceDB validation corpus', () => {
  const files = readdirSync(corpus)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => ({
      name,
      doc: parseYaml(readFileSync(join(corpus, name), 'utf8')) as { schema?: string; relationships?: string | null; assertions?: Record<string, string[] | null> | null },
    }));

  it('compiles all 24 caveat definitions and converts the caveat context of all 66 assertions that carry one', () => {
    let definitions = 0;
    let contexts = 0;
    for (const { name, doc } of files) {
      const defs = [...(doc.schema ?? '').matchAll(CAVEAT)].map((m) => caveat(m[1]!, m[2]!, m[3]!.trim()));
      definitions += defs.length;
      const caveats = compileCaveats(defs);
      const assertions = Object.values(doc.assertions ?? {}).flatMap((list) => list ?? []);
      for (const text of assertions) {
        const json = WITH.exec(text)?.[1];
        if (!json) continue;
        contexts++;
        for (const d of defs) {
          const result = caveats.evaluate(d.name, JSON.parse(json) as Record<string, unknown>);
          assert.ok(['true', 'false', 'missing'].includes(result.result), `${name} ${d.name} ${json}`);
        }
      }
    }
    assert.equal(definitions, 24);
    assert.equal(contexts, 66);
  });

  it('converts the caveat context stored on every relationship of the corpus', () => {
    let stored = 0;
    for (const { name, doc } of files) {
      const caveats = compileCaveats([...(doc.schema ?? '').matchAll(CAVEAT)].map((m) => caveat(m[1]!, m[2]!, m[3]!.trim())));
      for (const line of (doc.relationships ?? '').split('\n')) {
        const m = STORED.exec(line);
        if (!m) continue;
        stored++;
        const result = caveats.evaluate(m[1]!, JSON.parse(m[2]!) as Record<string, unknown>);
        assert.ok(['true', 'false', 'missing'].includes(result.result), `${name} ${line}`);
      }
    }
    assert.ok(stored >= 40, `${stored} relationships with caveat context`);
  });
});
