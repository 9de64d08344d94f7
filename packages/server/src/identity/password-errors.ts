import { defineErrors } from '../errors.js';

// Messages and details name the limits only: never the password, nor its length (both end
// up in logs and in API bodies).
export const passwordErrors = defineErrors({
  USERS_PASSWORD_TOO_SHORT: { status: 400, message: 'The password must have at least {minimum} characters' },
  USERS_PASSWORD_TOO_LONG: { status: 400, message: 'The password must have at most {maximum} characters' },
  USERS_PASSWORD_COMMON: { status: 400, message: 'The password is on the list of the most common leaked passwords; choose another one' },
});
