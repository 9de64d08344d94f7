import type { AuditEvent } from './types.js';

export interface RepeatFolderOptions {
  /** Length of a window: within one, repeats of an event are counted, not written. */
  windowMs: number;
  /** Distinct claimed ids or accounts one address may spread its failures over per window before they are folded together. */
  maxSubjectsPerSource?: number;
  /** Kinds kept in memory per window; beyond, new kinds are folded per address and action. */
  maxKinds?: number;
  clock: () => number;
  /** Where the rows go (the writer's buffer). */
  emit(event: AuditEvent): void;
}

interface Repeat {
  /** The first occurrence, as written. */
  first: AuditEvent;
  /** Occurrences after the first. */
  count: number;
  lastTime: number;
}

/** Stands for the claimed ids and accounts beyond `maxSubjectsPerSource` in one window. */
export const MANY = '*';

/**
 * Failures anyone can cause without credentials (a wrong client secret, a bad admin token, a
 * wrong password) are folded per window: the first occurrence of a kind (tenant, action,
 * address, claimed id, account tried, reason) is written at once; the repeats within the same
 * window become one more row, at the window's end, with `details.repeated` (how many) and
 * `details.first_time`. So a flood costs at most two rows per kind and window, and an attack
 * on one account or client stays visible with its count. An address that spreads its
 * failures over many claimed ids or accounts has the rest folded under target `*` (and
 * `claimed_client_id: "*"`), so memory and rows stay bounded whatever the caller sends.
 */
export function createRepeatFolder({ windowMs, maxSubjectsPerSource = 10, maxKinds = 10_000, clock, emit }: RepeatFolderOptions) {
  let window = Math.floor(clock() / windowMs);
  let repeats = new Map<string, Repeat>();
  let subjectsPerSource = new Map<string, Set<string>>();

  /** Writes the counts of the window that ended and starts a new one. */
  function roll(now = clock()): void {
    const current = Math.floor(now / windowMs);
    if (current === window) return;
    drain();
    window = current;
  }

  function drain(): void {
    for (const { first, count, lastTime } of repeats.values()) {
      if (count === 0) continue;
      emit({ ...first, time: lastTime, details: { ...(first.details ?? {}), repeated: count, first_time: first.time } });
    }
    repeats = new Map();
    subjectsPerSource = new Map();
  }

  return {
    record(event: AuditEvent): void {
      roll();
      const source = `${event.tenantId}\u0000${event.action}\u0000${event.ip ?? ''}`;
      const claimed = typeof event.details?.claimed_client_id === 'string' ? event.details.claimed_client_id : '';
      let subject = `${claimed}\u0000${event.actor ?? ''}\u0000${event.target ?? ''}`;
      let subjects = subjectsPerSource.get(source);
      if (!subjects) subjectsPerSource.set(source, (subjects = new Set()));
      if (!subjects.has(subject)) {
        // One address trying many client ids or accounts, or more kinds than we keep in memory:
        // one folded kind per address and action.
        if (subjects.size >= maxSubjectsPerSource || repeats.size >= maxKinds) {
          subject = MANY;
          event = { ...event, target: MANY, details: { ...event.details, ...(claimed ? { claimed_client_id: MANY } : {}) } };
        } else subjects.add(subject);
      }
      const reason = event.details?.reason ?? event.details?.error ?? '';
      const key = `${source}\u0000${subject}\u0000${typeof reason === 'string' ? reason : JSON.stringify(reason)}`;
      const seen = repeats.get(key);
      if (seen) {
        seen.count++;
        seen.lastTime = event.time;
        return;
      }
      repeats.set(key, { first: event, count: 0, lastTime: event.time });
      emit(event);
    },
    /** Called by the writer's timer: ends the window when its time is up. */
    tick(): void {
      roll();
    },
    /** Writes every pending count now (shutdown). */
    drain,
  };
}
