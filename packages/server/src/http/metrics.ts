import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per server instance (no global default registry), exposed at /metrics. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  return {
    registry,
    tokensIssued: new Counter({
      name: 'gatehouse_tokens_issued_total',
      help: 'Access tokens issued, by grant type.',
      labelNames: ['grant_type'] as const,
      registers: [registry],
    }),
    tokenErrors: new Counter({
      name: 'gatehouse_token_errors_total',
      help: 'Token requests refused, by OAuth error code.',
      labelNames: ['error'] as const,
      registers: [registry],
    }),
    tokenDuration: new Histogram({
      name: 'gatehouse_token_request_duration_seconds',
      help: 'Time to answer a token endpoint request.',
      labelNames: ['status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
