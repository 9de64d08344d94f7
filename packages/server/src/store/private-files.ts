import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * The data directory holds password hashes, emails, session ids and the development master
 * key: only the server's user may read it. A directory we create is 0700; one that exists
 * keeps the operator's mode (it may be a mount point shared on purpose), while the files in
 * it are ours and are 0600 whatever umask the process runs under.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Creates `path` 0600 before anything writes to it, or narrows an existing file to 0600. */
export function ensurePrivateFile(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  narrowToPrivate(path);
}

/** Narrows a file that exists (one an older version left readable) to 0600. */
export function narrowToPrivate(path: string): void {
  if (existsSync(path) && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
}
