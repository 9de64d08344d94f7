/**
 * SpiceDB's `ipaddress` caveat type: an IPv4 or IPv6 address with `in_cidr(string)`.
 * Semantics follow Go's `net/netip`, which SpiceDB uses: addresses are unmapped
 * (`::ffff:10.0.0.1` is the IPv4 address 10.0.0.1), an IPv4 address never matches an IPv6
 * prefix nor the reverse, and an address with an IPv6 zone matches no prefix.
 */
export class IPAddress {
  readonly #bytes: Uint8Array;
  readonly #zone: string | undefined;

  constructor(bytes: Uint8Array, zone?: string) {
    this.#bytes = bytes;
    this.#zone = zone;
  }

  get family(): 4 | 6 {
    return this.#bytes.length === 4 ? 4 : 6;
  }

  /** `true` when the address lies in the CIDR block; throws a RangeError for an invalid CIDR. */
  inCidr(cidr: string): boolean {
    const prefix = parsePrefix(cidr);
    if (!prefix) throw new RangeError(`invalid CIDR string: \`${cidr}\``);
    if (this.#zone !== undefined || prefix.bytes.length !== this.#bytes.length) return false;
    const whole = prefix.bits >> 3;
    for (let i = 0; i < whole; i++) if (this.#bytes[i] !== prefix.bytes[i]) return false;
    const rest = prefix.bits & 7;
    if (rest === 0) return true;
    const mask = (0xff << (8 - rest)) & 0xff;
    return ((this.#bytes[whole]! ^ prefix.bytes[whole]!) & mask) === 0;
  }

  equals(other: IPAddress): boolean {
    return this.#zone === other.#zone && this.#bytes.length === other.#bytes.length && this.#bytes.every((b, i) => b === other.#bytes[i]);
  }

  toString(): string {
    if (this.#bytes.length === 4) return this.#bytes.join('.');
    const groups: number[] = [];
    for (let i = 0; i < 16; i += 2) groups.push((this.#bytes[i]! << 8) | this.#bytes[i + 1]!);
    // RFC 5952 §4.2: compress the longest run (of two or more) of zero groups.
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8; ) {
      let j = i;
      while (j < 8 && groups[j] === 0) j++;
      if (j - i > bestLen) [best, bestLen] = [i, j - i];
      i = j === i ? i + 1 : j;
    }
    const hex = groups.map((g) => g.toString(16));
    const text = best < 0 ? hex.join(':') : `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
    return this.#zone === undefined ? text : `${text}%${this.#zone}`;
  }
}

/** Parses an IP address as `netip.ParseAddr(…).Unmap()` does; `undefined` when invalid. */
export function parseIPAddress(text: string): IPAddress | undefined {
  const v4 = parseIPv4(text);
  if (v4) return new IPAddress(v4);
  const v6 = parseIPv6(text, true);
  if (!v6) return undefined;
  const mapped = v6.bytes.subarray(0, 10).every((b) => b === 0) && v6.bytes[10] === 0xff && v6.bytes[11] === 0xff;
  return mapped ? new IPAddress(v6.bytes.slice(12)) : new IPAddress(v6.bytes, v6.zone);
}

/** `netip.ParsePrefix`: an address without zone (not unmapped), `/`, and 0–32 or 0–128 bits. */
function parsePrefix(text: string): { bytes: Uint8Array; bits: number } | undefined {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return undefined;
  const bitsText = text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(bitsText)) return undefined;
  const addr = text.slice(0, slash);
  const bytes = parseIPv4(addr) ?? parseIPv6(addr, false)?.bytes;
  if (!bytes) return undefined;
  const bits = Number(bitsText);
  return bits > bytes.length * 8 ? undefined : { bytes, bits };
}

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    // Go rejects leading zeros: `010.0.0.1` is ambiguous (octal in some parsers).
    if (!/^(0|[1-9]\d{0,2})$/.test(parts[i]!)) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    bytes[i] = n;
  }
  return bytes;
}

function parseIPv6(text: string, allowZone: boolean): { bytes: Uint8Array; zone?: string } | undefined {
  let body = text;
  let zone: string | undefined;
  const percent = text.indexOf('%');
  if (percent >= 0) {
    zone = text.slice(percent + 1);
    body = text.slice(0, percent);
    if (!allowZone || zone === '') return undefined;
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string, last: boolean): number[] | undefined => {
    if (half === '') return [];
    const out: number[] = [];
    const parts = half.split(':');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (last && i === parts.length - 1 && part.includes('.')) {
        const v4 = parseIPv4(part);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined;
        out.push(parseInt(part, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  const count = head.length + tail.length;
  // Without `::` all eight groups are needed; with it, `::` stands for at least one zero group.
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const all = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return zone === undefined ? { bytes } : { bytes, zone };
}
