import { readFileSync } from 'node:fs';

/** `resources/common-passwords.txt` of this package, from `src/identity/` and `dist/identity/` alike. */
const LIST = new URL('../../resources/common-passwords.txt', import.meta.url);

/**
 * The 30,000 most common passwords, most common first (zxcvbn's list; `resources/README.md` says
 * where it comes from and under which licence). Data, not code: read from the file when the
 * password policy first needs it.
 */
export function readCommonPasswords(): string[] {
  return readFileSync(LIST, 'utf8').split('\n').filter((entry) => entry !== '');
}
