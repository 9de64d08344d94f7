import { EvaluationError, serialize, type ASTNode, type Environment, type ParseResult } from '@marcbachmann/cel-js';

/**
 * Partial evaluation of a caveat expression when some parameters are absent, with the
 * three-valued logic of cel-go's partial evaluation that SpiceDB relies on:
 *
 * - `||` is true if either side is true, `&&` false if either side is false, whatever the
 *   other side is (known, unknown or an error); otherwise an unknown side makes the result
 *   unknown (unknowns merge), and only then does an error win.
 * - `c ? a : b` is unknown when `c` is, else the chosen branch; `!x` is unknown when `x` is.
 * - Any other sub-expression (a comparison, a call, a macro) is a leaf, evaluated by the CEL
 *   library itself; it is unknown when that evaluation needed an absent parameter, and then
 *   stands for every absent parameter it mentions (cel-go merges the unknowns of all
 *   arguments of a call). A leaf that gets by without the absent parameters — `[].all(x, x == p)`,
 *   or a macro body whose own `||` short-circuits — has its value. A leaf without macros or
 *   short-circuits that mentions an absent parameter is unknown without being run.
 */
export type Outcome = { kind: 'value'; value: unknown } | { kind: 'unknown'; names: Set<string> } | { kind: 'error'; error: unknown };

export type Plan =
  | { op: 'or' | 'and'; left: Plan; right: Plan }
  | { op: 'not'; operand: Plan }
  | { op: 'cond'; test: Plan; then: Plan; otherwise: Plan }
  /** `strict`: evaluating the leaf evaluates every variable in it (no macro, no short-circuit). */
  | { op: 'leaf'; program: ParseResult; references: string[]; strict: boolean };

// Macros that bind their first argument as an iteration variable inside the others.
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

const isNode = (value: unknown): value is ASTNode => typeof value === 'object' && value !== null && 'op' in value && 'args' in value;

// Constructs that may skip part of what they contain: short-circuits, macros, optionals.
const LAZY_OPERATORS = new Set(['||', '&&', '?:', '.?', '[?]']);
const LAZY_CALLS = new Set([...COMPREHENSIONS, 'bind', 'has', 'or', 'orValue', 'optMap', 'optFlatMap']);

function isStrict(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(isStrict);
  if (!isNode(value)) return true;
  if (LAZY_OPERATORS.has(value.op)) return false;
  if ((value.op === 'call' || value.op === 'rcall') && LAZY_CALLS.has(value.args[0])) return false;
  return value.op === 'id' || value.op === 'value' || isStrict(value.args);
}

/** The parameters an expression mentions, not counting macro variables that shadow them. */
export function referencedParameters(ast: ASTNode, parameters: ReadonlySet<string>): Set<string> {
  const found = new Set<string>();
  const visit = (value: unknown, bound: ReadonlySet<string>): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item, bound);
      return;
    }
    if (!isNode(value)) return;
    if (value.op === 'id') {
      if (parameters.has(value.args) && !bound.has(value.args)) found.add(value.args);
      return;
    }
    if (value.op === 'rcall') {
      const [name, receiver, args] = value.args;
      const first = args[0];
      if (first?.op === 'id' && receiver.op === 'id' && receiver.args === 'cel' && name === 'bind') {
        visit(args[1], bound);
        visit(args.slice(2), new Set([...bound, first.args]));
        return;
      }
      if (first?.op === 'id' && COMPREHENSIONS.has(name)) {
        visit(receiver, bound);
        visit(args.slice(1), new Set([...bound, first.args]));
        return;
      }
    }
    visit(value.args, bound);
  };
  visit(ast, new Set());
  return found;
}

/**
 * Splits an expression at its boolean structure (`||`, `&&`, `!`, `?:`) into a plan whose
 * leaves are compiled separately in the same environment. Compiled once per caveat.
 */
export function planPartialEvaluation(env: Environment, root: ParseResult, parameters: ReadonlySet<string>): Plan {
  const leaf = (node: ASTNode): Plan => {
    const program = node === root.ast ? root : env.parse(serialize(node));
    if (program !== root) {
      const checked = program.check();
      if (!checked.valid) throw checked.error;
    }
    return { op: 'leaf', program, references: [...referencedParameters(node, parameters)], strict: isStrict(node) };
  };
  const plan = (node: ASTNode): Plan => {
    switch (node.op) {
      case '||':
      case '&&':
        return { op: node.op === '||' ? 'or' : 'and', left: plan(node.args[0]), right: plan(node.args[1]) };
      case '!_':
        return { op: 'not', operand: plan(node.args) };
      case '?:':
        return { op: 'cond', test: plan(node.args[0]), then: plan(node.args[1]), otherwise: plan(node.args[2]) };
      default:
        return leaf(node);
    }
  };
  try {
    return plan(root.ast);
  } catch {
    // A sub-expression the library cannot compile on its own: fall back to one leaf, which is
    // still right, only coarser (the whole expression is unknown if it needs an absent value).
    return { op: 'leaf', program: root, references: [...referencedParameters(root.ast, parameters)], strict: isStrict(root.ast) };
  }
}

const TRUE: Outcome = { kind: 'value', value: true };
const FALSE: Outcome = { kind: 'value', value: false };
const nonBoolean = (value: unknown): Outcome => ({ kind: 'error', error: new Error(`expected a bool, found ${typeof value}`) });

function merge(a: Outcome, b: Outcome): Outcome {
  const names = new Set<string>();
  for (const o of [a, b]) if (o.kind === 'unknown') for (const n of o.names) names.add(n);
  return { kind: 'unknown', names };
}

/** Evaluates a plan with `values` (converted, present parameters only); `absent` are the missing ones. */
export function evaluatePlan(plan: Plan, values: Readonly<Record<string, unknown>>, absent: ReadonlySet<string>): Outcome {
  switch (plan.op) {
    case 'or':
    case 'and': {
      // `||` is decided by a true side, `&&` by a false one: the other side does not matter.
      const decisive = plan.op === 'or';
      const left = evaluatePlan(plan.left, values, absent);
      if (left.kind === 'value' && left.value === decisive) return left;
      const right = evaluatePlan(plan.right, values, absent);
      if (right.kind === 'value' && right.value === decisive) return right;
      if (left.kind === 'unknown' || right.kind === 'unknown') return merge(left, right);
      if (left.kind === 'error') return left;
      if (right.kind === 'error') return right;
      if (typeof left.value !== 'boolean') return nonBoolean(left.value);
      if (typeof right.value !== 'boolean') return nonBoolean(right.value);
      return decisive ? FALSE : TRUE;
    }
    case 'not': {
      const operand = evaluatePlan(plan.operand, values, absent);
      if (operand.kind !== 'value') return operand;
      return typeof operand.value === 'boolean' ? (operand.value ? FALSE : TRUE) : nonBoolean(operand.value);
    }
    case 'cond': {
      const test = evaluatePlan(plan.test, values, absent);
      if (test.kind !== 'value') return test;
      if (typeof test.value !== 'boolean') return nonBoolean(test.value);
      return evaluatePlan(test.value ? plan.then : plan.otherwise, values, absent);
    }
    case 'leaf': {
      // A strict leaf that mentions an absent parameter needs it: no need to run it (and to
      // pay for the library's exception) to know it is unknown.
      if (plan.strict) {
        const needed = plan.references.filter((r) => absent.has(r));
        if (needed.length > 0) return { kind: 'unknown', names: new Set(needed) };
      }
      try {
        return { kind: 'value', value: plan.program(values) };
      } catch (error) {
        const name = absentVariable(error, absent);
        if (name === undefined) return { kind: 'error', error };
        return { kind: 'unknown', names: new Set([name, ...plan.references.filter((r) => absent.has(r))]) };
      }
    }
  }
}

/** The absent parameter an `unknown_variable` error is about, if that is what it is. */
function absentVariable(error: unknown, absent: ReadonlySet<string>): string | undefined {
  if (!(error instanceof EvaluationError) || error.code !== 'unknown_variable') return undefined;
  const node = error.node;
  const name = node?.op === 'id' ? node.args : undefined;
  return typeof name === 'string' && absent.has(name) ? name : undefined;
}
