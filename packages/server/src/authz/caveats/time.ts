/**
 * The two time formats of SpiceDB caveat context: RFC 3339 timestamps (Go's `time.RFC3339`,
 * which also reads fractional seconds) and Go duration strings (`time.ParseDuration`).
 */

// RFC 3339 §5.6, as Go reads it: upper-case `T` and `Z`, any number of fraction digits.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/;

const daysIn = (year: number, month: number): number =>
  month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;

/**
 * Reads an RFC 3339 timestamp (`2024-10-03T07:16:28.068632-07:00`) as epoch milliseconds, or
 * `undefined` when the text is not one. Digits past the millisecond are dropped (JavaScript
 * dates have millisecond precision). Out-of-range fields are rejected, not rolled over the way
 * `Date.parse` rolls `02-30` into March.
 */
export function parseTimestamp(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (m[8]) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[8] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millis);
  return date.getTime() - offsetMinutes * 60_000;
}

const NANOS_PER_UNIT: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX_NANOS = (1n << 63n) - 1n;
const SEGMENT = /^(\d*)(?:\.(\d*))?([^\d.]*)/;

/**
 * Reads a Go duration string (`1h30m`, `-1.5h`, `300ms`, `0`) as signed nanoseconds, or
 * `undefined` when it is not one. Like Go: every number needs a unit, and the total must fit
 * in an int64 of nanoseconds.
 */
export function parseDuration(text: string): bigint | undefined {
  let rest = text;
  let negative = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest.startsWith('-');
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n;
  if (rest === '') return undefined;
  let total = 0n;
  while (rest !== '') {
    const m = SEGMENT.exec(rest);
    if (!m || (m[1] === '' && !m[2])) return undefined;
    const unit = NANOS_PER_UNIT[m[3]!];
    if (unit === undefined) return undefined;
    let value = BigInt(m[1] || '0') * unit;
    if (m[2]) value += (BigInt(m[2]) * unit) / 10n ** BigInt(m[2].length);
    total += value;
    if (total > MAX_NANOS + (negative ? 1n : 0n)) return undefined;
    rest = rest.slice(m[0].length);
  }
  return negative ? -total : total;
}
