import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError, parseMasterKey } from '../config/defaults.js';
import { ensurePrivateDir } from '../store/private-files.js';

/**
 * The master key: GATEHOUSE_MASTER_KEY when set (required in production, enforced by
 * config), otherwise a development key generated once into `{dataDir}/master.key` with
 * mode 0600 so only the server's user can read it.
 */
export function resolveMasterKey(configured: Buffer | undefined, dataDir: string, production: boolean): { key: Buffer; source: 'env' | 'file' | 'generated' } {
  if (configured) return { key: configured, source: 'env' };
  // A key kept beside the data it protects protects nothing once the directory (or a backup
  // of it) leaks: production takes the key only from the environment.
  if (production) {
    throw new ConfigError('GATEHOUSE_MASTER_KEY', 'is required when NODE_ENV=production (a key file in the data directory is for development only)', 'set it to 32 random bytes, e.g. `openssl rand -base64 32`, from a secret manager');
  }
  const path = join(dataDir, 'master.key');
  if (existsSync(path)) return { key: parseMasterKey(readFileSync(path, 'utf8'), path), source: 'file' };
  ensurePrivateDir(dataDir);
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
