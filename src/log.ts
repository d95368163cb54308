import { Writable } from 'node:stream';

import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Field names that must never carry a value into a log line. The proxy does
 * not log these on purpose; redaction is the second line of defence.
 */
const REDACT = [
  'token',
  'password',
  'secret',
  'authorization',
  '*.token',
  '*.password',
  '*.secret',
  '*.authorization',
];

/**
 * The process logger: pino JSON lines on stdout, or one readable line per
 * event for a developer's terminal ("text").
 */
export function createLogger(level: string, format: 'json' | 'text'): Logger {
  const options = {
    level,
    base: undefined,
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (format === 'json') return pino(options, pino.destination({ fd: 1, sync: false }));
  return pino(options, textStream());
}

/** Renders pino's JSON as `time level event key=value ... message`. */
function textStream(): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        process.stdout.write(`${renderText(JSON.parse(line) as Record<string, unknown>)}\n`);
      }
      done();
    },
  });
}

function renderText(entry: Record<string, unknown>): string {
  const { time, level, msg, event, ...rest } = entry;
  const clock = typeof time === 'string' ? time.slice(11, 23) : '';
  const fields = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  const label = String(level).toUpperCase().padEnd(5);
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  const parts = [clock, label, text(event), text(msg), fields];
  return parts.filter((s) => s !== '').join(' ');
}
