import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseMasterKey } from '../config/defaults.js';

/**
 * The master key: GATEHOUSE_MASTER_KEY when set (required in production, enforced by
 * config), otherwise a development key generated once into `{dataDir}/master.key` with
 * mode 0600 so only the server's user can read it.
 */
export function resolveMasterKey(configured: Buffer | undefined, dataDir: string): { key: Buffer; source: 'env' | 'file' | 'generated' } {
  if (configured) return { key: configured, source: 'env' };
  const path = join(dataDir, 'master.key');
  if (existsSync(path)) return { key: parseMasterKey(readFileSync(path, 'utf8'), path), source: 'file' };
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  // 'wx' fails if another process created it first; then read theirs.
  try {
    writeFileSync(path, key.toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return { key: parseMasterKey(readFileSync(path, 'utf8'), path), source: 'file' };
    throw error;
  }
  chmodSync(path, 0o600);
  return { key, source: 'generated' };
}
