import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
// oidc-provider's own list of special-use addresses (RFC 6890 and the IANA registries), so both
// guards agree on what is private. Reached by path like engine-context.ts's storage.
import { isSpecialUseIP } from 'oidc-provider/lib/helpers/fetch_request.js';

/** A private, loopback, link-local or otherwise special-use address (IPv4, IPv6, IPv4-mapped). */
export function isSpecialUseAddress(address: string): boolean {
  // An IPv4-mapped IPv6 address in hex form (the URL parser writes [::ffff:127.0.0.1] as
  // [::ffff:7f00:1]) is checked as the IPv4 address it reaches.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (mapped) {
    const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
    return isSpecialUseIP(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return isSpecialUseIP(address);
}

/** A host name that always means this machine (RFC 6761 §6.3), whatever DNS says. */
const isLocalName = (host: string) => {
  const name = host.replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
};

/** The host of a URL without IPv6 brackets. */
const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/** Why `uri` may not be the target of a request that must stay off private networks, or undefined. */
export function privateTarget(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  const host = hostOf(url).toLowerCase();
  if (isLocalName(host)) return 'it names this machine';
  if (isIP(host) && isSpecialUseAddress(host)) return 'it is a private, loopback or special-use address';
  return undefined;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net/tls.connect that resolves the name and refuses the connection when any
 * address is special-use. The socket connects to exactly the address checked here, so a DNS
 * answer cannot change between the check and the connection (no rebinding gap).
 */
function guardedLookup(hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const refused = addresses.find((a) => isSpecialUseAddress(a.address));
    if (refused || addresses.length === 0 || isLocalName(hostname.toLowerCase())) {
      return callback(Object.assign(new Error(`${hostname} resolves to a special-use IP address`), { code: 'EGATEHOUSE_PRIVATE_TARGET' }), []);
    }
    if (options.all) return callback(null, addresses);
    return callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

/** undici's Agent, the dispatcher class behind Node's fetch (undici itself is not a dependency). */
function agentClass(): (new (options: unknown) => unknown) | undefined {
  // Touching Response makes Node set up its global dispatcher.
  void Response;
  const global = globalThis as Record<symbol, { constructor: new (options: unknown) => unknown } | undefined>;
  return (global[Symbol.for('undici.globalDispatcher.2')] ?? global[Symbol.for('undici.globalDispatcher.1')])?.constructor;
}

/**
 * `fetch` for oidc-provider's outgoing requests (back-channel logout) that never opens a TCP
 * or TLS connection to a special-use address: literal addresses and local names are refused
 * before any socket exists, and names are resolved and checked by the connector's lookup.
 */
export function createGuardedFetch(): (url: string | URL | Request, options?: RequestInit) => Promise<Response> {
  const Agent = agentClass();
  if (!Agent) throw new TypeError('cannot guard outgoing requests: Node\'s fetch dispatcher is not available');
  const dispatcher = new Agent({ connect: { lookup: guardedLookup } });
  return async (url, options) => {
    const target = url instanceof Request ? url.url : String(url);
    const reason = privateTarget(target);
    if (reason) throw new TypeError(`refused to connect to ${new URL(target).host}: ${reason}`);
    // oidc-provider's own dispatcher (which checks only after connecting) is replaced by ours.
    const { dispatcher: _theirs, ...rest } = (options ?? {}) as RequestInit & { dispatcher?: unknown };
    return fetch(url, { ...rest, dispatcher } as RequestInit);
  };
}
