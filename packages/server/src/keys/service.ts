import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { signingAlgs, type SigningAlg } from '../config/defaults.js';
import { open, seal } from './crypto.js';
import { keyErrors } from './errors.js';
import type { KeyStore, SigningKeyRecord } from './types.js';

/** Tokens are accepted up to 60 s past `exp` by verifiers (clock skew), so keys stay that much longer. */
const VERIFIER_LEEWAY_MS = 60_000;

export interface TenantKeySet {
  /** The key that signs new tokens. */
  active: { kid: string; alg: SigningAlg };
  /** Private JWKs of the active and every not-yet-retired previous key, active first. */
  privateJwks: JWK[];
  /** What JWKS publishes. */
  publicJwks: { keys: JWK[] };
  /** When the next previous key retires (the set must be rebuilt then), or Infinity. */
  validUntil: number;
}

export interface KeyServiceDeps {
  store: KeyStore;
  masterKey: Buffer;
  defaultAlg: SigningAlg;
  /** Longest lifetime of any token the tenant's keys sign, in seconds. */
  maxTokenLifetime(tenantId: string): Promise<number>;
  /** Told which keys this process retired (for the audit trail). */
  onRetired?(tenantId: string, kids: string[]): void;
  clock?: () => number;
}

/**
 * Per-tenant signing keys. Rotation makes a new key active at once; the previous key stays
 * published until every token it can have signed has expired, then it retires (on the next
 * read after its deadline, so no timer has to be running).
 */
export function createKeyService({ store, masterKey, defaultAlg, maxTokenLifetime, onRetired, clock = Date.now }: KeyServiceDeps) {
  const cache = new Map<string, TenantKeySet>();

  async function generate(tenantId: string, alg: SigningAlg): Promise<SigningKeyRecord> {
    if (!signingAlgs.includes(alg)) throw keyErrors.create('KEYS_ALG_UNSUPPORTED', { alg });
    const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519', extractable: true } : { extractable: true, modulusLength: 2048 });
    const publicJwk = await exportJWK(publicKey);
    // RFC 7638 thumbprint: a stable, collision-free kid that anyone can recompute from the key.
    const kid = await calculateJwkThumbprint(publicJwk);
    const privateJwk = await exportJWK(privateKey);
    const now = clock();
    return {
      tenantId,
      kid,
      alg,
      status: 'active',
      publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
      privateJwkEnc: seal(JSON.stringify({ ...privateJwk, kid, alg, use: 'sig' }), masterKey, `${tenantId}/${kid}`),
      createdAt: now,
      deactivatedAt: null,
      retireAt: null,
    };
  }

  function unseal(record: SigningKeyRecord): JWK {
    try {
      return JSON.parse(open(record.privateJwkEnc, masterKey, `${record.tenantId}/${record.kid}`)) as JWK;
    } catch (cause) {
      throw Object.assign(keyErrors.create('KEYS_UNSEAL_FAILED', { tenant: record.tenantId }), { cause });
    }
  }

  async function rotate(tenantId: string, alg?: SigningAlg) {
    const records = await store.list(tenantId);
    const previous = records.find((r) => r.status === 'active');
    const key = await generate(tenantId, alg ?? previous?.alg ?? defaultAlg);
    const lifetime = await maxTokenLifetime(tenantId);
    const retireAt = key.createdAt + lifetime * 1000 + VERIFIER_LEEWAY_MS;
    await store.activate(key, retireAt);
    cache.delete(tenantId);
    return { kid: key.kid, alg: key.alg, previousKid: previous?.kid ?? null, previousRetireAt: previous ? retireAt : null };
  }

  async function load(tenantId: string): Promise<TenantKeySet> {
    const now = clock();
    let records = await store.list(tenantId);
    const due = records.filter((r) => r.status === 'previous' && r.retireAt !== null && r.retireAt <= now);
    if (due.length > 0) {
      // Another node may retire them first; only the one whose update counts reports it.
      if ((await store.retireDue(tenantId, now)) > 0) onRetired?.(tenantId, due.map((r) => r.kid));
      records = await store.list(tenantId);
    }
    const active = records.find((r) => r.status === 'active');
    if (!active) throw keyErrors.create('KEYS_NO_ACTIVE_KEY', { tenant: tenantId });
    const previous = records.filter((r) => r.status === 'previous');
    const live = [active, ...previous];
    return {
      active: { kid: active.kid, alg: active.alg },
      privateJwks: live.map(unseal),
      publicJwks: { keys: live.map((r) => r.publicJwk) },
      validUntil: Math.min(Infinity, ...previous.map((r) => r.retireAt ?? Infinity)),
    };
  }

  /** The cached live keys when still valid, without waiting: for hot paths that can fall back to `keySet`. */
  function cachedKeySet(tenantId: string): TenantKeySet | undefined {
    const cached = cache.get(tenantId);
    return cached && clock() < cached.validUntil ? cached : undefined;
  }

  return {
    /** Creates the tenant's first key if it has none. */
    async ensureKey(tenantId: string): Promise<void> {
      const records = await store.list(tenantId);
      if (!records.some((r) => r.status === 'active')) await rotate(tenantId);
    },
    rotate,
    /** The tenant's live keys, cached until the next retirement deadline or invalidation. */
    async keySet(tenantId: string): Promise<TenantKeySet> {
      const cached = cachedKeySet(tenantId);
      if (cached) return cached;
      const fresh = await load(tenantId);
      cache.set(tenantId, fresh);
      return fresh;
    },
    cachedKeySet,
    /** Every key of the tenant without private material, for the admin API. */
    async list(tenantId: string) {
      const records = await store.list(tenantId);
      return records.map(({ privateJwkEnc: _sealed, ...rest }) => rest);
    },
    /** Drops the cached set (a change from another node or the CLI). */
    invalidate(tenantId: string): void {
      cache.delete(tenantId);
    },
  };
}

export type KeyService = ReturnType<typeof createKeyService>;
