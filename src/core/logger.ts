import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;

// Any field that could carry a credential is censored wherever it appears,
// so a config object logged by mistake still leaks nothing.
const REDACT = [
  'pass',
  'password',
  'accessToken',
  'token',
  '*.pass',
  '*.password',
  '*.accessToken',
  '*.token',
  '*.*.pass',
  '*.*.password',
  'auth',
  '*.auth',
  '*.*.auth',
];

/** JSON lines on stdout (or `dest`); every event carries a stable `code`. */
export function createLogger(opts: { level?: string; dest?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.TICKETD_LOG_LEVEL ?? 'info',
      base: { svc: 'ticketd' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.dest ?? pino.destination({ fd: 1, sync: true }),
  );
}

/** A logger that drops everything, for unit tests and one-shot CLI reads. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
