import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { signingAlgs, type SigningAlg } from '../config/defaults.js';
import { open, seal } from './crypto.js';
import { keyErrors } from './errors.js';
import type { KeyStore, SigningKeyRecord } from './types.js';

/** Tokens are accepted up to 60 s past `exp` by verifiers (clock skew), so keys stay that much longer. */
const VERIFIER_LEEWAY_MS = 60_000;

/**
 * The algorithm every OpenID client may assume: an OP MUST support RS256 for ID tokens
 * (OIDC Core §15.1, Discovery §3), and a client that registers no
 * `id_token_signed_response_alg` gets RS256 (Registration §2). A tenant whose default key is
 * of another algorithm keeps an RS256 key beside it, made, rotated and retired with it.
 */
export const ID_TOKEN_DEFAULT_ALG: SigningAlg = 'RS256';

export interface TenantKeySet {
  /** The tenant's default key: it signs access tokens (and ID tokens of clients that chose its algorithm). */
  active: { kid: string; alg: SigningAlg };
  /** The active key of each algorithm the tenant signs with: the default's and RS256. */
  signing: Partial<Record<SigningAlg, string>>;
  /** Private JWKs of the active and every not-yet-retired previous key, active first (the default first of all). */
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
  /** The ID-token algorithms the tenant's clients registered: a rotation may not leave one without a key. */
  idTokenAlgsInUse?(tenantId: string): Promise<SigningAlg[]>;
  clock?: () => number;
}

/**
 * Per-tenant signing keys. Rotation makes a new key active at once; the previous key stays
 * published until every token it can have signed has expired, then it retires (on the next
 * read after its deadline, so no timer has to be running).
 */
export function createKeyService({ store, masterKey, defaultAlg, maxTokenLifetime, onRetired, idTokenAlgsInUse, clock = Date.now }: KeyServiceDeps) {
  const cache = new Map<string, TenantKeySet>();

  /** A new key of `alg`, sealed; the caller has checked that `alg` is one we sign with (rotate). */
  async function generate(tenantId: string, alg: SigningAlg): Promise<SigningKeyRecord> {
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

  /** New active keys: the default of `alg` (else the current default's), and an RS256 one beside it unless it is RS256. */
  async function rotate(tenantId: string, alg?: SigningAlg) {
    const records = await store.list(tenantId);
    const previous = defaultOf(records.filter((r) => r.status === 'active'));
    const next = alg ?? previous?.alg ?? defaultAlg;
    if (!signingAlgs.includes(next)) throw keyErrors.create('KEYS_ALG_UNSUPPORTED', { alg: next });
    const stranded = (await idTokenAlgsInUse?.(tenantId))?.find((a) => a !== next && a !== ID_TOKEN_DEFAULT_ALG);
    if (stranded) throw keyErrors.create('KEYS_ALG_IN_USE', { alg: stranded, tenant: tenantId });
    const key = await generate(tenantId, next);
    const beside = next === ID_TOKEN_DEFAULT_ALG ? undefined : await generate(tenantId, ID_TOKEN_DEFAULT_ALG);
    const lifetime = await maxTokenLifetime(tenantId);
    const retireAt = key.createdAt + lifetime * 1000 + VERIFIER_LEEWAY_MS;
    await store.activate(tenantId, beside ? [key, beside] : [key], retireAt);
    cache.delete(tenantId);
    return { kid: key.kid, alg: key.alg, idTokenKid: beside?.kid ?? null, previousKid: previous?.kid ?? null, previousRetireAt: previous ? retireAt : null };
  }

  /**
   * A tenant from before the RS256 key gets one beside its default (safe to race between
   * nodes: one adds it). True when it was missing: the caller reads the keys again, which
   * hold it then, whoever added it.
   */
  async function addIdTokenKey(tenantId: string, records: SigningKeyRecord[]): Promise<boolean> {
    const actives = records.filter((r) => r.status === 'active');
    if (actives.length === 0 || actives.some((r) => r.alg === ID_TOKEN_DEFAULT_ALG)) return false;
    await store.addActive(await generate(tenantId, ID_TOKEN_DEFAULT_ALG));
    return true;
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
    if (await addIdTokenKey(tenantId, records)) records = await store.list(tenantId);
    const actives = records.filter((r) => r.status === 'active');
    const active = defaultOf(actives);
    if (!active) throw keyErrors.create('KEYS_NO_ACTIVE_KEY', { tenant: tenantId });
    const previous = records.filter((r) => r.status === 'previous');
    // The default first: oidc-provider signs with the first key of an algorithm it holds.
    const current = [active, ...actives.filter((r) => r !== active)];
    const live = [...current, ...previous];
    return {
      active: { kid: active.kid, alg: active.alg },
      signing: Object.fromEntries(current.map((r) => [r.alg, r.kid])),
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
    /** Creates the tenant's first keys if it has none. */
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

/**
 * The default among a tenant's active keys: the one that is not the RS256 key kept beside it
 * (there is never more than one of each), or the only one.
 */
function defaultOf(actives: SigningKeyRecord[]): SigningKeyRecord | undefined {
  return actives.find((r) => r.alg !== ID_TOKEN_DEFAULT_ALG) ?? actives[0];
}
