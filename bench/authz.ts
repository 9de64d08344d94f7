/**
 * Permission-service benchmark: one synthetic tenant (about 1 M relationships at scale 1:
 * organisations, teams nested 3 deep, folders nested 5 deep, documents, 100 k users) in a
 * real SQLite database behind a whole listening Gatehouse, and from one run:
 *
 *   1. engine build (index from the database) and process RSS after;
 *   2. in-process check latency and checks/s over random (document, user) pairs;
 *   3. lookup-resources for a user who can see `10 k × scale` documents;
 *   4. the same checks as a recursive SQL query on the same database (answers compared);
 *   5. an equivalent RBAC decision by Cedar alone, entities passed in per request;
 *   6. HTTP check throughput (autocannon, keep-alive, admin bearer token), and the same load
 *      against a bare Fastify route in the same process (parses and validates the same body,
 *      answers a constant): a same-run yardstick for how fast this machine is at the moment.
 *
 * It reports; it does not fail on a missed target. It exits 1 when something errored, an
 * HTTP request failed, or SQL disagreed with the engine.
 * Knobs (environment):
 *   BENCH_AUTHZ_SCALE       dataset size, default 1 (≈1 M relationships); 0.1 for a quick run
 *   BENCH_AUTHZ_LOAD        `service` (default): every relationship through writeRelationships,
 *                           1000 touches per call; `direct`: one prepared INSERT transaction
 *   BENCH_AUTHZ_CHECKS      in-process checks, default 20000
 *   BENCH_AUTHZ_SQL_N       checks answered by SQL, default 500
 *   BENCH_AUTHZ_CEDAR_N     Cedar decisions, default 5000
 *   BENCH_SECONDS           measured HTTP load, default 10
 *   BENCH_WARMUP_SECONDS    HTTP warm-up, default 3
 *   BENCH_CONNECTIONS       keep-alive connections, default 10
 *   BENCH_AUDIT_MODE        GATEHOUSE_AUDIT_MODE of the server: `durable` (default; a decision
 *                           answers once its audit event is written) or `async`
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { compilePolicies, decide, cedarEntityRef, type CedarEntity, type CedarRequest } from '../packages/server/src/authz/cedar/index.js';
import type { CheckRequest } from '../packages/server/src/authz/engine/engine.js';
import { revisionOf } from '../packages/server/src/authz/service.js';
import type { Relationship } from '../packages/server/src/authz/types.js';
import { adminToken, startServer, type TestServer } from '../packages/server/test/helpers.js';
import {
  checkPairs,
  docId,
  folderChain,
  generate,
  orgId,
  percentile,
  relationships,
  SCHEMA,
  teamChain,
  teamId,
  userId,
  type Dataset,
} from './authz-lib.js';
import Fastify from 'fastify';
import { createCleanup, envNumber, fmt, formatTable, freePort, loadSegment, median, runMain, summarize } from './lib.js';

const SCALE = envNumber('BENCH_AUTHZ_SCALE', 1);
const LOAD_MODE = process.env.BENCH_AUTHZ_LOAD === 'direct' ? 'direct' : 'service';
const CHECKS = Math.round(envNumber('BENCH_AUTHZ_CHECKS', 20_000));
const SQL_N = Math.round(envNumber('BENCH_AUTHZ_SQL_N', 500));
const CEDAR_N = Math.round(envNumber('BENCH_AUTHZ_CEDAR_N', 5_000));
const SECONDS = envNumber('BENCH_SECONDS', 10);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 3);
const CONNECTIONS = Math.round(envNumber('BENCH_CONNECTIONS', 10));
const TENANT = 'bench';
const BATCH = 1000;

const TARGETS = { checkP99Ms: 1, httpPerSecond: 10_000, lookupMs: 50 } as const;

const mib = (bytes: number) => bytes / 1024 / 1024;
const us = (ms: number) => `${fmt(ms * 1000, 1)} µs`;
const sortedCopy = (values: Float64Array) => Float64Array.from(values).sort();

/** Writes the dataset; relationships per second. */
async function load(server: TestServer, data: Dataset): Promise<{ seconds: number; perSecond: number; mode: string }> {
  const authz = server.core.authz;
  await authz.writeSchema(TENANT, SCHEMA);
  const started = performance.now();
  let written = 0;
  let lastReport = started;
  if (LOAD_MODE === 'service') {
    let batch: Relationship[] = [];
    const flush = async () => {
      await authz.writeRelationships(TENANT, batch.map((relationship) => ({ operation: 'touch' as const, relationship })));
      written += batch.length;
      batch = [];
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        console.log(`    … ${fmt(written)} / ${fmt(data.count)} (${fmt(written / ((lastReport - started) / 1000))}/s)`);
      }
    };
    for (const r of relationships(data)) {
      batch.push(r);
      if (batch.length === BATCH) await flush();
    }
    if (batch.length > 0) await flush();
  } else {
    // One revision for the whole import: a write through the service takes it, the rows follow.
    const first = relationships(data).next().value as Relationship;
    const { token } = await authz.writeRelationships(TENANT, [{ operation: 'touch', relationship: first }]);
    const revision = revisionOf(token);
    const sqlite = server.core.handle.sqlite!;
    const insert = sqlite.prepare(
      `insert or replace into relationships (tenant_id, resource_type, resource_id, relation, subject_type, subject_id, subject_relation, caveat_name, caveat_context, expires_at, revision)
       values (?, ?, ?, ?, ?, ?, ?, null, null, null, ?)`,
    );
    sqlite.transaction(() => {
      for (const r of relationships(data)) {
        insert.run(TENANT, r.resourceType, r.resourceId, r.relation, r.subjectType, r.subjectId, r.subjectRelation ?? '...', revision);
        written++;
      }
    })();
    // Bump the revision so that no snapshot can claim to include the import without it.
    await authz.writeRelationships(TENANT, [{ operation: 'touch', relationship: first }]);
  }
  const seconds = (performance.now() - started) / 1000;
  return { seconds, perSecond: written / seconds, mode: LOAD_MODE };
}

/**
 * The check by recursive SQL: document → folder ancestry; user → teams through nesting.
 * CROSS JOIN fixes SQLite's join order (the small CTE drives), and INDEXED BY keeps the
 * team walk on the subject index: left to itself the planner range-scans every team row
 * of the primary key (tenant_id, resource_type) — 50 ms per check at 1 M relationships.
 */
function sqlChecker(server: TestServer) {
  const statement = server.core.handle.sqlite!.prepare(`
    with recursive
      folders(id) as (
        select subject_id from relationships
         where tenant_id = @t and resource_type = 'document' and resource_id = @doc and relation = 'folder' and subject_type = 'folder'
        union
        select r.subject_id from folders f cross join relationships r
          on r.tenant_id = @t and r.resource_type = 'folder' and r.resource_id = f.id and r.relation = 'parent' and r.subject_type = 'folder'
      ),
      teams(id) as (
        select resource_id from relationships indexed by relationships_subject_idx
         where tenant_id = @t and subject_type = 'user' and subject_id = @user and subject_relation = '...' and resource_type = 'team' and relation = 'member'
        union
        select r.resource_id from teams m cross join relationships r indexed by relationships_subject_idx
          on r.tenant_id = @t and r.subject_type = 'team' and r.subject_id = m.id and r.subject_relation = 'member' and r.resource_type = 'team' and r.relation = 'member'
      )
    select (
      exists (select 1 from relationships
               where tenant_id = @t and resource_type = 'document' and resource_id = @doc and relation in ('viewer', 'owner')
                 and subject_type = 'user' and subject_id = @user and subject_relation = '...')
      or exists (select 1 from relationships
               where tenant_id = @t and resource_type = 'document' and resource_id = @doc and relation = 'viewer'
                 and subject_type = 'team' and subject_relation = 'member' and subject_id in (select id from teams))
      or exists (select 1 from folders f cross join relationships r
                  on r.tenant_id = @t and r.resource_type = 'folder' and r.resource_id = f.id and r.relation = 'viewer'
               where (r.subject_type = 'user' and r.subject_id = @user and r.subject_relation = '...')
                  or (r.subject_type = 'team' and r.subject_relation = 'member' and r.subject_id in (select id from teams)))
      or exists (select 1 from folders f cross join relationships r
                  on r.tenant_id = @t and r.resource_type = 'folder' and r.resource_id = f.id and r.relation = 'org' and r.subject_type = 'organization'
               join relationships a
                  on a.tenant_id = @t and a.resource_type = 'organization' and a.resource_id = r.subject_id and a.relation = 'admin'
                 and a.subject_type = 'user' and a.subject_id = @user and a.subject_relation = '...')
    ) as allowed`);
  return (doc: string, user: string) => (statement.get({ t: TENANT, doc, user }) as { allowed: number }).allowed === 1;
}

/**
 * The same decision as Cedar RBAC: the principal's entity has its teams as parents (and
 * those their parent teams, and the org-admin roles); the resource carries its owner, the
 * viewers granted on it or any folder above it, and its organisation's admin role.
 */
function cedarRequest(data: Dataset, doc: number, user: number): CedarRequest {
  const entities: CedarEntity[] = [];
  const seen = new Set<number>();
  const adminOf = data.orgAdmins.flatMap((admins, o) => (admins.includes(user) ? [{ type: 'orgadmin', id: orgId(o) }] : []));
  entities.push({ uid: { type: 'user', id: userId(user) }, parents: [...data.userTeams[user]!.map((t) => ({ type: 'team', id: teamId(t) })), ...adminOf] });
  for (const t of data.userTeams[user]!) {
    for (const a of teamChain(data, t)) {
      if (seen.has(a)) continue;
      seen.add(a);
      const p = data.teamParent[a]!;
      entities.push({ uid: { type: 'team', id: teamId(a) }, parents: p >= 0 ? [{ type: 'team', id: teamId(p) }] : [] });
    }
  }
  const viewers: unknown[] = [];
  const grant = (kind: number, id: number) => viewers.push(cedarEntityRef(kind === 0 ? { type: 'user', id: userId(id) } : { type: 'team', id: teamId(id) }));
  const v = data.docViewer[doc]!;
  if (v >= 0) grant(v >>> 24, v & 0xffffff);
  const chain = folderChain(data, doc);
  for (const f of chain) for (const g of data.folderGrants[f]!) if (g) grant(g.kind, g.id);
  const top = chain[chain.length - 1]!;
  entities.push({
    uid: { type: 'document', id: docId(doc) },
    attrs: { owner: cedarEntityRef({ type: 'user', id: userId(data.docOwner[doc]!) }), viewers, admins: cedarEntityRef({ type: 'orgadmin', id: orgId(data.folderOrg[top]!) }) },
  });
  return { principal: { type: 'user', id: userId(user) }, action: 'view', resource: { type: 'document', id: docId(doc) }, entities };
}

const CEDAR_POLICY = `permit(principal, action == Action::"view", resource) when {
  resource.owner == principal || principal in resource.viewers || principal in resource.admins
};`;

async function main(): Promise<number> {
  const cleanup = createCleanup();
  const onSignal = () => {
    void cleanup.runAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  let failures = 0;
  try {
    console.log(`Gatehouse permission-service benchmark — node ${process.version}, ${cpus().length} CPU(s), ${cpus()[0]?.model ?? 'unknown CPU'}`);
    let t = performance.now();
    const data = generate(SCALE);
    console.log(
      `dataset (scale ${SCALE}): ${fmt(data.count)} relationships — ${fmt(data.users)} users, ${data.orgs} orgs, ${fmt(data.teams)} teams (3 levels), ` +
        `${fmt(data.folders)} folders (5 levels), ${fmt(data.documents)} documents; generated in ${fmt(performance.now() - t)} ms`,
    );

    const server = await startServer({ listen: true, env: { GATEHOUSE_AUDIT_MODE: process.env.BENCH_AUDIT_MODE === 'async' ? 'async' : 'durable' } });
    cleanup.add('close server and remove its data dir', () => server.close());
    await server.core.tenants.create(TENANT);
    console.log(`\n0. load into SQLite (${LOAD_MODE === 'service' ? `writeRelationships, ${BATCH} touches per call` : 'direct INSERT, one transaction'})`);
    const loaded = await load(server, data);
    console.log(`  ${fmt(data.count)} relationships in ${fmt(loaded.seconds, 1)} s: ${fmt(loaded.perSecond)} relationships/s`);

    console.log('\n1. engine build (index from the database, fully consistent)');
    const rssBefore = process.memoryUsage().rss;
    t = performance.now();
    const { engine } = await server.core.authz.engineFor(TENANT, { mode: 'fully_consistent' });
    const buildMs = performance.now() - t;
    const memory = process.memoryUsage();
    console.log(`  built in ${fmt(buildMs)} ms; RSS ${fmt(mib(memory.rss))} MiB (was ${fmt(mib(rssBefore))} MiB), heap used ${fmt(mib(memory.heapUsed))} MiB`);

    console.log(`\n2. in-process check, ${fmt(CHECKS)} (document, user) pairs`);
    const pairs = checkPairs(data, CHECKS);
    const requests: CheckRequest[] = pairs.map(([d, u]) => ({ resource: { type: 'document', id: docId(d) }, permission: 'view', subject: { type: 'user', id: userId(u) } }));
    for (let i = 0; i < Math.min(2000, requests.length); i++) engine.check(requests[i]!); // warm-up
    const latencies = new Float64Array(requests.length);
    const answers: boolean[] = [];
    const checkStart = performance.now();
    for (let i = 0; i < requests.length; i++) {
      const s = performance.now();
      const result = engine.check(requests[i]!);
      latencies[i] = performance.now() - s;
      answers.push(result.permissionship === 'allowed');
    }
    const checkSeconds = (performance.now() - checkStart) / 1000;
    const sortedLat = sortedCopy(latencies);
    const check = { p50: percentile(sortedLat, 50), p99: percentile(sortedLat, 99), max: sortedLat[sortedLat.length - 1]!, perSecond: requests.length / checkSeconds };
    const allowedRatio = answers.filter(Boolean).length / answers.length;
    console.log(`  p50 ${us(check.p50)}, p99 ${us(check.p99)}, max ${us(check.max)}; ${fmt(check.perSecond)} checks/s (one thread); allowed ${fmt(allowedRatio * 100, 1)} %`);

    console.log(`\n3. lookup-resources for user:${userId(data.targetUser)} (document#view)`);
    const lookupTimes: number[] = [];
    let found = 0;
    for (let i = 0; i < 5; i++) {
      t = performance.now();
      const result = engine.lookupResources({ resourceType: 'document', permission: 'view', subject: { type: 'user', id: userId(data.targetUser) } });
      lookupTimes.push(performance.now() - t);
      found = result.allowed.length;
    }
    const lookupMs = median(lookupTimes);
    console.log(`  ${fmt(found)} documents (expected ${fmt(data.targetDocuments)}); median of 5: ${fmt(lookupMs, 1)} ms (runs ${lookupTimes.map((x) => fmt(x, 1)).join(', ')})`);
    if (found !== data.targetDocuments) {
      console.log(`  !!! lookup found ${found} documents, the dataset grants ${data.targetDocuments}`);
      failures++;
    }

    console.log(`\n4. the same checks by a recursive SQL query on the same SQLite database (${fmt(SQL_N)} pairs)`);
    const sqlCheck = sqlChecker(server);
    const n = Math.min(SQL_N, requests.length);
    for (let i = 0; i < Math.min(20, n); i++) sqlCheck(docId(pairs[i]![0]), userId(pairs[i]![1])); // warm-up
    const sqlLat = new Float64Array(n);
    const engineLat = new Float64Array(n);
    let mismatches = 0;
    for (let i = 0; i < n; i++) {
      const [d, u] = pairs[i]!;
      let s = performance.now();
      const viaSql = sqlCheck(docId(d), userId(u));
      sqlLat[i] = performance.now() - s;
      s = performance.now();
      const viaEngine = engine.check(requests[i]!).permissionship === 'allowed';
      engineLat[i] = performance.now() - s;
      if (viaSql !== viaEngine) mismatches++;
    }
    const sqlSorted = sortedCopy(sqlLat);
    const engSorted = sortedCopy(engineLat);
    const sql = { p50: percentile(sqlSorted, 50), p99: percentile(sqlSorted, 99) };
    const sqlRatio = sql.p50 / percentile(engSorted, 50);
    console.log(`  SQL p50 ${us(sql.p50)}, p99 ${us(sql.p99)}; engine on the same pairs p50 ${us(percentile(engSorted, 50))}, p99 ${us(percentile(engSorted, 99))}`);
    console.log(`  SQL / engine (p50): ${fmt(sqlRatio, 1)}×; answers that differ: ${mismatches}`);
    if (mismatches > 0) failures++;

    console.log(`\n5. equivalent RBAC decision by Cedar alone (${fmt(CEDAR_N)} decisions, entities per request passed in)`);
    const policies = compilePolicies(CEDAR_POLICY);
    const cn = Math.min(CEDAR_N, requests.length);
    const cedarRequests = pairs.slice(0, cn).map(([d, u]) => cedarRequest(data, d, u));
    for (let i = 0; i < Math.min(200, cn); i++) decide(policies, cedarRequests[i]!);
    const cedarLat = new Float64Array(cn);
    const engLat2 = new Float64Array(cn);
    let cedarMismatches = 0;
    let cedarErrors = 0;
    for (let i = 0; i < cn; i++) {
      let s = performance.now();
      const decision = decide(policies, cedarRequests[i]!);
      cedarLat[i] = performance.now() - s;
      s = performance.now();
      const viaEngine = engine.check(requests[i]!).permissionship === 'allowed';
      engLat2[i] = performance.now() - s;
      if (decision.errors.length > 0) cedarErrors++;
      if ((decision.decision === 'allow') !== viaEngine) cedarMismatches++;
    }
    const cedarSorted = sortedCopy(cedarLat);
    const eng2Sorted = sortedCopy(engLat2);
    const cedar = { p50: percentile(cedarSorted, 50), p99: percentile(cedarSorted, 99) };
    const cedarRatio = percentile(eng2Sorted, 50) / cedar.p50;
    const avgEntities = cedarRequests.reduce((sum, r) => sum + (r.entities?.length ?? 0), 0) / cn;
    console.log(`  Cedar p50 ${us(cedar.p50)}, p99 ${us(cedar.p99)} (${fmt(avgEntities, 1)} entities per request); engine on the same pairs p50 ${us(percentile(eng2Sorted, 50))}`);
    console.log(`  engine / Cedar (p50): ${fmt(cedarRatio, 2)}; decisions that differ from the engine: ${cedarMismatches}; Cedar errors: ${cedarErrors}`);
    if (cedarErrors > 0) failures++;

    console.log(`\n6. HTTP POST /api/v1/tenants/${TENANT}/authz/check — ${CONNECTIONS} keep-alive connections, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s, audit ${server.config.auditMode}`);
    const token = await adminToken(server);
    const bodies = pairs.slice(0, 200).map(([d, u]) => JSON.stringify({ resource: `document:${docId(d)}`, permission: 'view', subject: `user:${userId(u)}` }));
    const target = { url: `${server.url}/api/v1/tenants/${TENANT}/authz/check`, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: bodies[0]!, bodies };
    const probe = await fetch(target.url, { method: 'POST', headers: target.headers, body: bodies[0] });
    console.log(`  probe: ${probe.status} ${await probe.text()}`);
    const warm = summarize(target.url, CONNECTIONS, [await loadSegment(target, { connections: CONNECTIONS, seconds: WARMUP_SECONDS })]);
    const elu0 = performance.eventLoopUtilization();
    const http = summarize(target.url, CONNECTIONS, [await loadSegment(target, { connections: CONNECTIONS, seconds: SECONDS })]);
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const httpFailed = warm.non2xx + warm.errors + warm.timeouts + http.non2xx + http.errors + http.timeouts;
    console.log(
      `  ${fmt(http.okPerSecond)} checks/s, p50 ${http.p50Ms} ms, p99 ${http.p99Ms} ms, max ${http.maxMs} ms (${fmt(http.ok)} ok in ${fmt(http.seconds, 1)} s; ` +
        `warm-up ${fmt(warm.okPerSecond)}/s); main-thread event-loop utilisation ${fmt(elu * 100)} %`,
    );
    console.log(`  non-2xx ${warm.non2xx + http.non2xx}, errors ${warm.errors + http.errors}, timeouts ${warm.timeouts + http.timeouts}; status codes ${JSON.stringify(http.statusCodes)}`);
    if (httpFailed > 0) failures++;

    // The yardstick: Fastify alone, same body, same schema validation, a constant answer.
    const bare = Fastify({ logger: false });
    const body = { type: 'object', properties: { resource: { type: 'string' }, permission: { type: 'string' }, subject: { type: 'string' } }, required: ['resource', 'permission', 'subject'], additionalProperties: false };
    const answer = { type: 'object', properties: { permissionship: { type: 'string' }, token: { type: 'string' } } };
    bare.post('/check', { schema: { body, response: { 200: answer } } }, async () => ({ permissionship: 'allowed', token: 'gh1_0' }));
    const barePort = await freePort();
    await bare.listen({ port: barePort, host: '127.0.0.1' });
    cleanup.add('close the bare Fastify yardstick', () => bare.close());
    const bareTarget = { ...target, url: `http://127.0.0.1:${barePort}/check` };
    await loadSegment(bareTarget, { connections: CONNECTIONS, seconds: WARMUP_SECONDS });
    const bareLoad = summarize(bareTarget.url, CONNECTIONS, [await loadSegment(bareTarget, { connections: CONNECTIONS, seconds: SECONDS })]);
    const httpRatio = http.okPerSecond / bareLoad.okPerSecond;
    console.log(`  same load on a bare Fastify route (same body and validation, constant answer): ${fmt(bareLoad.okPerSecond)}/s → Gatehouse / bare ${fmt(httpRatio, 2)}`);

    const verdict = (pass: boolean) => (pass ? 'PASS' : 'MISS');
    const must = (pass: boolean) => (pass ? 'PASS' : 'FAIL');
    console.log(`\nSummary (scale ${SCALE}, ${fmt(data.count)} relationships)`);
    console.log(
      formatTable(
        ['figure', 'value', 'target', 'result'],
        [
          [`load (${loaded.mode})`, `${fmt(loaded.perSecond)} rel/s`, '', ''],
          ['engine build', `${fmt(buildMs)} ms`, '', ''],
          ['RSS after build', `${fmt(mib(memory.rss))} MiB`, '', ''],
          ['in-process check p50', us(check.p50), '', ''],
          ['in-process check p99', us(check.p99), `< ${TARGETS.checkP99Ms} ms`, verdict(check.p99 < TARGETS.checkP99Ms)],
          ['in-process checks/s', fmt(check.perSecond), '', ''],
          ['  allowed ratio', `${fmt(allowedRatio * 100, 1)} %`, '', ''],
          [`lookup ${fmt(found)} documents`, `${fmt(lookupMs, 1)} ms`, `< ${TARGETS.lookupMs} ms`, verdict(lookupMs < TARGETS.lookupMs)],
          ['recursive SQL p50 / p99', `${us(sql.p50)} / ${us(sql.p99)}`, '', ''],
          ['SQL / engine (p50)', `${fmt(sqlRatio, 1)}×`, '', ''],
          ['SQL answers ≠ engine', String(mismatches), '0', must(mismatches === 0)],
          ['Cedar decision p50 / p99', `${us(cedar.p50)} / ${us(cedar.p99)}`, '', ''],
          ['engine / Cedar (p50)', fmt(cedarRatio, 2), '', ''],
          ['Cedar answers ≠ engine', String(cedarMismatches), '', ''],
          ['HTTP checks/s', fmt(http.okPerSecond), `>= ${fmt(TARGETS.httpPerSecond)}`, verdict(http.okPerSecond >= TARGETS.httpPerSecond)],
          ['  HTTP p50 / p99', `${http.p50Ms} / ${http.p99Ms} ms`, '', ''],
          ['HTTP failed requests', String(httpFailed), '0', must(httpFailed === 0)],
          ['  bare Fastify, same load', `${fmt(bareLoad.okPerSecond)}/s`, '', ''],
          ['  HTTP Gatehouse / bare', fmt(httpRatio, 2), '', ''],
        ],
      ),
    );
    return failures > 0 ? 1 : 0;
  } finally {
    await cleanup.runAll();
    process.off('SIGINT', onSignal);
  }
}

runMain(main);
