import type { FastifyRequest, onRequestHookHandler } from 'fastify';
import { Type } from 'typebox';
import type { AuditAction } from '../audit/index.js';
import type { Core } from '../core.js';

export const ErrorBody = Type.Object({ code: Type.String(), message: Type.String(), details: Type.Object({}, { additionalProperties: true }) });
export const TenantParams = Type.Object({ tenant: Type.String({ maxLength: 63 }) });
export const Scope = Type.String({ minLength: 1, maxLength: 128 });
export const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
export const iso = (ms: number) => new Date(ms).toISOString();

/** What every admin route module gets from the plugin (routes.ts). */
export interface AdminRouteDeps {
  core: Core;
  /** The scope checks, run in onRequest: before the body is read. */
  guard: Record<'read' | 'write' | 'clientsRead' | 'clientsWrite' | 'auditRead', onRequestHookHandler>;
  /** Records a change's event, in the change's own transaction (atomic.ts). */
  audit(request: FastifyRequest, tenantId: string, action: AuditAction, target: string, details?: Record<string, unknown>): Promise<void>;
}
