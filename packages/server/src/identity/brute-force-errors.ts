import { defineErrors } from '../errors.js';

// The answer names neither the email nor which limit (account or IP) was hit: the reason
// goes to the audit event only. Details carry `retryAfterSeconds` for the Retry-After header.
export const bruteForceErrors = defineErrors({
  LOGIN_RATE_LIMITED: { status: 429, message: 'Too many failed sign-ins; try again in {retryAfterSeconds} seconds' },
});
