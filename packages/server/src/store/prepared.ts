import { CompiledQuery, type Compilable, type QueryResult } from 'kysely';
import type { Db } from './database.js';

const MARK = '\u0000gatehouse-parameter:';

/**
 * A Kysely query built and compiled once, then run with new values. Kysely builds an
 * immutable tree and compiles it to SQL on every call, which costs more than running a
 * simple indexed query; the OAuth flows run several of the same few queries per request.
 *
 * `build` receives placeholders standing for the values (typed as the values, so the
 * builder checks them as usual); compiling finds where each placeholder landed among the
 * query's parameters. Values the builder wrote itself (a literal `null`) stay as they are.
 * The query must not branch on the values (the first shape is the only shape), and must
 * name each value by property: spreading the placeholders object gives nothing.
 */
export function preparedQuery<V extends Record<string, unknown>, R>(db: Db, build: (values: V) => Compilable<R>): (values: V) => Promise<QueryResult<R>> {
  let compiled: { query: CompiledQuery['query']; sql: string; parameters: readonly unknown[]; names: (string | undefined)[] } | undefined;
  return (values) => {
    if (!compiled) {
      const placeholders = new Proxy({}, { get: (_target, name) => `${MARK}${String(name)}` }) as V;
      const { query, sql, parameters } = build(placeholders).compile();
      const names = parameters.map((p) => (typeof p === 'string' && p.startsWith(MARK) ? p.slice(MARK.length) : undefined));
      compiled = { query, sql, parameters, names };
    }
    const { query, sql, parameters, names } = compiled;
    // The query tree travels along: a unit of work runs a plain read before its first write outside its transaction.
    return db.executeQuery<R>({ ...CompiledQuery.raw(sql, names.map((name, i) => (name === undefined ? parameters[i] : values[name]))), query });
  };
}
