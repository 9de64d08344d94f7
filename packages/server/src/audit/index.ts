export { createAuditWriter, type AuditWriter } from './writer.js';
export * from './types.js';
