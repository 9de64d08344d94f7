/**
 * Lexer and recursive-descent parser for the SpiceDB schema language, modelled on
 * authzed/spicedb `pkg/schemadsl/{lexer,parser}` so that the same texts are accepted and
 * a syntax error points at the same token, and on `pkg/schemadsl/compiler/translator.go`
 * for what the parse tree becomes (partials expanded, same-operator chains flattened).
 */
import { posix } from 'node:path';
import type { AllowedSubject, ArrowHop, CaveatDefinition, CaveatParameter, Definition, Permission, PermissionExpr, Position, Relation, Schema } from '../types.js';
import { schemaErrors } from './errors.js';

/** Where a parsed element, or a named part of it, was written. */
export interface NodePositions {
  start: Position;
  /** The import path of the file it comes from; absent for the root schema text. */
  source?: string;
  /** Allowed subject: the relation after `#`. */
  relation?: Position;
  /** Allowed subject: the caveat name after `with`. */
  caveat?: Position;
  /** Allowed subject: the `expiration` keyword. */
  expiration?: Position;
  /** Arrow: the computed (right-hand) name. */
  computed?: Position;
  /** Caveat parameter: its type. */
  type?: Position;
}

/**
 * Positions of the parsed objects that `types.ts` gives no position of their own
 * (allowed subjects, expression nodes, caveat parameters), keyed by object identity.
 */
export type SourcePositions = Map<object, NodePositions>;

export interface ParseOptions {
  /**
   * Reads the schema text of an `import "path"` (`use import`). The path comes relative to
   * the root schema's folder, already joined with the importing file's folder and checked
   * to stay inside it. Without a reader an import is refused, as SpiceDB refuses one when
   * no source folder is configured (its WriteSchema API never has one).
   */
  readImport?: (path: string) => string;
}

// ---------------------------------------------------------------------------------------
// Lexer (spicedb pkg/schemadsl/lexer/lex_def.go)

type TokenKind =
  | 'error'
  | 'eos' // SpiceDB's synthetic semicolon: a newline that ends a statement
  | 'eof'
  | 'keyword'
  | 'identifier'
  | 'string'
  | '{' | '}' | '(' | ')' | '[' | ']'
  | '|' | '||' | '&' | '&&' | '+' | '-' | '->' | '/' | '%' | '*' | '?' | '!' | '!='
  | '=' | '==' | '<' | '<=' | '>' | '>='
  | ':' | ';' | ',' | '#' | '.' | '...';

interface Token {
  kind: TokenKind;
  value: string;
  /** UTF-16 index into the text. */
  offset: number;
  line: number;
  column: number;
  /** Error tokens: what the lexer could not read. */
  message?: string;
}

const KEYWORDS = new Set(['definition', 'caveat', 'relation', 'permission', 'nil', 'with']);

/**
 * Bounds on what one schema may contain. Each walk over a schema (parser, lowering,
 * validation, the engine's compilation and checks) is then bounded too, so a schema cannot
 * exhaust the stack or stall the event loop: it is refused with AUTHZ_SCHEMA_LIMIT at the
 * line and column where it goes past a bound. SpiceDB bounds its parser's nesting the same
 * way (pkg/schemadsl/parser: maxRecursionDepth); the rest are far beyond any real schema.
 */
export const SCHEMA_LIMITS = {
  /** Arrows in one chain: `a->b->c` has 2. */
  arrowChain: 32,
  /** Parentheses open at once in one permission expression. */
  parenthesisNesting: 64,
  /** Levels of the permission expression tree (`+` / `&` chains count once; each `-` counts). */
  expressionNesting: 64,
  /** Definitions, partials and caveats of the whole schema. */
  definitions: 2_000,
  /** Relations and permissions of one definition, partials included. */
  members: 1_000,
  /** Subject types of one relation (`user | group#member | …`). */
  subjectTypes: 256,
  /** Operands of one `+` or `&` chain. */
  operands: 1_000,
  /** Parameters of one caveat. */
  caveatParameters: 64,
  /** Type parameters nested in one caveat parameter type: `list<map<int>>` has 2. */
  typeNesting: 8,
  /** Partials included through one another (`...a` in a partial that another includes). */
  partialNesting: 16,
} as const;

const limitError = (position: Position, source: string | undefined, limit: keyof typeof SCHEMA_LIMITS, detail: string) =>
  schemaErrors.create('AUTHZ_SCHEMA_LIMIT', { ...at(position, source), limit, max: SCHEMA_LIMITS[limit], detail });

/** `use <flag>` turns these identifiers into keywords for the rest of the file (spicedb lexer/flags.go). */
const FLAG_KEYWORDS: Record<string, readonly string[]> = {
  expiration: ['expiration', 'and'],
  import: ['import'],
  partial: ['partial'],
  self: ['self'],
  typechecking: ['typechecking'],
};
const USE_FLAGS = Object.keys(FLAG_KEYWORDS).sort();

/** A newline after one of these ends the statement (spicedb `syntheticPredecessors`). */
const STATEMENT_ENDERS = new Set<TokenKind>(['identifier', 'keyword', '}', ')', '*']);

const PUNCTUATION: ReadonlyArray<TokenKind> = ['...', '->', '||', '&&', '!=', '==', '<=', '>=', '{', '}', '(', ')', '[', ']', '|', '&', '+', '-', '%', '*', '?', '!', '=', '<', '>', ':', ';', ',', '#', '.'];

const WORD_CHAR = /[\p{L}\p{Nd}_]/u;
/** Punctuation by its first character, longest first. */
const PUNCTUATION_BY_CHAR = new Map<string, TokenKind[]>();
for (const p of PUNCTUATION) PUNCTUATION_BY_CHAR.set(p[0]!, [...(PUNCTUATION_BY_CHAR.get(p[0]!) ?? []), p]);

const isWordChar = (cp: number) =>
  (cp >= 0x61 && cp <= 0x7a) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x30 && cp <= 0x39) || cp === 0x5f || (cp > 0x7f && WORD_CHAR.test(String.fromCodePoint(cp)));

function lex(text: string): Token[] {
  const tokens = lexRaw(text);
  applyUseFlags(tokens);
  return tokens;
}

/** Tokens up to an end-of-input token, or up to the first error token (where SpiceDB's lexer stops too). */
function lexRaw(text: string): Token[] {
  const tokens: Token[] = [];
  let offset = 0;
  let line = 1;
  let column = 1;
  let last: TokenKind | 'newline' | undefined;

  const step = () => {
    const cp = text.codePointAt(offset)!;
    offset += cp > 0xffff ? 2 : 1;
    if (cp === 0x0a || (cp === 0x0d && text[offset] !== '\n')) {
      line++;
      column = 1;
    } else if (cp !== 0x0d) {
      column++;
    }
  };
  const skip = (count: number) => {
    const end = offset + count;
    while (offset < end) step();
  };

  // One pair of helpers for the whole text (not a closure per token: a 1 MB schema is ~10^5 tokens).
  let startOffset = offset;
  let startLine = line;
  let startColumn = column;
  const emit = (kind: TokenKind) => {
    tokens.push({ kind, value: text.slice(startOffset, offset), offset: startOffset, line: startLine, column: startColumn });
    last = kind;
  };
  const fail = (message: string) => {
    tokens.push({ kind: 'error', value: text.slice(startOffset, offset + 1), offset: startOffset, line: startLine, column: startColumn, message });
    return tokens;
  };

  while (offset < text.length) {
    startOffset = offset;
    startLine = line;
    startColumn = column;
    const c = text[offset]!;

    if (c === ' ' || c === '\t') {
      step();
      continue;
    }
    if (c === '\n' || c === '\r') {
      step();
      if (last !== undefined && STATEMENT_ENDERS.has(last as TokenKind)) emit('eos');
      else last = 'newline';
      continue;
    }
    if (text.startsWith('//', offset)) {
      while (offset < text.length && text[offset] !== '\n' && text[offset] !== '\r') step();
      continue;
    }
    if (text.startsWith('/*', offset)) {
      const end = text.indexOf('*/', offset + 2);
      if (end < 0) return fail('unterminated /* comment');
      skip(end + 2 - offset);
      continue;
    }
    if (c === '/') {
      step();
      emit('/');
      continue;
    }
    if (c === '"' || c === "'") {
      // CEL raw strings (r"…", rb"…") take backslashes literally.
      const prev = tokens.at(-1);
      const raw = prev?.kind === 'identifier' && prev.offset + prev.value.length === offset && /^(?:[rR]|[bB][rR]|[rR][bB])$/.test(prev.value);
      const triple = text.startsWith(c.repeat(3), offset);
      // SpiceDB closes a '''-string with """ (a typo in its lexer); here ''' closes it.
      const terminator = triple ? c.repeat(3) : c;
      skip(terminator.length);
      for (;;) {
        if (text.startsWith(terminator, offset)) {
          skip(terminator.length);
          emit('string');
          break;
        }
        const d = text[offset];
        if (d === undefined || (!triple && (d === '\n' || d === '\r'))) return fail('unterminated string');
        // Escapes keep a quote or brace inside a string from ending it (SpiceDB does not read escapes).
        skip(d === '\\' && !raw && offset + 1 < text.length ? 2 : 1);
      }
      continue;
    }
    const cp = text.codePointAt(offset)!;
    if (isWordChar(cp)) {
      while (offset < text.length && isWordChar(text.codePointAt(offset)!)) step();
      emit(KEYWORDS.has(text.slice(startOffset, offset)) ? 'keyword' : 'identifier');
      continue;
    }
    const punctuation = PUNCTUATION_BY_CHAR.get(c)?.find((p) => text.startsWith(p, offset));
    if (punctuation === undefined) return fail(`unrecognized character ${JSON.stringify(String.fromCodePoint(cp))}`);
    skip(punctuation.length);
    emit(punctuation);
  }
  tokens.push({ kind: 'eof', value: '', offset, line, column });
  return tokens;
}

/** `use expiration` before the first definition or caveat makes `expiration` and `and` keywords, and so on (spicedb lexer/flaggablelexer.go). */
function applyUseFlags(tokens: Token[]): void {
  const enabled = new Set<string>();
  let seenDefinition = false;
  let afterUse = false;
  for (const token of tokens) {
    if (token.kind === 'identifier' && !seenDefinition) {
      if (afterUse) {
        if (token.value in FLAG_KEYWORDS) enabled.add(token.value);
        afterUse = false;
      } else {
        afterUse = token.value === 'use';
      }
    }
    if (token.kind === 'keyword' && (token.value === 'definition' || token.value === 'caveat')) seenDefinition = true;
    if (token.kind === 'identifier' && enabled.size > 0 && [...enabled].some((flag) => FLAG_KEYWORDS[flag]!.includes(token.value))) token.kind = 'keyword';
  }
}

// ---------------------------------------------------------------------------------------
// Parse tree

interface SubjectNode {
  subject: AllowedSubject;
  positions: Omit<NodePositions, 'source'>;
}

type BodyNode =
  | { kind: 'relation'; name: string; position: Position; allowed: SubjectNode[] }
  | { kind: 'permission'; name: string; position: Position; expr: ExprNode }
  | { kind: 'partial-reference'; name: string; position: Position };

type ExprNode =
  | { kind: 'exclusion'; left: ExprNode; right: ExprNode; position: Position }
  | { kind: 'union' | 'intersection'; operands: ExprNode[]; position: Position }
  | { kind: 'ref'; name: string; position: Position }
  | { kind: 'nil' | 'self'; position: Position }
  | { kind: 'arrow'; left: ExprNode; computed: string; computedPosition: Position; mode: 'any' | 'all'; position: Position };

interface BodyOwner {
  name: string;
  position: Position;
  body: BodyNode[];
}

type TopNode =
  | { kind: 'use'; flag: string; position: Position }
  | { kind: 'import'; path: string; position: Position }
  | ({ kind: 'definition' } & BodyOwner)
  | ({ kind: 'partial' } & BodyOwner)
  | {
      kind: 'caveat';
      name: string;
      position: Position;
      parameters: { name: string; type: string; position: Position; typePosition: Position }[];
      expression: string;
    };

interface FileNode {
  source: string | undefined;
  items: TopNode[];
}

const at = (position: Position, source: string | undefined) => ({ line: position.line, column: position.column, ...(source === undefined ? {} : { source }) });
const positionOf = (token: Token): Position => ({ line: token.line, column: token.column });

function describe(token: Token): string {
  switch (token.kind) {
    case 'eof':
      return 'end of input';
    case 'eos':
      return 'end of line';
    case 'string':
      return `string ${token.value}`;
    case 'keyword':
      return `keyword \`${token.value}\``;
    case 'error':
      return token.message!;
    default:
      return `\`${token.value}\``;
  }
}

/** Binary operators from the loosest to the tightest (spicedb parser.go `ComputeExpressionOperators`). */
const BINARY_LEVELS = [
  { token: '-', kind: 'exclusion' },
  { token: '&', kind: 'intersection' },
  { token: '+', kind: 'union' },
] as const;

class Parser {
  readonly #text: string;
  readonly #tokens: Token[];
  readonly #source: string | undefined;
  #index = 0;
  /** Parentheses open in the expression being parsed. */
  #parens = 0;

  constructor(text: string, source: string | undefined) {
    this.#text = text;
    this.#tokens = lex(text);
    this.#source = source;
  }

  get #current(): Token {
    return this.#tokens[Math.min(this.#index, this.#tokens.length - 1)]!;
  }

  #advance(): Token {
    const token = this.#current;
    if (this.#index < this.#tokens.length - 1) this.#index++;
    return token;
  }

  #is(kind: TokenKind, value?: string): boolean {
    return this.#current.kind === kind && (value === undefined || this.#current.value === value);
  }

  /** Throws at the current token, the one SpiceDB's parser reports the error at. */
  #fail(detail: string): never {
    const token = this.#current;
    throw schemaErrors.create('AUTHZ_SCHEMA_SYNTAX', { ...at(positionOf(token), this.#source), detail: token.kind === 'error' ? token.message : detail });
  }

  /** Throws AUTHZ_SCHEMA_LIMIT at the current token. */
  #limit(limit: keyof typeof SCHEMA_LIMITS, detail: string): never {
    throw limitError(positionOf(this.#current), this.#source, limit, detail);
  }

  #expect(kind: TokenKind, what: string): Token {
    if (!this.#is(kind)) this.#fail(`expected ${what}, found ${describe(this.#current)}`);
    return this.#advance();
  }

  #identifier(what: string): string {
    return this.#expect('identifier', what).value;
  }

  /** `name` or `prefix/name` (any number of slashes). */
  #typePath(what: string): string {
    const segments = [this.#identifier(what)];
    while (this.#is('/')) {
      this.#advance();
      segments.push(this.#identifier(`a name after \`/\``));
    }
    return segments.join('/');
  }

  #tryStatementEnd(): boolean {
    if (this.#is('eos') || this.#is(';') || this.#is('eof')) {
      this.#advance();
      return true;
    }
    return false;
  }

  file(): FileNode {
    const items: TopNode[] = [];
    let seenDefinition = false;
    if (this.#is('error')) this.#fail('');
    for (;;) {
      if (this.#is('eof')) break;
      this.#tryStatementEnd();
      if (this.#is('eof')) break;
      if (this.#is('identifier', 'use')) {
        items.push(this.#use(seenDefinition));
      } else if (this.#is('keyword', 'definition') || this.#is('keyword', 'partial')) {
        seenDefinition ||= this.#current.value === 'definition';
        items.push(this.#definition());
      } else if (this.#is('keyword', 'caveat')) {
        seenDefinition = true;
        items.push(this.#caveat());
      } else if (this.#is('keyword', 'import')) {
        items.push(this.#import());
      } else {
        this.#fail(`expected \`definition\`, \`caveat\` or \`use\` at the top level, found ${describe(this.#current)}`);
      }
    }
    return { source: this.#source, items };
  }

  #use(afterDefinition: boolean): TopNode {
    const position = positionOf(this.#advance());
    if (!this.#is('identifier') && !this.#is('keyword')) this.#fail(`expected a flag name after \`use\`, found ${describe(this.#current)}`);
    const flag = this.#advance().value;
    // SpiceDB reports both problems at the token after the flag name.
    if (!(flag in FLAG_KEYWORDS)) this.#fail(`unknown use flag \`${flag}\`; the flags are ${USE_FLAGS.join(', ')}`);
    if (afterDefinition) this.#fail('`use` must come before any definition or caveat');
    return { kind: 'use', flag, position };
  }

  #import(): TopNode {
    const position = positionOf(this.#advance());
    const token = this.#expect('string', 'a quoted path after `import`');
    // As spicedb: strip every leading and trailing quote of the kind the string opens with.
    const quote = token.value[0]!;
    let path = token.value;
    while (path.startsWith(quote)) path = path.slice(1);
    while (path.endsWith(quote)) path = path.slice(0, -1);
    return { kind: 'import', path, position };
  }

  /** `definition name { … }` and `partial name { … }` share their body grammar. */
  #definition(): TopNode {
    const keyword = this.#advance();
    const kind = keyword.value === 'partial' ? 'partial' : 'definition';
    const name = this.#typePath(`a ${kind} name`);
    this.#expect('{', `\`{\` after the ${kind} name`);
    const body: BodyNode[] = [];
    for (;;) {
      if (this.#is('}')) {
        this.#advance();
        break;
      }
      if (this.#is('eof')) this.#fail(`expected \`}\` to close ${kind} "${name}", found end of input`);
      let parsed = true;
      if (this.#is('keyword', 'relation')) body.push(this.#relation());
      else if (this.#is('keyword', 'permission')) body.push(this.#permission());
      else if (this.#is('...')) body.push(this.#partialReference());
      else parsed = false;
      if (!this.#tryStatementEnd()) {
        this.#fail(
          parsed
            ? `expected the end of the statement (a newline or \`;\`), found ${describe(this.#current)}`
            : `expected \`relation\`, \`permission\`, \`...partial\` or \`}\`, found ${describe(this.#current)}`,
        );
      }
    }
    const owner: BodyOwner = { name, position: positionOf(keyword), body };
    return kind === 'partial' ? { kind, ...owner } : { kind, ...owner };
  }

  #partialReference(): BodyNode {
    const position = positionOf(this.#advance());
    return { kind: 'partial-reference', name: this.#identifier('a partial name after `...`'), position };
  }

  #relation(): BodyNode {
    const position = positionOf(this.#advance());
    const name = this.#identifier('a relation name');
    this.#expect(':', '`:` after the relation name');
    const allowed = [this.#subjectType()];
    while (this.#is('|')) {
      this.#advance();
      if (allowed.length >= SCHEMA_LIMITS.subjectTypes) this.#limit('subjectTypes', `relation "${name}" allows more than ${SCHEMA_LIMITS.subjectTypes} subject types`);
      allowed.push(this.#subjectType());
    }
    return { kind: 'relation', name, position, allowed };
  }

  /** `type`, `type#relation`, `type#...`, `type:*`, each optionally `with caveat`, `with expiration` or `with caveat and expiration`. */
  #subjectType(): SubjectNode {
    const positions: SubjectNode['positions'] = { start: positionOf(this.#current) };
    const subject: AllowedSubject = { type: this.#typePath('a subject type') };
    if (this.#is(':')) {
      this.#advance();
      this.#expect('*', '`*` after `:` (a wildcard is written `type:*`)');
      subject.wildcard = true;
    } else if (this.#is('#')) {
      this.#advance();
      const token = this.#current;
      if (token.kind !== 'identifier' && token.kind !== '...') this.#fail(`expected a relation name or \`...\` after \`#\`, found ${describe(token)}`);
      this.#advance();
      // `type#...` is the plain object subject, the same as `type`.
      if (token.kind === 'identifier') {
        subject.relation = token.value;
        positions.relation = positionOf(token);
      }
    }
    if (!this.#is('keyword', 'with')) return { subject, positions };
    this.#advance();
    if (!this.#is('keyword', 'expiration')) {
      positions.caveat = positionOf(this.#current);
      subject.caveat = this.#typePath('a caveat name (or `expiration`) after `with`');
      if (!this.#is('keyword', 'and')) return { subject, positions };
      this.#advance();
      // SpiceDB silently drops an `and` followed by a newline; that is almost surely a mistake.
      if (!this.#is('keyword', 'expiration')) this.#fail(`expected \`expiration\` after \`and\`, found ${describe(this.#current)}`);
    }
    positions.expiration = positionOf(this.#advance());
    subject.expiration = true;
    if (this.#is('keyword', 'and')) this.#fail('unexpected `and` after `expiration`: the caveat comes first, as in `with some_caveat and expiration`');
    return { subject, positions };
  }

  #permission(): BodyNode {
    const position = positionOf(this.#advance());
    const name = this.#identifier('a permission name');
    // `permission view: user | team = …` type annotations: SpiceDB keeps them only under
    // `use typechecking`, and types.ts has no place for them, so they are checked for syntax and dropped.
    if (this.#is(':')) {
      this.#advance();
      this.#identifier('a type name in the type annotation');
      while (this.#is('|')) {
        this.#advance();
        this.#identifier("a type name after `|` in the type annotation");
      }
    }
    this.#expect('=', '`=` after the permission name');
    const expr = this.#expression();
    if (expr === undefined) this.#fail(`expected an expression for permission "${name}", found ${describe(this.#current)}`);
    return { kind: 'permission', name, position, expr };
  }

  /**
   * Precedence, loosest first: `-`, then `&`, then `+`, then the arrows `->`, `.any()`,
   * `.all()`; every operator is left-associative. So `a - b + c` is `a - (b + c)` and
   * `a & b + c` is `a & (b + c)` (spicedb associativity.zed, parser.go).
   */
  #expression(level = 0): ExprNode | undefined {
    const operator = BINARY_LEVELS[level];
    if (operator === undefined) return this.#operand();
    const first = this.#expression(level + 1);
    if (first === undefined) return undefined;
    // A `+` or `&` chain is one node with all its operands, not a left-deep tree a later
    // walk would have to recurse down (`a + b + … + z` may be long).
    const operands = [first];
    let left = first;
    while (this.#is(operator.token)) {
      this.#advance();
      if (operands.length >= SCHEMA_LIMITS.operands) this.#limit('operands', `more than ${SCHEMA_LIMITS.operands} operands of \`${operator.token}\` in one expression`);
      const right = this.#expression(level + 1);
      if (right === undefined) this.#fail(`expected an expression after \`${operator.token}\`, found ${describe(this.#current)}`);
      if (operator.kind === 'exclusion') left = { kind: 'exclusion', left, right, position: first.position };
      else operands.push(right);
    }
    if (operator.kind === 'exclusion' || operands.length === 1) return left;
    return { kind: operator.kind, operands, position: first.position };
  }

  #operand(): ExprNode | undefined {
    const token = this.#current;
    const position = positionOf(token);
    if (token.kind === 'identifier') {
      this.#advance();
      let expr: ExprNode = { kind: 'ref', name: token.value, position };
      let arrows = 0;
      while (this.#is('->') || this.#is('.')) {
        if (++arrows > SCHEMA_LIMITS.arrowChain) this.#limit('arrowChain', `an arrow chain longer than ${SCHEMA_LIMITS.arrowChain} arrows`);
        // `x.any(y)` / `x.all(y)` are arrows with a function; `x->y` is `x.any(y)`.
        const call = this.#advance().kind === '.';
        let mode: 'any' | 'all' = 'any';
        if (call) {
          const fn = this.#identifier('`any` or `all` after `.`');
          // SpiceDB checks the name after reading it, so it reports the token after it.
          if (fn !== 'any' && fn !== 'all') this.#fail(`expected \`any\` or \`all\` for an arrow function, found \`${fn}\``);
          mode = fn;
          this.#expect('(', `\`(\` after \`.${fn}\``);
        }
        if (!this.#is('identifier')) this.#fail(`expected a relation or permission name for the arrow, found ${describe(this.#current)}`);
        const computed = this.#advance();
        if (call) this.#expect(')', "`)` after the arrow function's argument");
        expr = { kind: 'arrow', left: expr, computed: computed.value, computedPosition: positionOf(computed), mode, position };
      }
      return expr;
    }
    if (token.kind === '(') {
      // Each `(` is a few frames of this recursive descent: bounded, it cannot exhaust the stack.
      if (this.#parens >= SCHEMA_LIMITS.parenthesisNesting) this.#limit('parenthesisNesting', `parentheses nested deeper than ${SCHEMA_LIMITS.parenthesisNesting} levels`);
      this.#advance();
      this.#parens++;
      const inner = this.#expression();
      if (inner === undefined) this.#fail(`expected an expression after \`(\`, found ${describe(this.#current)}`);
      this.#expect(')', '`)`');
      this.#parens--;
      return inner;
    }
    if (token.kind === 'keyword' && (token.value === 'nil' || token.value === 'self')) {
      this.#advance();
      return { kind: token.value, position };
    }
    return undefined;
  }

  #caveat(): TopNode {
    const position = positionOf(this.#advance());
    const name = this.#typePath('a caveat name');
    this.#expect('(', '`(` after the caveat name');
    const parameters: Extract<TopNode, { kind: 'caveat' }>['parameters'] = [];
    for (;;) {
      const start = this.#current;
      if (parameters.length >= SCHEMA_LIMITS.caveatParameters) this.#limit('caveatParameters', `caveat "${name}" declares more than ${SCHEMA_LIMITS.caveatParameters} parameters`);
      const paramName = this.#identifier('a parameter name');
      const typePosition = positionOf(this.#current);
      parameters.push({ name: paramName, type: this.#caveatType(), position: positionOf(start), typePosition });
      if (!this.#is(',')) break;
      this.#advance();
    }
    this.#expect(')', '`,` or `)` after the parameter');
    this.#expect('{', '`{` before the caveat expression');
    // CEL is its own language: take every token up to the matching `}` and keep the text
    // between the first and the last of them verbatim (spicedb consumeCaveatExpression).
    let depth = 1;
    let first: Token | undefined;
    let last: Token | undefined;
    for (;;) {
      const token = this.#current;
      if (token.kind === 'error' || token.kind === 'eof') break;
      if (token.kind === '{') depth++;
      if (token.kind === '}' && --depth === 0) break;
      if (token.kind !== 'eos') {
        first ??= token;
        last = token;
      }
      this.#advance();
    }
    if (first === undefined && this.#is('}')) this.#fail(`caveat "${name}" has an empty expression`);
    this.#expect('}', `\`}\` to close caveat "${name}"`);
    return { kind: 'caveat', name, position, parameters, expression: this.#text.slice(first!.offset, last!.offset + last!.value.length) };
  }

  /** `int`, `list<string>`, `map<list<int>>`: returned normalised, without spaces. */
  #caveatType(nesting = 0): string {
    const name = this.#identifier('a parameter type');
    if (!this.#is('<')) return name;
    if (nesting >= SCHEMA_LIMITS.typeNesting) this.#limit('typeNesting', `type parameters nested deeper than ${SCHEMA_LIMITS.typeNesting} levels`);
    this.#advance();
    const args = [this.#caveatType(nesting + 1)];
    while (this.#is(',')) {
      this.#advance();
      args.push(this.#caveatType(nesting + 1));
    }
    this.#expect('>', '`>` to close the type parameters');
    return `${name}<${args.join(', ')}>`;
  }
}

function parseFile(text: string, source: string | undefined): FileNode {
  return new Parser(text, source).file();
}

// ---------------------------------------------------------------------------------------
// Imports (spicedb compiler/translator.go translateImports)

interface Located<T> {
  node: T;
  source: string | undefined;
}

function resolveImports(file: FileNode, options: ParseOptions, chain: string[], visited: Set<string>): Located<TopNode>[] {
  const imported: Located<TopNode>[] = [];
  const own: Located<TopNode>[] = [];
  const folder = file.source === undefined ? '' : posix.dirname(file.source);
  for (const node of file.items) {
    if (node.kind !== 'import') {
      own.push({ node, source: file.source });
      continue;
    }
    const where = at(node.position, file.source);
    if (options.readImport === undefined) {
      throw schemaErrors.create('AUTHZ_SCHEMA_IMPORT', { ...where, path: node.path, detail: `cannot import "${node.path}": no schema folder is configured to read imports from` });
    }
    // spicedb validateFilepath: imports stay inside the folder of the root schema.
    if (node.path.includes('..') || node.path === '' || posix.isAbsolute(node.path)) {
      throw schemaErrors.create('AUTHZ_SCHEMA_IMPORT', { ...where, path: node.path, detail: `import path "${node.path}" must be relative and stay inside its folder` });
    }
    const path = posix.join(folder, node.path);
    if (chain.includes(path)) {
      throw schemaErrors.create('AUTHZ_SCHEMA_IMPORT', { ...where, path, detail: `circular import: ${[...chain, path].join(' -> ')}` });
    }
    // A file imported twice (a diamond) is read once.
    if (visited.has(path)) continue;
    visited.add(path);
    let text: string;
    try {
      text = options.readImport(path);
    } catch (error) {
      throw schemaErrors.create('AUTHZ_SCHEMA_IMPORT', { ...where, path, detail: `cannot read "${path}": ${error instanceof Error ? error.message : String(error)}` });
    }
    imported.push(...resolveImports(parseFile(text, path), options, [...chain, path], visited));
  }
  // Imported definitions come first, as SpiceDB hoists them.
  return [...imported, ...own];
}

// ---------------------------------------------------------------------------------------
// From the parse tree to the Schema (spicedb compiler/translator.go)

class Lowering {
  readonly #positions: SourcePositions;
  readonly #partials = new Map<string, Located<Extract<TopNode, { kind: 'partial' }>>>();

  constructor(positions: SourcePositions) {
    this.#positions = positions;
  }

  schema(nodes: Located<TopNode>[]): Schema {
    const schema: Schema = { definitions: new Map(), caveats: new Map(), useExpiration: false };
    let declared = 0;
    for (const { node, source } of nodes) {
      if (node.kind === 'use' || node.kind === 'import') continue;
      if (++declared > SCHEMA_LIMITS.definitions) throw limitError(node.position, source, 'definitions', `more than ${SCHEMA_LIMITS.definitions} definitions, partials and caveats`);
    }
    for (const { node, source } of nodes) {
      if (node.kind !== 'partial') continue;
      if (this.#partials.has(node.name)) throw duplicate(node.position, source, 'partial', node.name);
      this.#partials.set(node.name, { node, source });
    }
    // Partials are compiled up front, used or not, so their errors show either way.
    for (const [name, { node, source }] of this.#partials) {
      for (const item of this.#expand(node.body, source, [name])) {
        if (item.node.kind === 'permission') this.#expr(item.node.expr, item.source);
      }
    }
    for (const { node, source } of nodes) {
      if (node.kind === 'use') {
        if (node.flag === 'expiration') schema.useExpiration = true;
      } else if (node.kind === 'definition') {
        if (schema.definitions.has(node.name)) throw duplicate(node.position, source, 'definition', node.name);
        if (this.#partials.has(node.name)) throw duplicate(node.position, source, 'definition or partial', node.name);
        schema.definitions.set(node.name, this.#definition(node, source));
      } else if (node.kind === 'caveat') {
        if (schema.caveats.has(node.name)) throw duplicate(node.position, source, 'caveat', node.name);
        if (this.#partials.has(node.name)) throw duplicate(node.position, source, 'caveat or partial', node.name);
        schema.caveats.set(node.name, this.#caveat(node, source));
      }
    }
    return schema;
  }

  #expand(body: BodyNode[], source: string | undefined, chain: string[]): Located<BodyNode>[] {
    return body.flatMap((node): Located<BodyNode>[] => {
      if (node.kind !== 'partial-reference') return [{ node, source }];
      const partial = this.#partials.get(node.name);
      if (partial === undefined) throw schemaErrors.create('AUTHZ_SCHEMA_UNKNOWN_PARTIAL', { ...at(node.position, source), name: node.name });
      if (chain.includes(node.name)) {
        throw schemaErrors.create('AUTHZ_SCHEMA_CYCLE', { ...at(node.position, source), cycle: [...chain, node.name], detail: `partials include each other in a cycle: ${[...chain, node.name].join(' -> ')}` });
      }
      // The definition or partial that starts the chain does not count.
      if (chain.length > SCHEMA_LIMITS.partialNesting) throw limitError(node.position, source, 'partialNesting', `partials included through more than ${SCHEMA_LIMITS.partialNesting} others`);
      return this.#expand(partial.node.body, partial.source, [...chain, node.name]);
    });
  }

  #definition(node: Extract<TopNode, { kind: 'definition' }>, source: string | undefined): Definition {
    const definition: Definition = { name: node.name, relations: new Map(), permissions: new Map(), position: node.position };
    this.#positions.set(definition, { start: node.position, ...(source === undefined ? {} : { source }) });
    const scope = ` in definition "${node.name}"`;
    const body = this.#expand(node.body, source, []);
    if (body.length > SCHEMA_LIMITS.members) {
      const extra = body[SCHEMA_LIMITS.members]!;
      throw limitError(extra.node.position, extra.source, 'members', `definition "${node.name}" has more than ${SCHEMA_LIMITS.members} relations and permissions`);
    }
    for (const item of body) {
      const { node: child } = item;
      if (child.kind === 'relation') {
        if (definition.relations.has(child.name)) throw duplicate(child.position, item.source, 'relation', child.name, scope);
        definition.relations.set(child.name, this.#relation(child, item.source));
      } else if (child.kind === 'permission') {
        if (definition.permissions.has(child.name)) throw duplicate(child.position, item.source, 'permission', child.name, scope);
        const permission: Permission = { name: child.name, expr: this.#expr(child.expr, item.source), position: child.position };
        this.#located(permission, { start: child.position }, item.source);
        definition.permissions.set(child.name, permission);
      }
    }
    return definition;
  }

  #relation(node: Extract<BodyNode, { kind: 'relation' }>, source: string | undefined): Relation {
    const relation: Relation = {
      name: node.name,
      // Fresh objects each time: a partial's relations are copied into every definition using it.
      allowed: node.allowed.map(({ subject, positions }) => this.#located({ ...subject }, positions, source)),
      position: node.position,
    };
    return this.#located(relation, { start: node.position }, source);
  }

  #expr(node: ExprNode, source: string | undefined, depth = 1): PermissionExpr {
    if (depth > SCHEMA_LIMITS.expressionNesting) throw limitError(node.position, source, 'expressionNesting', `a permission expression nested deeper than ${SCHEMA_LIMITS.expressionNesting} levels`);
    switch (node.kind) {
      case 'ref':
        return this.#located({ kind: 'ref', name: node.name }, { start: node.position }, source);
      case 'nil':
        return this.#located({ kind: 'nil' }, { start: node.position }, source);
      case 'self':
        return this.#located({ kind: 'self' }, { start: node.position }, source);
      case 'arrow': {
        if (node.left.kind === 'ref') {
          return this.#located(
            { kind: 'arrow', tupleset: node.left.name, computed: node.computed, mode: node.mode },
            { start: node.position, computed: node.computedPosition },
            source,
          );
        }
        // `(a->b)->c`: the inner arrow's target becomes one more hop, walked with this arrow's mode.
        const inner = this.#expr(node.left, source);
        if (inner.kind !== 'arrow' && inner.kind !== 'arrow-chain') throw new Error(`an arrow's left side parsed as ${inner.kind}`);
        const first: ArrowHop[] = inner.kind === 'arrow' ? [this.#located({ relation: inner.tupleset, mode: inner.mode }, { start: node.left.position }, source)] : inner.hops;
        const hop = this.#located({ relation: inner.computed, mode: node.mode }, { start: this.#positions.get(inner)?.computed ?? node.position }, source);
        return this.#located({ kind: 'arrow-chain', hops: [...first, hop], computed: node.computed }, { start: node.position, computed: node.computedPosition }, source);
      }
      case 'exclusion':
        // Order matters for exclusion: `a - b - c` stays `(a - b) - c`.
        return this.#located({ kind: 'exclusion', base: this.#expr(node.left, source, depth + 1), subtract: this.#expr(node.right, source, depth + 1) }, { start: node.position }, source);
      case 'union':
      case 'intersection': {
        // Same-operator chains become one node, parenthesised or not, as SpiceDB's collapseOps
        // does. A chain is one parse node already; only parenthesised ones are spliced in, and
        // those nest no deeper than the parentheses may.
        const operands: ExprNode[] = [];
        const collect = (child: ExprNode) => {
          if (child.kind === node.kind) child.operands.forEach(collect);
          else operands.push(child);
        };
        collect(node);
        if (operands.length > SCHEMA_LIMITS.operands) throw limitError(node.position, source, 'operands', `more than ${SCHEMA_LIMITS.operands} operands of one \`${node.kind === 'union' ? '+' : '&'}\``);
        return this.#located({ kind: node.kind, children: operands.map((child) => this.#expr(child, source, depth + 1)) }, { start: node.position }, source);
      }
    }
  }

  #caveat(node: Extract<TopNode, { kind: 'caveat' }>, source: string | undefined): CaveatDefinition {
    const parameters: CaveatParameter[] = [];
    for (const parameter of node.parameters) {
      if (parameters.some((p) => p.name === parameter.name)) throw duplicate(parameter.position, source, 'parameter', parameter.name, ` in caveat "${node.name}"`);
      parameters.push(this.#located({ name: parameter.name, type: parameter.type }, { start: parameter.position, type: parameter.typePosition }, source));
    }
    return this.#located({ name: node.name, parameters, expression: node.expression, position: node.position }, { start: node.position }, source);
  }

  #located<T extends object>(object: T, positions: Omit<NodePositions, 'source'>, source: string | undefined): T {
    this.#positions.set(object, source === undefined ? { ...positions } : { ...positions, source });
    return object;
  }
}

function duplicate(position: Position, source: string | undefined, kind: string, name: string, scope = '') {
  return schemaErrors.create('AUTHZ_SCHEMA_DUPLICATE', { ...at(position, source), kind, name, scope });
}

/**
 * Parses schema text and also returns where each parsed object was written, so that
 * `validateSchema` can point at the exact token.
 */
export function parseSchemaWithPositions(text: string, options: ParseOptions = {}): { schema: Schema; positions: SourcePositions } {
  const positions: SourcePositions = new Map();
  const nodes = resolveImports(parseFile(text, undefined), options, [], new Set());
  return { schema: new Lowering(positions).schema(nodes), positions };
}

/**
 * Parses a schema written in the SpiceDB schema language. Checks syntax only (and duplicates); run `validateSchema` (or use
 * `compileSchema`) before trusting it.
 *
 * @example
 * const schema = parseSchema(`
 *   definition user {}
 *   definition document {
 *     relation viewer: user
 *     permission view = viewer
 *   }
 * `);
 * schema.definitions.get('document')?.permissions.get('view')?.expr; // { kind: 'ref', name: 'viewer' }
 */
export function parseSchema(text: string, options: ParseOptions = {}): Schema {
  return parseSchemaWithPositions(text, options).schema;
}
