import type { Environment, ParseResult } from '@marcbachmann/cel-js';
import type { GatehouseError } from '../../errors.js';
import type { CaveatDefinition, CaveatParameter, CaveatResult } from '../types.js';
import { caveatErrors } from './errors.js';
import { baseEnvironment } from './environment.js';
import { evaluatePlan, planPartialEvaluation, referencedParameters, type Plan } from './partial.js';
import { celTypeOf, ContextValueError, convertValue, formatParameterType, parseParameterType, type ParameterType } from './parameter-types.js';

/** Evaluates the caveats of one schema by name. */
export interface CaveatEvaluator {
  /**
   * `true`/`false`, or `missing` with the absent parameters the answer depends on. Keys of
   * `context` that are not parameters are ignored. Throws AUTHZ_CAVEAT_UNKNOWN,
   * AUTHZ_CAVEAT_CONTEXT_INVALID (a value of the wrong type) or AUTHZ_CAVEAT_EVALUATION_FAILED
   * (a runtime error such as an overflow).
   */
  evaluate(name: string, context: Record<string, unknown>): CaveatResult;
  /** The declared parameters of a caveat. Throws AUTHZ_CAVEAT_UNKNOWN. */
  parameters(name: string): CaveatParameter[];
  has(name: string): boolean;
}

interface CompiledCaveat {
  definition: CaveatDefinition;
  parameters: { name: string; type: ParameterType; referenced: boolean }[];
  program: ParseResult;
  /** Built on first use: only checks with absent parameters need it. */
  plan: () => Plan;
}

// SpiceDB's cap on a caveat expression (pkg/caveats/compile.go).
const MAX_EXPRESSION_LENGTH = 100_000;

const summary = (error: unknown): string => {
  const e = error as { summary?: unknown; message?: unknown };
  if (typeof e?.summary === 'string') return e.summary;
  return typeof e?.message === 'string' ? e.message.split('\n')[0]! : String(error);
};

/** 1-based line and column of an offset in the expression text. */
function locate(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

function compileOne(base: Environment, caveat: CaveatDefinition): CompiledCaveat {
  const invalid = (reason: string, offset?: number): GatehouseError =>
    caveatErrors.create('AUTHZ_CAVEAT_INVALID_EXPRESSION', {
      caveat: caveat.name,
      reason,
      position: caveat.position,
      ...(offset === undefined ? {} : { expression: locate(caveat.expression, offset) }),
    });
  const env = base.clone();
  const parameters: { name: string; type: ParameterType }[] = [];
  for (const p of caveat.parameters) {
    const type = parseParameterType(p.type);
    const bad = (reason: string) => caveatErrors.create('AUTHZ_CAVEAT_INVALID_PARAMETER', { caveat: caveat.name, parameter: p.name, reason, position: caveat.position });
    if (!type) throw bad(`unknown type "${p.type}"`);
    if (parameters.some((q) => q.name === p.name)) throw bad('declared twice');
    try {
      env.registerVariable(p.name, celTypeOf(type));
    } catch (error) {
      throw bad(summary(error));
    }
    parameters.push({ name: p.name, type });
  }
  if (caveat.expression.length > MAX_EXPRESSION_LENGTH) throw invalid(`longer than ${MAX_EXPRESSION_LENGTH} characters`);
  let program: ParseResult;
  try {
    program = env.parse(caveat.expression);
  } catch (error) {
    throw invalid(summary(error), (error as { range?: { start: number } }).range?.start);
  }
  // Type errors are schema errors: found here, once, not at check time.
  const checked = program.check();
  if (!checked.valid) throw invalid(summary(checked.error), checked.error?.range?.start);
  if (checked.type !== 'bool') throw invalid(`the expression must result in a bool, found ${checked.type}`);
  const names = new Set(parameters.map((p) => p.name));
  const referenced = referencedParameters(program.ast, names);
  let plan: Plan | undefined;
  return {
    definition: caveat,
    parameters: parameters.map((p) => ({ ...p, referenced: referenced.has(p.name) })),
    program,
    plan: () => (plan ??= planPartialEvaluation(env, program, names)),
  };
}

/**
 * Compiles the caveats of a schema once into typed CEL programs. Every parameter is a typed
 * CEL variable, so a type error in an expression is an AUTHZ_CAVEAT_INVALID_EXPRESSION here.
 *
 * @example
 * const caveats = compileCaveats(schema.caveats.values());
 * caveats.evaluate('is_weekday', { day: 'monday' }); // { result: 'true' }
 * caveats.evaluate('is_weekday', {});               // { result: 'missing', missing: ['day'] }
 */
export function compileCaveats(caveats: Iterable<CaveatDefinition>): CaveatEvaluator {
  const base = baseEnvironment();
  const compiled = new Map<string, CompiledCaveat>();
  for (const caveat of caveats) {
    if (compiled.has(caveat.name)) throw caveatErrors.create('AUTHZ_CAVEAT_DUPLICATE', { caveat: caveat.name, position: caveat.position });
    compiled.set(caveat.name, compileOne(base, caveat));
  }

  function lookup(name: string): CompiledCaveat {
    const caveat = compiled.get(name);
    if (!caveat) throw caveatErrors.create('AUTHZ_CAVEAT_UNKNOWN', { caveat: name });
    return caveat;
  }

  function evaluate(name: string, context: Record<string, unknown>): CaveatResult {
    const caveat = lookup(name);
    // No prototype: a parameter named `constructor` must not find Object.prototype's.
    const values: Record<string, unknown> = Object.create(null);
    let absent: Set<string> | undefined;
    for (const p of caveat.parameters) {
      const raw = Object.hasOwn(context, p.name) ? context[p.name] : undefined;
      if (raw === undefined) {
        if (p.referenced) (absent ??= new Set()).add(p.name);
        continue;
      }
      try {
        values[p.name] = convertValue(p.type, raw);
      } catch (error) {
        if (!(error instanceof ContextValueError)) throw error;
        throw caveatErrors.create('AUTHZ_CAVEAT_CONTEXT_INVALID', {
          caveat: name,
          parameter: `${p.name}${error.path}`,
          type: formatParameterType(p.type),
          reason: error.reason,
        });
      }
    }
    const failed = (error: unknown) => caveatErrors.create('AUTHZ_CAVEAT_EVALUATION_FAILED', { caveat: name, reason: summary(error) });
    let value: unknown;
    if (!absent) {
      try {
        value = caveat.program(values);
      } catch (error) {
        throw failed(error);
      }
    } else {
      const outcome = evaluatePlan(caveat.plan(), values, absent);
      if (outcome.kind === 'error') throw failed(outcome.error);
      if (outcome.kind === 'unknown') return { result: 'missing', missing: caveat.parameters.filter((p) => outcome.names.has(p.name)).map((p) => p.name) };
      value = outcome.value;
    }
    if (typeof value !== 'boolean') throw failed(new Error(`the expression gave ${typeof value}, not a bool`));
    return value ? { result: 'true' } : { result: 'false' };
  }

  return {
    evaluate,
    parameters: (name) => lookup(name).definition.parameters.map((p) => ({ ...p })),
    has: (name) => compiled.has(name),
  };
}
