import type { JWK } from 'jose';
import type { SigningAlg } from '../config/defaults.js';

export type KeyStatus = 'active' | 'previous' | 'retired';

export interface SigningKeyRecord {
  tenantId: string;
  kid: string;
  alg: SigningAlg;
  /** active: signs new tokens; previous: only verifies until retireAt; retired: gone from JWKS. */
  status: KeyStatus;
  publicJwk: JWK;
  /** The private JWK sealed with AES-256-GCM under the master key. */
  privateJwkEnc: string;
  createdAt: number;
  deactivatedAt: number | null;
  retireAt: number | null;
}

export interface KeyStore {
  /** Newest first. */
  list(tenantId: string): Promise<SigningKeyRecord[]>;
  /** Inserts `active` (one key per algorithm) as the active keys; the active ones become previous with `retireAt`. */
  activate(tenantId: string, active: SigningKeyRecord[], retireAt: number): Promise<void>;
  /** Adds `key` beside the active keys unless one of its algorithm is active already; true when added. */
  addActive(key: SigningKeyRecord): Promise<boolean>;
  /** Marks previous keys whose retireAt has passed as retired; returns how many. */
  retireDue(tenantId: string, now: number): Promise<number>;
}
