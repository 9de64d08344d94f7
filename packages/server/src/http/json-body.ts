import type { FastifyInstance } from 'fastify';
import { defineErrors } from '../errors.js';
import { httpErrors } from '../error-catalogues.js';

/**
 * Deepest nesting of objects and arrays a JSON body may have. No Gatehouse request needs
 * more than a few levels (a caveat context or Cedar attributes a handful more); a body of
 * nothing but brackets costs JSON.parse far more per byte than any real one, and deep
 * values make later recursive walks (schema validation, caveat evaluation) overflow.
 */
export const MAX_JSON_DEPTH = 64;
const errors = defineErrors(httpErrors);

/**
 * How deep the JSON text nests, scanning once without building anything, and stopping as
 * soon as `limit` is passed. Brackets inside strings do not count (RFC 8259 §7: a string
 * ends at the first unescaped quote).
 */
export function exceedsJsonDepth(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return false;
}

/**
 * Replaces Fastify's JSON body parser with one that refuses bodies nested deeper than
 * MAX_JSON_DEPTH (400 REQUEST_TOO_DEEP) before parsing them, then parses as Fastify would
 * (prototype and constructor poisoning refused). Like every body parser it runs after the
 * route's onRequest hooks, so after authentication.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (exceedsJsonDepth(text, MAX_JSON_DEPTH)) {
      done(errors.create('REQUEST_TOO_DEEP', { max: MAX_JSON_DEPTH }), undefined);
      return;
    }
    parse(request, text, done);
  });
}
