import type { Logger } from 'pino';
import type { AuditEvent, AuditStore } from './types.js';

export interface AuditWriterOptions {
  store: AuditStore;
  logger: Logger;
  /** Longest wait before a batch is written. */
  flushMs: number;
  /** A batch this large is written at once. */
  maxBatch?: number;
  /** Beyond this many unwritten events (database down), the oldest are dropped and counted. */
  maxBuffered?: number;
}

/**
 * Audit events are written in batches off the request path: `record` only pushes to
 * memory, a timer (or a full batch) writes. A failed write keeps the batch for the next
 * attempt, so a database hiccup delays the trail instead of losing it.
 */
export function createAuditWriter({ store, logger, flushMs, maxBatch = 500, maxBuffered = 100_000 }: AuditWriterOptions) {
  let buffer: AuditEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let dropped = 0;

  function schedule() {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, flushMs);
    timer.unref();
  }

  async function writeOnce(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer.slice(0, maxBatch);
      try {
        await store.append(batch);
        buffer = buffer.slice(batch.length);
      } catch (error) {
        logger.error({ err: error, pending: buffer.length }, 'audit batch write failed; will retry');
        schedule();
        return;
      }
    }
  }

  function flush(): Promise<void> {
    const next = (writing ?? Promise.resolve()).then(writeOnce);
    writing = next.finally(() => {
      if (writing === next) writing = undefined;
    });
    return next;
  }

  return {
    record(event: AuditEvent): void {
      buffer.push(event);
      if (buffer.length > maxBuffered) {
        const excess = buffer.length - maxBuffered;
        buffer.splice(0, excess);
        dropped += excess;
        logger.error({ dropped }, 'audit buffer overflow: oldest events dropped');
      }
      if (buffer.length >= maxBatch) void flush();
      else schedule();
    },
    /** Writes everything recorded so far. */
    flush,
    get pending() {
      return buffer.length;
    },
    async close(): Promise<void> {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
    },
  };
}

export type AuditWriter = ReturnType<typeof createAuditWriter>;
