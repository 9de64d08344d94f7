/**
 * The one network primitive of the SDK: GET a JSON document with a timeout.
 */
import { GatehouseTokenError, type ErrorCode } from './errors.js';

/** The part of the WHATWG `fetch` the SDK needs; `globalThis.fetch` satisfies it. */
export type FetchLike = (
  url: string,
  init: { readonly headers: Record<string, string>; readonly signal: AbortSignal },
) => Promise<FetchResponseLike>;

/** The part of a fetch `Response` the SDK reads. */
export interface FetchResponseLike {
  readonly ok: boolean;
  readonly status: number;
  json(): Promise<unknown>;
  readonly body?: { cancel(): Promise<void> } | null;
}

/**
 * GETs `url` and parses the body as JSON; every failure becomes `failureCode`.
 * The timeout matters because all verifications waiting for keys share one request
 * (see key-source.ts): a hung issuer must not hang them indefinitely.
 */
export async function fetchJson(
  fetch: FetchLike,
  url: string,
  timeoutMs: number,
  failureCode: ErrorCode,
): Promise<unknown> {
  let response: FetchResponseLike;
  try {
    response = await fetch(url, {
      headers: { accept: 'application/json' },
      // AbortSignal.timeout takes a whole number of milliseconds that fits a uint32.
      signal: AbortSignal.timeout(Math.min(Math.ceil(timeoutMs), 2 ** 31 - 1)),
    });
  } catch (cause) {
    throw new GatehouseTokenError(failureCode, { detail: `GET ${url} failed`, cause });
  }
  if (!response.ok) {
    // Release the connection; the body of an error page is of no use to us.
    response.body?.cancel().catch(() => undefined);
    throw new GatehouseTokenError(failureCode, { detail: `GET ${url} answered ${response.status}` });
  }
  try {
    return await response.json();
  } catch (cause) {
    throw new GatehouseTokenError(failureCode, { detail: `GET ${url} did not return JSON`, cause });
  }
}

/** A plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
