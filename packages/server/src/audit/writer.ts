import type { Logger } from 'pino';
import { storeUnavailable } from '../store/unavailable.js';
import { inUnitOfWork, outsideUnitOfWork } from '../store/unit-of-work.js';
import { createRepeatFolder } from './repeats.js';
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
  /** Longest wait between two attempts while writes keep failing (the wait doubles from flushMs up to this). */
  maxBackoffMs?: number;
  /** Window within which repeats of an unauthenticated failure are counted instead of written (see repeats.ts). */
  repeatWindowMs?: number;
  /**
   * `durable`: `recordDurable` resolves only once the event's batch is written (group commit:
   * events arriving while a batch is being written go into the next one, so batches grow with
   * load). `async`: it resolves at once and the event is written with the next batch.
   */
  mode?: AuditMode;
  clock?: () => number;
}

export type AuditMode = 'durable' | 'async';

interface Pending {
  event: AuditEvent;
  /** Settles a durable caller; absent for fire-and-forget events. */
  waiter?: { resolve(): void; reject(error: unknown): void };
}

/**
 * Audit events are written in batches off the request path: `record` only pushes to
 * memory, a timer (or a full batch) writes. A failed write keeps the batch for the next
 * attempt, so a database hiccup delays the trail instead of losing it. While writes fail the
 * writer waits longer between attempts (doubling up to `maxBackoffMs`) instead of trying
 * again for every new event, and says so once per outage, not once per attempt.
 */
export function createAuditWriter({ store, logger, flushMs, maxBatch = 500, maxBuffered = 100_000, maxBackoffMs = 30_000, repeatWindowMs = 60_000, mode = 'durable', clock = Date.now }: AuditWriterOptions) {
  let buffer: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let dropped = 0;
  /** Failed attempts in a row; while > 0 only the backoff timer writes. */
  let failures = 0;
  let failingSince = 0;
  let droppedThisOutage = 0;
  const repeats = createRepeatFolder({ windowMs: repeatWindowMs, clock, emit: (event) => record(event) });
  // Ends windows that saw no new event; a window's counts are written within a sixth of it after it ends.
  const windowTimer = setInterval(() => repeats.tick(), Math.max(10, Math.floor(repeatWindowMs / 6)));
  windowTimer.unref();

  function schedule(delay = flushMs) {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, delay);
    timer.unref();
  }

  function backoffMs(): number {
    return Math.min(maxBackoffMs, Math.max(flushMs, 50) * 2 ** Math.min(failures - 1, 20));
  }

  async function writeOnce(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer.slice(0, maxBatch);
      try {
        await store.append(batch.map((p) => p.event));
        buffer = buffer.slice(batch.length);
        for (const p of batch) p.waiter?.resolve();
      } catch (error) {
        // The events stay for the next attempt; callers waiting for them get an answer now
        // (their request fails closed with 503) instead of waiting out the outage.
        for (const p of batch) {
          p.waiter?.reject(storeUnavailable(error));
          delete p.waiter;
        }
        failures++;
        if (failures === 1) {
          failingSince = clock();
          logger.error({ err: error, pending: buffer.length }, 'audit writes failing: events are kept in memory and retried with backoff');
        }
        schedule(backoffMs());
        return;
      }
      if (failures > 0 || droppedThisOutage > 0) {
        logger.warn({ outageMs: clock() - failingSince, attempts: failures, pending: buffer.length, dropped: droppedThisOutage }, 'audit writes resumed');
        failures = 0;
        droppedThisOutage = 0;
      }
    }
  }

  function flush(): Promise<void> {
    // A window of counted repeats that has ended is written with the rest.
    repeats.tick();
    // A batch holds other requests' events: it never joins the unit of work of the request that started the write.
    const next = (writing ?? Promise.resolve()).then(() => outsideUnitOfWork(writeOnce));
    writing = next.finally(() => {
      if (writing === next) writing = undefined;
    });
    return next;
  }

  function record(event: AuditEvent): void {
    push({ event });
    // While writes fail, the backoff timer alone decides when to try again.
    if (failures > 0) return;
    if (buffer.length >= maxBatch) void flush();
    else schedule();
  }

  function push(pending: Pending): void {
    buffer.push(pending);
    if (buffer.length > maxBuffered) {
      const excess = buffer.length - maxBuffered;
      for (const p of buffer.splice(0, excess)) p.waiter?.reject(storeUnavailable(new Error('audit buffer full')));
      dropped += excess;
      // Once per outage; the total is in the 'audit writes resumed' line.
      if (droppedThisOutage === 0) logger.error({ maxBuffered }, 'audit buffer full: the oldest unwritten events are being dropped');
      droppedThisOutage += excess;
    }
  }

  /** Group commit: a write starts as soon as none is running; what arrives meanwhile waits for the next. */
  let commitQueued = false;
  function commitSoon(): void {
    if (commitQueued) return;
    commitQueued = true;
    // One turn of the event loop gathers the events of requests finishing together.
    setImmediate(() => {
      commitQueued = false;
      void flush();
    });
  }

  function recordDurable(event: AuditEvent): Promise<void> {
    // An admin or CLI change: the event is a row of the change's own transaction, in either mode.
    if (inUnitOfWork()) return store.append([event]);
    if (mode === 'async') {
      record(event);
      return Promise.resolve();
    }
    // Writes are failing: the event is kept for later, but nobody waits the backoff out.
    if (failures > 0) {
      push({ event });
      return Promise.reject(storeUnavailable(new Error('audit writes are failing')));
    }
    return new Promise<void>((resolve, reject) => {
      push({ event, waiter: { resolve, reject } });
      commitSoon();
    });
  }

  return {
    record,
    /**
     * For token issuance, decisions and admin changes: resolves once the event is in the
     * database (GATEHOUSE_AUDIT_MODE=durable), so a response sent after it is never missing
     * from the trail, even after a kill -9; rejects with STORE_UNAVAILABLE when it cannot be
     * written, and the caller answers 503 instead of an unaudited success. Inside a unit of
     * work (an admin or CLI change) the event is written in the change's transaction instead:
     * the two commit together or not at all.
     */
    recordDurable,
    mode,
    /**
     * A failure an unauthenticated caller can cause at will (wrong secret, bad token, wrong
     * password): repeats within a window are counted into one row instead of one row each.
     * Name a client the caller only claimed in `details.claimed_client_id`, never as the actor.
     */
    recordFailure(event: AuditEvent): void {
      repeats.record(event);
    },
    /** Writes everything recorded so far. */
    flush,
    get pending() {
      return buffer.length;
    },
    /** Events dropped since start because the buffer was full. */
    get dropped() {
      return dropped;
    },
    async close(): Promise<void> {
      clearInterval(windowTimer);
      repeats.drain();
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
    },
  };
}

export type AuditWriter = ReturnType<typeof createAuditWriter>;
