import { Writable } from 'node:stream';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * One pino JSON line as a person reads it: time, level, message, then the other fields as
 * key=value (strings bare, the rest as JSON), and an error's stack on the lines below. A line
 * that is not JSON passes unchanged.
 */
export function renderLogLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, pid: _pid, hostname: _hostname, err, ...rest } = entry;
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const fields = Object.entries(rest).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const error = err as { message?: string; stack?: string } | undefined;
  if (error?.message && !error.stack) fields.push(`err=${error.message}`);
  const head = [when, LEVELS[level as number] ?? String(level), typeof msg === 'string' ? msg : '', ...fields].filter((part) => part !== '').join(' ');
  return error?.stack ? `${head}\n${error.stack}` : head;
}

/** A destination for pino that writes rendered lines to `out` (development at a terminal; JSON stays the format everywhere else). */
export function prettyDestination(out: NodeJS.WritableStream = process.stdout): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') out.write(`${renderLogLine(line)}\n`);
      done();
    },
  });
}
