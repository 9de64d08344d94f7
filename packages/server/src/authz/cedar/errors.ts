import { defineErrors } from '../../errors.js';

export const cedarErrors = defineErrors({
  AUTHZ_POLICY_INVALID: { status: 400, message: 'Cedar policy text is invalid: {diagnostics}' },
});
