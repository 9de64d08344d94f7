import { defineErrors } from '../errors.js';

// Messages and details never carry the email address or a password: both end up in logs
// and in API bodies. The user id is an opaque identifier and may.
export const userErrors = defineErrors({
  USERS_NOT_FOUND: { status: 404, message: 'User "{user}" does not exist in tenant "{tenant}"' },
  USERS_EMAIL_TAKEN: { status: 409, message: 'Another user of tenant "{tenant}" has this email address (compared case-insensitively)' },
  USERS_EMAIL_INVALID: { status: 400, message: 'The email address is invalid: {reason}' },
  USERS_PICTURE_INVALID: { status: 400, message: 'picture must be an https URL (http only for localhost) of at most 2048 characters' },
  USERS_LOCALE_INVALID: { status: 400, message: 'locale must be a BCP 47 language tag such as "en" or "pt-BR"' },
  USERS_PROFILE_INVALID: { status: 400, message: '{field} is invalid: {reason}' },
});
