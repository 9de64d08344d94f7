import { defineErrors } from '../errors.js';

export const keyErrors = defineErrors({
  KEYS_ALG_UNSUPPORTED: { status: 400, message: 'Signing algorithm {alg} is not supported; use ES256, EdDSA, RS256 or PS256' },
  KEYS_ALG_IN_USE: { status: 409, message: 'Clients of tenant {tenant} sign in with ID tokens signed {alg}, which the new keys would not hold: change their id_token_signed_response_alg first' },
  KEYS_NO_ACTIVE_KEY: { status: 500, message: 'Tenant {tenant} has no active signing key' },
  KEYS_UNSEAL_FAILED: { status: 500, message: 'A private key of tenant {tenant} could not be decrypted; is GATEHOUSE_MASTER_KEY the key it was sealed with?' },
});
