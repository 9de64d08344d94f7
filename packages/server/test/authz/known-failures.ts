/**
 * Conformance cases Gatehouse does not pass yet, listed so they stay visible (the test fails
 * on any other failure, and on any of these that starts passing). Format:
 * `<file> <assertTrue|assertFalse|assertCaveated|consistency|load>: <assertion>`.
 */
export const KNOWN_FAILURES: string[] = [];

/**
 * Schemas of the SpiceDB parser corpus that SpiceDB parses but Gatehouse refuses with
 * AUTHZ_SCHEMA_UNSUPPORTED: nested arrows (`a->b->c`, which SpiceDB's own compiler then
 * refuses too) and the `self` expression, which the permission model does not have yet.
 */
export const KNOWN_SCHEMA_FAILURES: string[] = ['arrow.zed', 'arrowops.zed', 'use_self.zed'];
