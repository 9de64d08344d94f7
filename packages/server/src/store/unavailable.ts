import type { Logger } from 'pino';
import { defineErrors, GatehouseError } from '../errors.js';

/** What a caller is told to wait before retrying while the database is unreachable (RFC 9110 §10.2.3). */
export const STORE_RETRY_AFTER_SECONDS = 5;

export const storeErrors = defineErrors({
  STORE_UNAVAILABLE: { status: 503, message: 'The database is unreachable; nothing was changed. Retry after {retryAfterSeconds} seconds' },
});

// SQLSTATE classes and codes that mean "the server or the connection went away", not "your
// query is wrong" (PostgreSQL Appendix A): class 08 connection exceptions, 57P01 admin
// shutdown (pg_terminate_backend, `pg_ctl stop -m fast`), 57P02 crash shutdown, 57P03 cannot
// connect now (starting up, shutting down), 53300 too many connections.
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
// Socket-level failures Node reports while connecting or on an open connection.
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
// node-postgres raises these as plain Errors without a code (pg/lib/client.js, pg-pool), so
// the message is all there is to recognise them by; they never reach a caller as text.
const UNAVAILABLE_DRIVER_MESSAGES = [
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

/** True when a driver error says the database cannot be reached right now (as opposed to a bad query). */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code))) return true;
  // A connection attempt that failed on every address (IPv4 and IPv6 of localhost).
  if (error instanceof AggregateError) return error.errors.some(isConnectionError);
  return UNAVAILABLE_DRIVER_MESSAGES.some((message) => error.message.startsWith(message));
}

/** True for the typed error every store operation raises when the database is unreachable. */
export function isStoreUnavailable(error: unknown): error is GatehouseError {
  return error instanceof GatehouseError && error.code === 'STORE_UNAVAILABLE';
}

export function storeUnavailable(cause: unknown): GatehouseError {
  const error = storeErrors.create('STORE_UNAVAILABLE', { retryAfterSeconds: STORE_RETRY_AFTER_SECONDS });
  (error as Error & { cause?: unknown }).cause = cause;
  return error;
}

/**
 * Whether the database answered the last time we asked, so an outage is logged once when it
 * starts and once when it ends, not once per failed query (a busy node fails thousands).
 */
export function createStoreHealth(logger?: Logger, clock: () => number = Date.now) {
  let downSince: number | undefined;
  let failures = 0;
  return {
    failed(error: unknown): void {
      failures++;
      if (downSince !== undefined) return;
      downSince = clock();
      logger?.error({ err: error }, 'database unreachable: requests that need it answer 503 until it is back');
    },
    succeeded(): void {
      if (downSince === undefined) return;
      logger?.warn({ outageMs: clock() - downSince, failedOperations: failures }, 'database reachable again');
      downSince = undefined;
      failures = 0;
    },
    get available(): boolean {
      return downSince === undefined;
    },
  };
}

export type StoreHealth = ReturnType<typeof createStoreHealth>;
