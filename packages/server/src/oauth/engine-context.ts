import type { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
// oidc-provider keeps each request's Koa context in this one AsyncLocalStorage (not part of
// its documented API, so it is reached by path; the token tests fail if it ever moves).
import engineStorage from 'oidc-provider/lib/helpers/als.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Runs oidc-provider requests with its AsyncLocalStorage enabled only while one is in flight.
 *
 * On Node 20 an enabled AsyncLocalStorage runs a hook on every promise the process creates,
 * and stays enabled once `run()` has been called: a single token request would tax every
 * later permission check and admin call (measured: 20–30 % more CPU per HTTP permission
 * check). When the last engine request has finished, nothing can still read the store, so
 * it is disabled; the next engine request's `run()` enables it again.
 */
export function createEngineContextGate(storage: Pick<AsyncLocalStorage<unknown>, 'disable'> = engineStorage) {
  let inFlight = 0;
  return {
    wrap(handle: Handler): Handler {
      return (req, res) => {
        inFlight++;
        let done = false;
        // 'finish' when the response is sent, 'close' also when the client went away first
        // (and light-my-request's injected responses only finish): whichever comes first.
        const end = () => {
          if (done) return;
          done = true;
          if (--inFlight === 0) storage.disable();
        };
        res.once('finish', end);
        res.once('close', end);
        handle(req, res);
      };
    },
    get inFlight() {
      return inFlight;
    },
  };
}

/** The process's one gate: every provider pool (every tenant, every core in the process) shares the one storage. */
export const engineContext = createEngineContextGate();
