/** oidc-provider's request-context storage (lib/helpers/als.js), which ships no types of its own. */
declare module 'oidc-provider/lib/helpers/als.js' {
  import type { AsyncLocalStorage } from 'node:async_hooks';

  const storage: AsyncLocalStorage<unknown>;
  export default storage;
}

/** oidc-provider's special-use address check (lib/helpers/fetch_request.js), untyped upstream. */
declare module 'oidc-provider/lib/helpers/fetch_request.js' {
  export function isSpecialUseIP(address: string): boolean;
}
