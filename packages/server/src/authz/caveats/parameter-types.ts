import { Duration } from '@marcbachmann/cel-js/evaluator';
import { IPAddress, parseIPAddress } from './ip-address.js';
import { parseDuration, parseTimestamp } from './time.js';

/** A caveat parameter type of the SpiceDB schema language, parsed. */
export type ParameterType =
  | { kind: 'int' | 'uint' | 'double' | 'bool' | 'string' | 'bytes' | 'duration' | 'timestamp' | 'ipaddress' | 'any' }
  | { kind: 'list'; element: ParameterType }
  | { kind: 'map'; value: ParameterType };

const SCALARS = new Set(['int', 'uint', 'double', 'bool', 'string', 'bytes', 'duration', 'timestamp', 'ipaddress', 'any']);

/** `list<map<int>>` → a ParameterType; `undefined` for anything SpiceDB does not define. */
export function parseParameterType(text: string): ParameterType | undefined {
  const t = text.replace(/\s+/g, '');
  if (SCALARS.has(t)) return { kind: t } as ParameterType;
  const generic = /^(list|map)<(.+)>$/.exec(t);
  if (!generic) return undefined;
  const inner = parseParameterType(generic[2]!);
  if (!inner) return undefined;
  return generic[1] === 'list' ? { kind: 'list', element: inner } : { kind: 'map', value: inner };
}

export function formatParameterType(type: ParameterType): string {
  if (type.kind === 'list') return `list<${formatParameterType(type.element)}>`;
  if (type.kind === 'map') return `map<${formatParameterType(type.value)}>`;
  return type.kind;
}

/** The CEL type a parameter is declared with (the names @marcbachmann/cel-js uses). */
export function celTypeOf(type: ParameterType): string {
  switch (type.kind) {
    case 'list':
      return `list<${celTypeOf(type.element)}>`;
    case 'map':
      // SpiceDB maps always have string keys.
      return `map<string, ${celTypeOf(type.value)}>`;
    // SpiceDB declares uint parameters as CEL int (pkg/caveats/types/basic.go), so
    // `count < limit` and `count < 5` type-check; only the conversion rejects negatives.
    case 'uint':
      return 'int';
    case 'duration':
      return 'google.protobuf.Duration';
    case 'timestamp':
      return 'google.protobuf.Timestamp';
    case 'any':
      return 'dyn';
    default:
      return type.kind;
  }
}

/** A context value that does not fit the declared type; `path` says where inside it. */
export class ContextValueError extends Error {
  constructor(
    readonly reason: string,
    readonly path: string = '',
  ) {
    super(reason);
  }

  within(step: string): ContextValueError {
    return new ContextValueError(this.reason, `${step}${this.path}`);
  }
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const describe = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value) ?? String(value)}`;

function toInteger(value: unknown, unsigned: boolean): bigint {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && INTEGER_TEXT.test(value)) n = BigInt(value);
  else if (typeof value === 'string' && NUMBER_TEXT.test(value) && Number.isInteger(Number(value))) n = BigInt(Number(value));
  else throw new ContextValueError(`expected an integer, found ${describe(value)}`);
  // SpiceDB reads both through int64 (uint parameters are CEL ints).
  if (n < (unsigned ? 0n : INT64_MIN) || n > INT64_MAX) throw new ContextValueError(`${n} is out of range`);
  return n;
}

function toDouble(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && NUMBER_TEXT.test(value)) return Number(value);
  throw new ContextValueError(`expected a number, found ${describe(value)}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function entriesOf(value: unknown): [string, unknown][] | undefined {
  if (value instanceof Map) return [...(value as Map<unknown, unknown>)].every(([k]) => typeof k === 'string') ? [...(value as Map<string, unknown>)] : undefined;
  return isPlainObject(value) ? Object.entries(value) : undefined;
}

/** A JSON value as a CEL `dyn`: numbers are doubles (as in SpiceDB's structpb), objects maps. */
function toDyn(value: unknown): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string' || typeof value === 'bigint') return value;
  if (value instanceof Date || value instanceof Duration || value instanceof IPAddress || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((item, i) => wrap(() => toDyn(item), `[${i}]`));
  const entries = entriesOf(value);
  if (entries) return new Map(entries.map(([k, v]) => [k, wrap(() => toDyn(v), `.${k}`)]));
  throw new ContextValueError(`${describe(value)} is not a JSON value`);
}

function wrap<T>(convert: () => T, step: string): T {
  try {
    return convert();
  } catch (error) {
    throw error instanceof ContextValueError ? error.within(step) : error;
  }
}

/**
 * Converts a JSON context value to the CEL value of the declared type, or throws a
 * ContextValueError. Mirrors SpiceDB's converters: ints from integral numbers or numeric
 * strings, bytes from standard base64, timestamps from RFC 3339, durations from Go duration
 * strings, ipaddress from its text form; lists and maps element by element.
 */
export function convertValue(type: ParameterType, value: unknown): unknown {
  switch (type.kind) {
    case 'int':
      return toInteger(value, false);
    case 'uint':
      return toInteger(value, true);
    case 'double':
      return toDouble(value);
    case 'bool':
      if (typeof value !== 'boolean') throw new ContextValueError(`expected true or false, found ${describe(value)}`);
      return value;
    case 'string':
      if (typeof value !== 'string') throw new ContextValueError(`expected a string, found ${describe(value)}`);
      return value;
    case 'bytes':
      if (value instanceof Uint8Array) return value;
      if (typeof value !== 'string' || !BASE64.test(value)) throw new ContextValueError(`expected a base64 string, found ${describe(value)}`);
      return new Uint8Array(Buffer.from(value, 'base64'));
    case 'duration': {
      if (value instanceof Duration) return value;
      const nanos = typeof value === 'string' ? parseDuration(value) : undefined;
      if (nanos === undefined) throw new ContextValueError(`expected a duration such as "1h30m", found ${describe(value)}`);
      return new Duration(nanos / 1_000_000_000n, Number(nanos % 1_000_000_000n));
    }
    case 'timestamp': {
      if (value instanceof Date && !Number.isNaN(value.getTime())) return value;
      const ms = typeof value === 'string' ? parseTimestamp(value) : undefined;
      if (ms === undefined) throw new ContextValueError(`expected an RFC 3339 timestamp, found ${describe(value)}`);
      return new Date(ms);
    }
    case 'ipaddress': {
      if (value instanceof IPAddress) return value;
      const ip = typeof value === 'string' ? parseIPAddress(value) : undefined;
      if (!ip) throw new ContextValueError(`expected an IP address, found ${describe(value)}`);
      return ip;
    }
    case 'any':
      return toDyn(value);
    case 'list':
      if (!Array.isArray(value)) throw new ContextValueError(`expected a list, found ${describe(value)}`);
      return value.map((item, i) => wrap(() => convertValue(type.element, item), `[${i}]`));
    case 'map': {
      const entries = entriesOf(value);
      if (!entries) throw new ContextValueError(`expected an object, found ${describe(value)}`);
      return new Map(entries.map(([k, v]) => [k, wrap(() => convertValue(type.value, v), `.${k}`)]));
    }
  }
}
