import { BlockList, isIP } from 'node:net';

/**
 * Which reverse proxies are believed about the client address (GATEHOUSE_TRUST_PROXY):
 * none, the nearest `hops` proxies, or the proxies at the listed addresses and networks.
 * The same rule serves Fastify (`request.ip`) and the OAuth engine path.
 */
export type TrustProxy = false | { hops: number } | { addresses: string[] };

/** Fastify's trust function form: is the peer at `address`, `hop` steps away, a proxy we trust? */
export type TrustFunction = (address: string, hop: number) => boolean;

/** `::ffff:10.0.0.1` is the IPv4 address 10.0.0.1 seen through an IPv6 socket. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

export function trustFunction(trust: TrustProxy): TrustFunction {
  if (trust === false) return () => false;
  if ('hops' in trust) return (_address, hop) => hop < trust.hops;
  const list = new BlockList();
  for (const entry of trust.addresses) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return (address) => {
    const ip = plain(address);
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/**
 * The client address: walk X-Forwarded-For from the right (the entry our nearest proxy
 * appended) while the peer that handed us the request is trusted, as Fastify does for
 * `request.ip`. A client can prepend any entries it likes, so the leftmost entry is never
 * believed on its own word.
 */
export function clientAddress(socketAddress: string, forwardedFor: string | string[] | undefined, trust: TrustFunction): string {
  let address = socketAddress;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor;
  if (!header) return address;
  const chain = header.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  for (let hop = 0; hop < chain.length && trust(address, hop); hop++) {
    const next = chain[chain.length - 1 - hop]!;
    if (isIP(next) === 0) break;
    address = next;
  }
  return address;
}

/** GATEHOUSE_TRUST_PROXY: `false`, a hop count, or a comma-separated list of addresses / CIDR networks. */
export function parseTrustProxy(raw: string, fail: (problem: string) => never): TrustProxy {
  const value = raw.trim();
  if (['0', 'false', 'no'].includes(value)) return false;
  // `true` keeps its old meaning of "behind a proxy", but only the nearest one is believed:
  // trusting every hop is what let a client choose its own address.
  if (['true', 'yes'].includes(value)) return { hops: 1 };
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 20) fail(`${hops} hops is more than any real proxy chain`);
    return { hops };
  }
  const addresses = value.split(',').map((entry) => entry.trim());
  for (const entry of addresses) {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const max = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (prefix !== undefined && (!/^\d+$/.test(prefix) || Number(prefix) > max))) {
      fail(`"${entry}" is not an IP address or CIDR network`);
    }
  }
  return { addresses };
}
