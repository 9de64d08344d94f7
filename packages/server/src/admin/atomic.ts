import type { FastifyInstance, RouteHandlerMethod } from 'fastify';
import type { Core } from '../core.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * False for a route that changes nothing though it is not a GET (a check, a lookup, a read
     * with a body), or that commits in parts of its own (a bulk import): it runs outside a
     * unit of work.
     */
    transaction?: boolean;
  }
}

/**
 * Every admin route registered after this that changes something (any method but GET and
 * HEAD, unless its config says `transaction: false`) runs as one unit of work: its writes, in
 * whichever services and repositories, and its audit event commit together or not at all.
 * A change the database holds is never missing from the trail, even after a kill -9 between
 * the two, and a change whose event cannot be written does not happen.
 *
 * The answer leaves only after the commit: a handler that answers with `reply.send` inside
 * the unit is held until the unit has committed, and replaced by the error if it does not.
 */
export function changesAtomically(app: FastifyInstance, atomically: Core['atomically']): void {
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    if (methods.every((m) => m === 'GET' || m === 'HEAD') || route.config?.transaction === false) return;
    const handler = route.handler as RouteHandlerMethod;
    route.handler = async function (this: FastifyInstance, request, reply) {
      let held: { payload: unknown } | undefined;
      // Own properties shadow Reply.prototype's for the length of the unit: `send` holds the
      // answer, and the reply stops being a thenable (an async handler returning `reply`
      // would otherwise wait for a response that is held until it returns).
      const holding = reply as unknown as Partial<Record<'send' | 'then', unknown>>;
      holding.send = (payload?: unknown) => {
        held = { payload };
        return reply;
      };
      holding.then = undefined;
      let result: unknown;
      try {
        result = await atomically(async () => handler.call(this, request, reply));
      } finally {
        delete holding.send;
        delete holding.then;
      }
      if (!held) return result;
      return reply.send(held.payload);
    };
  });
}
