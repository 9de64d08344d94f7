/**
 * Base of every module's typed error catalogue. Callers match on `code`, never on the
 * message; the admin API renders `{ code, message, details }` with `status`.
 */
export interface ErrorSpec {
  status: number;
  message: string;
}

export class GatehouseError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'GatehouseError';
  }
}

/**
 * Builds a catalogue: `errors.create('TENANTS_NOT_FOUND', { tenant })` fills the message
 * template's `{tenant}` from the details.
 */
export function defineErrors<const C extends Record<string, ErrorSpec>>(catalogue: C) {
  return {
    catalogue,
    create(code: keyof C & string, details?: Record<string, unknown>): GatehouseError {
      const spec = catalogue[code]!;
      const message = spec.message.replace(/\{(\w+)\}/g, (_, key: string) => String(details?.[key] ?? `{${key}}`));
      return new GatehouseError(code, spec.status, message, details);
    },
  };
}
