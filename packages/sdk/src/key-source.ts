/**
 * The issuer's verification keys: discovered, fetched, imported once, cached, refreshed
 * on rotation and rate-limited so junk tokens cannot turn the verifier into a request
 * amplifier against the issuer.
 */
import { importJWK, type CryptoKey, type JWK } from 'jose';
import { algorithmsForJwk } from './algorithms.js';
import { discoverJwksUri } from './discovery.js';
import { GatehouseTokenError } from './errors.js';
import { fetchJson, isJsonObject, type FetchLike } from './fetch-json.js';

/** Settings of a key source; the verifier derives them from its options. */
export interface KeySourceOptions {
  readonly issuer: string;
  readonly algorithms: readonly string[];
  readonly fetch: FetchLike;
  readonly clock: () => Date;
  readonly ttlMs: number;
  readonly minIntervalMs: number;
  readonly timeoutMs: number;
}

/** Imported keys of one JWKS snapshot. */
interface KeyIndex {
  /** kid → alg → key. Each JWK is imported once per algorithm it may verify. */
  readonly byKid: ReadonlyMap<string, ReadonlyMap<string, CryptoKey>>;
  /** alg → key, for tokens without `kid`, only when exactly one key fits that alg. */
  readonly soleByAlg: ReadonlyMap<string, CryptoKey>;
}

const SETTLED: Promise<void> = Promise.resolve();

/**
 * Creates the key cache of one issuer.
 *
 * Refresh rules:
 * - the JWKS is fetched lazily, then again once it is older than `ttlMs`;
 * - a token whose kid is unknown causes one refetch (key rotation, RFC 7517 §4.5 and
 *   OpenID Connect Core §10.1.1), but no fetch of any kind starts within `minIntervalMs`
 *   of the previous one, and concurrent callers share the one request in flight;
 * - a failed refresh keeps the previous key set; a failure with no key set at all is
 *   remembered and rethrown until the interval has passed.
 */
export function createKeySource(options: KeySourceOptions): KeySource {
  return new KeySource(options);
}

export class KeySource {
  readonly #options: KeySourceOptions;
  #jwksUri: string | undefined;
  #index: KeyIndex | undefined;
  #freshUntil = Number.NEGATIVE_INFINITY;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | undefined;
  #lastError: GatehouseTokenError | undefined;

  constructor(options: KeySourceOptions) {
    this.#options = options;
  }

  /**
   * The key for a token's `kid` and `alg`. The hot path is a synchronous map lookup;
   * only a cold, stale or missing entry returns a promise.
   */
  resolve(kid: string | undefined, alg: string): CryptoKey | Promise<CryptoKey> {
    const index = this.#index;
    if (index !== undefined && this.#options.clock().getTime() < this.#freshUntil) {
      const key = lookup(index, kid, alg);
      if (key !== undefined) return key;
    }
    return this.#resolveSlowly(kid, alg);
  }

  async #resolveSlowly(kid: string | undefined, alg: string): Promise<CryptoKey> {
    if (this.#index === undefined || this.#options.clock().getTime() >= this.#freshUntil) {
      await this.#refresh();
    }
    if (this.#index === undefined) {
      throw this.#lastError ?? new GatehouseTokenError('JWKS_FETCH_FAILED');
    }
    const known = lookup(this.#index, kid, alg);
    if (known !== undefined) return known;

    // An unknown kid usually means the issuer rotated keys since our last fetch. Look once
    // more; #refresh() does nothing if a fetch happened within the minimum interval.
    await this.#refresh();
    const rotated = lookup(this.#index, kid, alg);
    if (rotated !== undefined) return rotated;
    throw new GatehouseTokenError('TOKEN_KID_UNKNOWN');
  }

  /** Starts (or joins) a fetch, unless the last one started less than the interval ago. */
  #refresh(): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight;
    const now = this.#options.clock().getTime();
    if (now - this.#lastAttemptAt < this.#options.minIntervalMs) return SETTLED;
    this.#lastAttemptAt = now;
    const inflight = this.#load()
      .then(
        (index) => {
          this.#index = index;
          this.#freshUntil = this.#options.clock().getTime() + this.#options.ttlMs;
          this.#lastError = undefined;
        },
        (error: unknown) => {
          this.#lastError =
            error instanceof GatehouseTokenError
              ? error
              : new GatehouseTokenError('JWKS_FETCH_FAILED', { cause: error });
        },
      )
      .finally(() => {
        this.#inflight = undefined;
      });
    this.#inflight = inflight;
    return inflight;
  }

  async #load(): Promise<KeyIndex> {
    const { issuer, fetch, timeoutMs, algorithms } = this.#options;
    // The discovery document is fetched once; jwks_uri does not move while keys rotate.
    this.#jwksUri ??= await discoverJwksUri(issuer, fetch, timeoutMs);
    const jwks = await fetchJson(fetch, this.#jwksUri, timeoutMs, 'JWKS_FETCH_FAILED');
    if (!isJsonObject(jwks) || !Array.isArray(jwks.keys)) {
      throw new GatehouseTokenError('JWKS_FETCH_FAILED', { detail: 'the JWKS has no "keys" array (RFC 7517 §5)' });
    }
    return buildIndex(jwks.keys, algorithms);
  }
}

function lookup(index: KeyIndex, kid: string | undefined, alg: string): CryptoKey | undefined {
  return kid === undefined ? index.soleByAlg.get(alg) : index.byKid.get(kid)?.get(alg);
}

/** One imported (kid, alg, key) triple; `kid` is undefined for a JWK without one. */
interface ImportedKey {
  readonly kid: string | undefined;
  readonly alg: string;
  readonly key: CryptoKey;
}

async function buildIndex(jwks: readonly unknown[], algorithms: readonly string[]): Promise<KeyIndex> {
  const imported = (await Promise.all(jwks.map((jwk) => importVerificationKeys(jwk, algorithms)))).flat();

  const byKid = new Map<string, Map<string, CryptoKey>>();
  const ambiguous = new Set<string>();
  const perAlg = new Map<string, CryptoKey[]>();
  for (const { kid, alg, key } of imported) {
    perAlg.set(alg, [...(perAlg.get(alg) ?? []), key]);
    if (kid === undefined) continue;
    const byAlg = byKid.get(kid) ?? new Map<string, CryptoKey>();
    byKid.set(kid, byAlg);
    // Two keys under one kid for the same alg: we cannot tell which one the issuer meant,
    // so neither is used (the token fails as TOKEN_KID_UNKNOWN) rather than guessing.
    const slot = `${kid}\u0000${alg}`;
    if (ambiguous.has(slot)) continue;
    if (byAlg.has(alg)) {
      ambiguous.add(slot);
      byAlg.delete(alg);
      continue;
    }
    byAlg.set(alg, key);
  }

  const soleByAlg = new Map<string, CryptoKey>();
  for (const [alg, keys] of perAlg) {
    const [only] = keys;
    if (keys.length === 1 && only !== undefined) soleByAlg.set(alg, only);
  }
  return { byKid, soleByAlg };
}

/**
 * Imports one JWKS member for every allowed algorithm it may verify. Members that cannot
 * verify anything we allow are skipped, not fatal: a JWKS may legitimately carry
 * encryption keys or algorithms this verifier does not accept.
 */
async function importVerificationKeys(jwk: unknown, algorithms: readonly string[]): Promise<ImportedKey[]> {
  if (!isJsonObject(jwk)) return [];
  // RFC 7517 §4.2/§4.3: a key published for encryption, or without the "verify"
  // operation, is not a signature verification key.
  if (jwk.use !== undefined && jwk.use !== 'sig') return [];
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return [];
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') return [];
  const kid = jwk.kid;

  // Only public members are imported: a JWKS that leaks "d" must still yield a public key,
  // and symmetric ("oct") members never reach importJWK because no allowed alg fits them.
  const publicJwk: JWK = { kty: jwk.kty as string };
  for (const member of ['crv', 'x', 'y', 'n', 'e'] as const) {
    const value = jwk[member];
    if (typeof value === 'string') publicJwk[member] = value;
  }

  const results = await Promise.all(
    algorithmsForJwk(jwk, algorithms).map(async (alg): Promise<ImportedKey | undefined> => {
      try {
        const key = await importJWK(publicJwk, alg);
        if (key instanceof Uint8Array || key.type !== 'public') return undefined;
        // RFC 7518 §3.3/§3.5: RSA keys must be at least 2048 bits; jose would refuse such a
        // key on every verification, so it is dropped once here.
        const { modulusLength } = key.algorithm as { modulusLength?: number };
        if (modulusLength !== undefined && modulusLength < 2048) return undefined;
        return { kid, alg, key };
      } catch {
        return undefined; // not a valid key of its kty; skip it like any unusable member
      }
    }),
  );
  return results.filter((entry): entry is ImportedKey => entry !== undefined);
}
