import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combine, compilePolicies, decide, cedarEntityRef, cedarErrors, type CedarRequest } from '../../src/authz/cedar/index.js';
import type { Permissionship } from '../../src/authz/engine/engine.js';
import { GatehouseError } from '../../src/errors.js';

const alice = { type: 'user', id: 'alice' };
const readme = { type: 'document', id: 'readme' };
const request = (overrides: Partial<CedarRequest> = {}): CedarRequest => ({ principal: alice, action: 'view', resource: readme, ...overrides });

function rejects(text: string, pattern: RegExp) {
  assert.throws(
    () => compilePolicies(text),
    (error: unknown) => error instanceof GatehouseError && error.code === 'AUTHZ_POLICY_INVALID' && error.status === 400 && pattern.test(error.message),
  );
}

describe('combine', () => {
  // Real Cedar decisions, selected by context: `permit` and `forbid` switch their policy on,
  // `broken` makes a forbid fail at runtime (context.ip is missing and read without `has`).
  const policies = compilePolicies(`
    @id("permit-flag") permit(principal, action, resource) when { context.permit };
    @id("forbid-flag") forbid(principal, action, resource) when { context.forbid };
    @id("forbid-ip") forbid(principal, action, resource) when { context.broken && context.ip == "10.0.0.1" };
  `);
  const cedar = (permit: boolean, forbid: boolean, broken: boolean) => decide(policies, request({ context: { permit, forbid, broken } }));

  /** graph × permit × forbid × evaluation error → expected. */
  const rows: [Permissionship, boolean, boolean, boolean, Permissionship][] = [
    ['allowed', false, false, false, 'allowed'],
    ['allowed', true, false, false, 'allowed'],
    ['allowed', false, true, false, 'denied'],
    ['allowed', true, true, false, 'denied'],
    ['allowed', false, false, true, 'denied'],
    ['allowed', true, false, true, 'denied'],
    ['conditional', false, false, false, 'conditional'],
    ['conditional', true, false, false, 'allowed'],
    ['conditional', false, true, false, 'denied'],
    ['conditional', true, true, false, 'denied'],
    ['conditional', true, false, true, 'denied'],
    ['denied', false, false, false, 'denied'],
    ['denied', true, false, false, 'allowed'],
    ['denied', false, true, false, 'denied'],
    ['denied', true, true, false, 'denied'],
    ['denied', true, false, true, 'denied'],
  ];

  it('follows the combination table', () => {
    for (const [graph, permit, forbid, broken, expected] of rows) {
      assert.equal(combine(graph, cedar(permit, forbid, broken)).permissionship, expected, `graph ${graph}, permit ${permit}, forbid ${forbid}, error ${broken}`);
    }
  });

  it("returns the graph's answer when the tenant has no policies", () => {
    for (const graph of ['allowed', 'denied', 'conditional'] as const) assert.equal(combine(graph, undefined).permissionship, graph);
  });

  it('names the policies and errors behind the answer', () => {
    assert.equal(combine('denied', cedar(true, false, false)).reason, 'permitted by policy permit-flag');
    assert.equal(combine('allowed', cedar(false, true, false)).reason, 'forbidden by policy forbid-flag');
    assert.match(combine('allowed', cedar(false, false, true)).reason, /^policy evaluation error: forbid-ip: record does not have the attribute `ip`/);
  });
});

describe('decide', () => {
  it('reports a permit and a forbid separately', () => {
    const policies = compilePolicies(`
      @id("viewers") permit(principal, action == Action::"view", resource);
      @id("no-mfa") forbid(principal, action, resource) when { context.mfa == false };
    `);
    assert.deepEqual(decide(policies, request({ context: { mfa: true } })), { decision: 'allow', reasons: ['viewers'], errors: [], permitted: true, forbidden: false });
    assert.deepEqual(decide(policies, request({ context: { mfa: false } })), { decision: 'deny', reasons: ['no-mfa'], errors: [], permitted: false, forbidden: true });
    assert.deepEqual(decide(policies, request({ action: 'edit', context: { mfa: true } })), { decision: 'deny', reasons: [], errors: [], permitted: false, forbidden: false });
  });

  it('denies when a forbid fails on a missing context attribute, even though the graph allows', () => {
    const policies = compilePolicies(`
      permit(principal, action, resource);
      forbid(principal, action, resource) when { context.ip == "10.0.0.1" };
    `);
    const result = decide(policies, request({ context: {} }));
    // Cedar alone would allow: it skips the failing forbid and lets the permit through.
    assert.equal(result.decision, 'deny');
    assert.equal(result.permitted, true);
    assert.deepEqual(result.errors.length, 1);
    assert.match(result.errors[0]!, /^policy1: /);
    assert.equal(combine('allowed', result).permissionship, 'denied');
  });

  it('denies when a policy compares a string with a long', () => {
    const policies = compilePolicies('forbid(principal, action, resource) when { context.level < 3 };');
    const result = decide(policies, request({ context: { level: 'high' } }));
    assert.equal(result.decision, 'deny');
    assert.equal(result.errors.length, 1);
    assert.equal(combine('allowed', result).permissionship, 'denied');
  });

  it('denies when the request itself cannot be evaluated', () => {
    const policies = compilePolicies('permit(principal, action, resource);');
    for (const bad of [{ context: { ratio: 1.5 } }, { principal: { type: 'user', id: 'alice' }, resource: { type: 'bad type', id: 'x' } }]) {
      const result = decide(policies, request(bad));
      assert.equal(result.decision, 'deny');
      assert.match(result.errors[0]!, /^request: /);
      assert.equal(combine('allowed', result).permissionship, 'denied');
    }
  });

  it('maps slash-qualified types to Cedar namespaces', () => {
    const policies = compilePolicies(`
      @id("staff") permit(principal is example::user, action == Action::"view", resource is example::document)
        when { principal in example::group::"staff" };
    `);
    const staff = { type: 'example/user', id: 'alice' };
    const document = { type: 'example/document', id: 'readme' };
    const entities = [{ uid: staff, parents: [{ type: 'example/group', id: 'staff' }] }];
    assert.equal(decide(policies, request({ principal: staff, resource: document, entities })).decision, 'allow');
    assert.equal(decide(policies, request({ principal: staff, resource: document })).decision, 'deny');
    assert.equal(decide(policies, request({ principal: alice, resource: document, entities })).decision, 'deny');
  });

  it('reads entity attributes, including references to other entities', () => {
    const policies = compilePolicies('permit(principal, action, resource) when { resource.owner == principal && resource.level <= 2 };');
    const owned = [{ uid: readme, attrs: { owner: cedarEntityRef(alice), level: 1 } }];
    const foreign = [{ uid: readme, attrs: { owner: cedarEntityRef({ type: 'user', id: 'bob' }), level: 1 } }];
    assert.equal(decide(policies, request({ entities: owned })).decision, 'allow');
    assert.equal(decide(policies, request({ entities: foreign })).decision, 'deny');
  });

  it('forbids on a context attribute', () => {
    const policies = compilePolicies('forbid(principal, action, resource) when { context.mfa == false };');
    const cases: [Record<string, unknown>, Permissionship][] = [
      [{ mfa: false }, 'denied'],
      [{ mfa: true }, 'allowed'],
    ];
    for (const [context, expected] of cases) assert.equal(combine('allowed', decide(policies, request({ context }))).permissionship, expected, JSON.stringify(context));
    // No mfa attribute at all is an evaluation error, and so a denial.
    assert.equal(combine('allowed', decide(policies, request({ context: {} }))).permissionship, 'denied');
  });

  it("names unannotated policies as Cedar does, by their position in the text", () => {
    const text = Array.from({ length: 12 }, (_, i) => `permit(principal, action == Action::"a${i}", resource);`).join('\n');
    const policies = compilePolicies(text);
    for (const i of [0, 2, 10, 11]) assert.deepEqual(decide(policies, request({ action: `a${i}` })).reasons, [`policy${i}`]);
  });

  it('keeps two policy sets with different text apart', () => {
    const allow = compilePolicies('permit(principal, action, resource);');
    const deny = compilePolicies('forbid(principal, action, resource);');
    const again = compilePolicies('permit(principal, action, resource);');
    assert.equal(decide(allow, request()).decision, 'allow');
    assert.equal(decide(deny, request()).decision, 'deny');
    assert.equal(decide(again, request()).decision, 'allow');
  });

  it('allows nothing with an empty policy set, leaving the graph to decide', () => {
    const result = decide(compilePolicies(''), request());
    assert.deepEqual(result, { decision: 'deny', reasons: [], errors: [], permitted: false, forbidden: false });
    assert.equal(combine('allowed', result).permissionship, 'allowed');
  });
});

describe('compilePolicies', () => {
  it('rejects text that does not parse, with line and column', () => {
    rejects('permit(principal, action, resource);\npermit(principal, action, resource) when { 1 + };', /^Cedar policy text is invalid: line 2, column 48: .*unexpected token `\}`/);
  });

  it('counts columns in characters, not UTF-8 bytes', () => {
    rejects('// héllo wörld\npermit(principal, action, resource) when { 1 + };', /line 2, column 48/);
  });

  it('rejects an unknown function', () => {
    rejects('permit(principal, action, resource) when { foo(1) };', /`foo` is not a valid function/);
  });

  it('rejects templates', () => {
    rejects('permit(principal == ?principal, action, resource);', /template/);
  });

  it('rejects two policies with the same id', () => {
    rejects('@id("a") permit(principal, action, resource);\n@id("a") forbid(principal, action, resource);', /two policies have the id "a"/);
  });

  it('carries the diagnostics in the error details', () => {
    try {
      compilePolicies('permit(principal, action, resource) when { 1 + };');
      assert.fail('expected a rejection');
    } catch (error) {
      assert.ok(error instanceof GatehouseError);
      assert.deepEqual((error.details?.errors as { line: number; column: number }[])[0]?.line, 1);
      assert.ok(Object.keys(cedarErrors.catalogue).includes(error.code));
    }
  });
});
