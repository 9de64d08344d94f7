/**
 * Conformance cases Gatehouse does not pass yet, listed so they stay visible (the test fails
 * on any other failure, and on any of these that starts passing). Format:
 * `<file> <assertTrue|assertFalse|assertCaveated|consistency|load>: <assertion>`.
 */
export const KNOWN_FAILURES: string[] = [];

