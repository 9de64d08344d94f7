import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createAuditWriter, type AuditEvent, type AuditStore } from '../../src/audit/index.js';

function memoryStore(failures = 0) {
  const batches: AuditEvent[][] = [];
  let remainingFailures = failures;
  const attempts = { count: 0 };
  const store: AuditStore = {
    async append(events) {
      attempts.count++;
      if (remainingFailures-- > 0) throw new Error('database unavailable');
      batches.push([...events]);
    },
    async query() {
      return [];
    },
    async prune() {
      return 0;
    },
  };
  return { store, batches, attempts };
}

const event = (n: number): AuditEvent => ({ tenantId: 't', time: n, action: 'token.issued', result: 'success', actor: `c${n}` });
const logger = pino({ level: 'silent' });

describe('audit writer', () => {
  it('does not write on the request path: record only buffers', () => {
    const { store, batches } = memoryStore();
    const writer = createAuditWriter({ store, logger, flushMs: 60_000 });
    writer.record(event(1));
    assert.equal(batches.length, 0);
    assert.equal(writer.pending, 1);
  });

  it('writes everything recorded in batches on flush, in order', async () => {
    const { store, batches } = memoryStore();
    const writer = createAuditWriter({ store, logger, flushMs: 60_000, maxBatch: 3 });
    for (let i = 0; i < 7; i++) writer.record(event(i));
    await writer.flush();
    assert.deepEqual(batches.map((b) => b.length), [3, 3, 1]);
    assert.deepEqual(batches.flat().map((e) => e.time), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(writer.pending, 0);
  });

  it('keeps a failed batch and writes it on the next attempt', async () => {
    const { store, batches } = memoryStore(1);
    const writer = createAuditWriter({ store, logger, flushMs: 60_000 });
    writer.record(event(1));
    await writer.flush();
    assert.equal(batches.length, 0);
    assert.equal(writer.pending, 1);
    await writer.close();
    assert.equal(batches.flat().length, 1);
  });

  it('bounds memory when the database stays down, dropping the oldest', async () => {
    const { store } = memoryStore(Infinity);
    const writer = createAuditWriter({ store, logger, flushMs: 60_000, maxBatch: 1000, maxBuffered: 5 });
    for (let i = 0; i < 8; i++) writer.record(event(i));
    assert.equal(writer.pending, 5);
  });

  it('backs off while writes fail: new events neither trigger attempts nor log lines', async () => {
    const { store, attempts } = memoryStore(Infinity);
    const messages: string[] = [];
    const capture = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (messages.push(JSON.parse(chunk.toString()).msg as string), done()) }));
    const writer = createAuditWriter({ store, logger: capture, flushMs: 60_000, maxBatch: 2 });
    writer.record(event(0));
    await writer.flush();
    assert.equal(attempts.count, 1);
    // Each of these fills a batch, which would start a write at once if the database were up.
    for (let i = 1; i <= 50; i++) writer.record(event(i));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(attempts.count, 1);
    assert.equal(writer.pending, 51);
    assert.deepEqual(messages, ['audit writes failing: events are kept in memory and retried with backoff']);
  });

  it('says once that writes resumed, and writes what waited', async () => {
    const { store, batches } = memoryStore(2);
    const messages: string[] = [];
    const capture = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (messages.push(JSON.parse(chunk.toString()).msg as string), done()) }));
    const writer = createAuditWriter({ store, logger: capture, flushMs: 60_000 });
    writer.record(event(1));
    await writer.flush();
    await writer.flush();
    await writer.flush();
    assert.equal(batches.flat().length, 1);
    assert.deepEqual(messages, ['audit writes failing: events are kept in memory and retried with backoff', 'audit writes resumed']);
    await writer.close();
  });
});
