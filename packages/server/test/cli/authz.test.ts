import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from '../helpers.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI; `input` is written to its stdin (for FILE `-`). */
function gatehouse(args: string[], env: Record<string, string>, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', main, ...args], { env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'silent', ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

const schema = `definition user {}

caveat weekday(day string) {
  day != 'sunday'
}

definition group {
  relation member: user | group#member
}

definition document {
  relation owner: user
  relation viewer: user | group#member | user with weekday
  relation banned: user
  permission view = (viewer + owner) - banned
}
`;

// `gatehouse authz …` works on the database directly, as the other commands do; the server
// here only owns the data directory and lets the tests look at what the CLI stored.
describe('gatehouse authz CLI', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let files: string;
  const cli = (args: string[], input?: string) => gatehouse(args, env, input);
  const file = (name: string, text: string) => {
    const path = join(files, name);
    writeFileSync(path, text);
    return path;
  };
  const ok = (run: Run) => {
    assert.equal(run.code, 0, run.stderr);
    return run.stdout;
  };
  const json = (run: Run) => JSON.parse(ok(run)) as Record<string, unknown>;

  before(async () => {
    server = await startServer();
    await server.core.tenants.create('acme');
    env = { GATEHOUSE_DATA_DIR: server.config.dataDir };
    files = mkdtempSync(join(tmpdir(), 'gatehouse-cli-authz-'));
  });
  after(async () => {
    await server.close();
    rmSync(files, { recursive: true, force: true });
  });

  it('writes a schema from a file and reads it back unchanged, in text and JSON', async () => {
    const written = ok(await cli(['authz', 'schema', 'write', '--tenant', 'acme', file('schema.zed', schema)]));
    assert.match(written, /^schema written \(token gh1_[0-9a-z]+\)\n$/);
    assert.equal(ok(await cli(['authz', 'schema', 'read', '--tenant', 'acme'])), schema);
    assert.deepEqual(json(await cli(['--json', 'authz', 'schema', 'read', '--tenant', 'acme'])), { schema });
    // The same text again from stdin, with --json: the API's answer, { token }.
    const again = json(await cli(['--json', 'authz', 'schema', 'write', '--tenant', 'acme', '-'], schema));
    assert.deepEqual(Object.keys(again), ['token']);
    assert.match(String(again.token), /^gh1_/);
    assert.equal((await server.core.authz.readSchema('acme'))?.text, schema);
  });

  it('refuses a bad schema with its line and column, exits non-zero and stores nothing', async () => {
    const syntax = await cli(['authz', 'schema', 'write', '--tenant', 'acme', file('broken.zed', 'definition user {}\n\ndefinition document {\n  relation viewer user\n}\n')]);
    assert.equal(syntax.code, 1);
    assert.equal(syntax.stdout, '');
    assert.match(syntax.stderr, /^gatehouse: Schema syntax error at line 4, column \d+: /m);

    const unknown = await cli(['--json', 'authz', 'schema', 'write', '--tenant', 'acme', '-'], 'definition document {\n  relation owner: nobody\n}\n');
    assert.equal(unknown.code, 1);
    const error = JSON.parse(unknown.stderr);
    assert.equal(error.code, 'AUTHZ_SCHEMA_UNKNOWN_TYPE');
    assert.match(error.message, /line 2, column \d+/);
    assert.equal(error.details.line, 2);

    assert.equal((await server.core.authz.readSchema('acme'))?.text, schema);
  });

  it('writes (touches), reads with filters and deletes relationships', async () => {
    const written = ok(
      await cli(['authz', 'relationships', 'write', '--tenant', 'acme', 'group:eng#member@user:ann', 'document:plan#viewer@group:eng#member', 'document:plan#owner@user:bob', 'document:plan#banned@user:bob', 'document:memo#viewer@user:cal[weekday]']),
    );
    assert.match(written, /^touched 5 relationships \(token gh1_[0-9a-z]+\)\n$/);
    // Touch: writing one that exists again is not an error.
    assert.deepEqual(Object.keys(json(await cli(['--json', 'authz', 'relationships', 'write', '--tenant', 'acme', 'document:plan#owner@user:bob']))), ['token']);

    const read = (...filter: string[]) => cli(['authz', 'relationships', 'read', '--tenant', 'acme', ...filter]);
    assert.equal(ok(await read('--resource-type', 'document', '--resource-id', 'plan')), 'document:plan#banned@user:bob\ndocument:plan#owner@user:bob\ndocument:plan#viewer@group:eng#member\n');
    const filters: [string[], string[]][] = [
      [['--resource-type', 'document', '--relation', 'viewer'], ['document:memo#viewer@user:cal[weekday]', 'document:plan#viewer@group:eng#member']],
      [['--resource-type', 'document', '--subject', 'user:bob'], ['document:plan#banned@user:bob', 'document:plan#owner@user:bob']],
      [['--resource-type', 'document', '--subject', 'group:eng#member'], ['document:plan#viewer@group:eng#member']],
      [['--resource-type', 'document', '--subject', 'user', '--relation', 'viewer'], ['document:memo#viewer@user:cal[weekday]']],
      [['--resource-type', 'folder'], []],
    ];
    for (const [filter, expected] of filters) {
      assert.deepEqual(json(await cli(['--json', 'authz', 'relationships', 'read', '--tenant', 'acme', ...filter])), { relationships: expected }, filter.join(' '));
    }

    const deleted = json(await cli(['--json', 'authz', 'relationships', 'delete', '--tenant', 'acme', 'document:plan#banned@user:bob', 'document:plan#banned@user:nobody']));
    assert.deepEqual(Object.keys(deleted), ['token']);
    assert.equal(ok(await read('--resource-type', 'document', '--relation', 'banned')), '', 'nothing found prints nothing');
    // The running server's engine sees the CLI's write at the token it printed.
    const bob = await server.core.authz.check('acme', { resource: { type: 'document', id: 'plan' }, permission: 'view', subject: { type: 'user', id: 'bob' } }, { mode: 'at_least_as_fresh', token: String(deleted.token) });
    assert.equal(bob.permissionship, 'allowed');
  });

  it('refuses relationships that are malformed or do not fit the schema, writing none of them', async () => {
    const syntax = await cli(['authz', 'relationships', 'write', '--tenant', 'acme', 'document:x1#viewer@user:ann', 'document:x2#viewer@@user:ann']);
    assert.equal(syntax.code, 1);
    assert.match(syntax.stderr, /^gatehouse: Invalid relationship at column \d+/m);
    const misfit = await cli(['--json', 'authz', 'relationships', 'write', '--tenant', 'acme', 'document:x1#viewer@user:ann', 'document:x2#view@user:ann']);
    assert.equal(misfit.code, 1);
    assert.equal(JSON.parse(misfit.stderr).code, 'AUTHZ_RELATIONSHIP_INVALID');
    assert.deepEqual(await server.core.authz.readRelationships('acme', { resourceType: 'document', resourceId: 'x1' }), []);
  });

  it('imports a file of relationships with # and // comments and blank lines, all or nothing', async () => {
    const refused = await cli(['authz', 'relationships', 'import', '--tenant', 'acme', file('bad.txt', 'document:imp1#viewer@user:ann\n# a comment\ndocument:imp2#viewer@user:\n')]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^gatehouse: Invalid relationship at line 3, column \d+/m);
    const misfit = await cli(['--json', 'authz', 'relationships', 'import', '--tenant', 'acme', '-'], 'document:imp1#viewer@user:ann\n\n// a comment\nfolder:x#viewer@user:ann\n');
    const refusal = JSON.parse(misfit.stderr) as { code: string; message: string; details: { line: number } };
    assert.equal(refusal.code, 'AUTHZ_RELATIONSHIP_INVALID');
    // Not only syntax errors: a relationship the schema does not allow is named by its line too.
    assert.equal(refusal.details.line, 4);
    assert.match(refusal.message, /^Relationship folder:x#viewer@user:ann \(line 4\) does not fit the schema: /);
    assert.deepEqual(await server.core.authz.readRelationships('acme', { resourceType: 'document', resourceId: 'imp1' }), []);

    const text = ['# exported from the old system', '// the team', 'group:ops#member@user:dan', '', '  # indented comment', 'document:imp1#viewer@group:ops#member', 'document:imp2#owner@user:dan', ''].join('\n');
    assert.match(ok(await cli(['authz', 'relationships', 'import', '--tenant', 'acme', file('import.txt', text)])), /^imported 3 relationships \(token gh1_[0-9a-z]+\)\n$/);
    const again = json(await cli(['--json', 'authz', 'relationships', 'import', '--tenant', 'acme', '-'], text));
    assert.deepEqual(Object.keys(again).sort(), ['imported', 'token']);
    assert.equal(again.imported, 3, 'importing the same text again touches the same relationships');
    assert.equal(ok(await cli(['authz', 'relationships', 'read', '--tenant', 'acme', '--resource-type', 'document', '--subject', 'user:dan'])), 'document:imp2#owner@user:dan\n');
  });

  it('checks: allowed, denied and conditional, exiting 0 whenever the check ran', async () => {
    const check = (...args: string[]) => cli(['authz', 'check', '--tenant', 'acme', ...args]);
    const table: [string[], string][] = [
      [['document:plan', 'view', 'user:ann'], 'allowed\n'],
      [['document:plan', 'view', 'user:zed'], 'denied\n'],
      [['document:plan', 'viewer', 'group:eng#member'], 'allowed\n'],
      [['document:memo', 'view', 'user:cal'], 'conditional (missing: day)\n'],
      [['document:memo', 'view', 'user:cal', '--context', '{"day":"monday"}'], 'allowed\n'],
      [['document:memo', 'view', 'user:cal', '--context', '{"day":"sunday"}'], 'denied\n'],
    ];
    for (const [args, expected] of table) assert.equal(ok(await check(...args)), expected, args.join(' '));

    const explained = ok(await check('document:plan', 'view', 'user:ann', '--explain'));
    assert.match(explained, /^allowed\nwhy: .*group:eng#member@user:ann/);
    const denied = json(await cli(['--json', 'authz', 'check', '--tenant', 'acme', 'document:plan', 'view', 'user:zed']));
    assert.deepEqual(Object.keys(denied), ['permissionship', 'token']);
    assert.equal(denied.permissionship, 'denied');
    const conditional = json(await cli(['--json', 'authz', 'check', '--tenant', 'acme', 'document:memo', 'view', 'user:cal', '--explain']));
    assert.equal(conditional.permissionship, 'conditional');
    assert.deepEqual(conditional.missing, ['day']);
    assert.equal((conditional.explanation as { permissionship: string }).permissionship, 'conditional');
  });

  it('fails a check that cannot run with a message and a non-zero exit', async () => {
    const unknownType = await cli(['authz', 'check', '--tenant', 'acme', 'folder:x', 'view', 'user:ann']);
    assert.equal(unknownType.code, 1);
    assert.match(unknownType.stderr, /^gatehouse: Object type "folder" is not defined/m);
    const badContext = await cli(['authz', 'check', '--tenant', 'acme', 'document:memo', 'view', 'user:cal', '--context', '{day: monday}']);
    assert.equal(badContext.code, 1);
    assert.match(badContext.stderr, /^gatehouse: --context is not JSON/m);
    const badSubject = await cli(['--json', 'authz', 'check', '--tenant', 'acme', 'document:plan', 'view', 'ann']);
    assert.equal(JSON.parse(badSubject.stderr).code, 'AUTHZ_RELATIONSHIP_SYNTAX');
    const noTenant = await cli(['authz', 'schema', 'read', '--tenant', 'nowhere']);
    assert.equal(noTenant.code, 1);
    assert.match(noTenant.stderr, /^gatehouse: Tenant "nowhere" does not exist/m);
    const noFile = await cli(['authz', 'schema', 'write', '--tenant', 'acme', join(files, 'missing.zed')]);
    assert.equal(noFile.code, 1);
    assert.match(noFile.stderr, /^gatehouse: cannot read .*missing\.zed/m);
  });

  it('writes and reads Cedar policies, which then decide checks; refuses text that does not parse', async () => {
    const policies = '@id("no-mfa") forbid(principal, action == Action::"view", resource) when { context has mfa && context.mfa == false };\n';
    assert.match(ok(await cli(['authz', 'policies', 'write', '--tenant', 'acme', file('policies.cedar', policies)])), /^policies written \(token gh1_/);
    assert.equal(ok(await cli(['authz', 'policies', 'read', '--tenant', 'acme'])), policies);
    assert.deepEqual(json(await cli(['--json', 'authz', 'policies', 'read', '--tenant', 'acme'])), { policies });
    assert.match(ok(await cli(['authz', 'check', '--tenant', 'acme', 'document:plan', 'view', 'user:ann', '--context', '{"mfa":false}'])), /^denied\npolicy: .*no-mfa/);

    const refused = await cli(['--json', 'authz', 'policies', 'write', '--tenant', 'acme', '-'], 'permit(principal, action, resource');
    assert.equal(refused.code, 1);
    assert.equal(JSON.parse(refused.stderr).code, 'AUTHZ_POLICY_INVALID');
    assert.equal((await server.core.authz.readPolicies('acme'))?.text, policies);

    assert.deepEqual(Object.keys(json(await cli(['--json', 'authz', 'policies', 'write', '--tenant', 'acme', '-'], ''))), ['token']);
    assert.equal(ok(await cli(['authz', 'policies', 'read', '--tenant', 'acme'])), '');
    assert.equal(ok(await cli(['authz', 'check', '--tenant', 'acme', 'document:plan', 'view', 'user:ann', '--context', '{"mfa":false}'])), 'allowed\n');
  });

  it('audits every write and decision with actor cli and the API routes\' action names', async () => {
    const events = await server.core.repos.audit.query({ tenantId: 'acme', actor: 'cli', limit: 1000 });
    const seen = (action: string, target?: string) => events.filter((e) => e.action === action && (target === undefined || e.target === target));
    assert.equal(seen('authz.schema_written', 'schema').length, 2, 'the refused schemas are not audited as written');
    assert.equal(seen('authz.relationships_written', '5 updates').length, 1);
    assert.deepEqual(seen('authz.relationships_written', '5 updates')[0]?.details?.updates, [
      'touch group:eng#member@user:ann',
      'touch document:plan#viewer@group:eng#member',
      'touch document:plan#owner@user:bob',
      'touch document:plan#banned@user:bob',
      'touch document:memo#viewer@user:cal[weekday]',
    ]);
    assert.equal(seen('authz.relationships_written', 'import of 3').length, 2);
    assert.equal(seen('authz.relationships_deleted', '2 relationships').length, 1);
    assert.equal(seen('authz.policies_written', 'policies').length, 2);
    const denied = seen('authz.check', 'document:plan#view@user:zed');
    assert.ok(denied.length >= 1 && denied.every((e) => e.result === 'failure' && e.details?.permissionship === 'denied'));
    assert.ok(seen('authz.check', 'document:plan#view@user:ann').some((e) => e.result === 'success'));
  });
});
