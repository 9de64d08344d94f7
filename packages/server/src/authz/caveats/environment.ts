import { Environment } from '@marcbachmann/cel-js';
import { IPAddress } from './ip-address.js';

/** The CEL environment every caveat extends: SpiceDB's `ipaddress` type and its methods. */
export function baseEnvironment(): Environment {
  // cel-go (and so SpiceDB) accepts mixed list and map literals such as `[1, "a"]`.
  return new Environment({ homogeneousAggregateLiterals: false })
    .registerType('ipaddress', IPAddress)
    .registerFunction('ipaddress.in_cidr(string): bool', (ip: IPAddress, cidr: string) => ip.inCidr(cidr))
    .registerFunction('string(ipaddress): string', (ip: IPAddress) => ip.toString())
    .registerOperator('ipaddress == ipaddress', (a: IPAddress, b: IPAddress) => a.equals(b))
    .registerFunction({
      name: 'isSubtreeOf',
      receiverType: 'map<string, dyn>',
      returnType: 'bool',
      params: [{ name: 'other', type: 'map<string, dyn>' }],
      handler: (a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>) => isSubtree(a, b),
    });
}

/** SpiceDB's `isSubtreeOf`: every key of `a` is in `b` with an equal value, maps compared recursively. */
function isSubtree(a: ReadonlyMap<string, unknown> | Record<string, unknown>, b: ReadonlyMap<string, unknown> | Record<string, unknown>): boolean {
  const get = (m: ReadonlyMap<string, unknown> | Record<string, unknown>, k: string) => (m instanceof Map ? m.get(k) : Object.hasOwn(m, k) ? (m as Record<string, unknown>)[k] : undefined);
  const entries = a instanceof Map ? [...(a as ReadonlyMap<string, unknown>)] : Object.entries(a);
  for (const [key, value] of entries) {
    const other = get(b, key);
    if (other === undefined) return false;
    const nested = value instanceof Map || (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype);
    if (nested) {
      if (!(other instanceof Map || (typeof other === 'object' && other !== null))) return false;
      if (!isSubtree(value as ReadonlyMap<string, unknown>, other as ReadonlyMap<string, unknown>)) return false;
    } else if (value !== other) return false;
  }
  return true;
}
