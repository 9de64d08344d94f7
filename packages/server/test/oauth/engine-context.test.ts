import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { createEngineContextGate } from '../../src/oauth/engine-context.js';

describe('engine context gate', () => {
  it('disables the storage only when the last engine request in flight has closed', () => {
    let disabled = 0;
    const gate = createEngineContextGate({ disable: () => void disabled++ });
    const handled: string[] = [];
    const handle = gate.wrap((req) => void handled.push(String(req.url)));
    const [a, b, c] = [new EventEmitter(), new EventEmitter(), new EventEmitter()];
    handle({ url: 'a' } as IncomingMessage, a as unknown as ServerResponse);
    handle({ url: 'b' } as IncomingMessage, b as unknown as ServerResponse);
    assert.deepEqual([handled, gate.inFlight], [['a', 'b'], 2]);
    a.emit('close');
    assert.equal(disabled, 0, 'b is still in flight and may read its context');
    b.emit('close');
    assert.deepEqual([disabled, gate.inFlight], [1, 0]);
    handle({ url: 'c' } as IncomingMessage, c as unknown as ServerResponse);
    c.emit('finish');
    c.emit('close');
    assert.deepEqual([disabled, gate.inFlight], [2, 0], 'finish and close of one request count once');
  });
});
