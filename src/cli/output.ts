/** A mistake in how a command was called: reported in one line, exit 64. */
export class UsageError extends Error {
  readonly code = 'TICKETD_USAGE';
}

// C0 controls other than tab and newline, DEL and the C1 controls: a
// terminal acts on them (ESC starts a control sequence that can recolour,
// retitle or rewrite the screen, BEL rings, CR overwrites the line), and
// subjects, names and headers are written by whoever sent the mail.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this expression's job
const CONTROL_CHARS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;

const hex = (c: string) => c.charCodeAt(0).toString(16).padStart(2, '0');

/** Text for a terminal: control characters shown escaped (`\x1b`), so they are visible but inert. */
export function terminalText(text: string): string {
  return text.replace(CONTROL_CHARS, (c) => `\\x${hex(c)}`);
}

/** Writes text on stdout with control characters escaped. */
export function print(text: string): void {
  process.stdout.write(terminalText(text));
}

/** Writes text on stderr with control characters escaped. */
export function printErr(text: string): void {
  process.stderr.write(terminalText(text));
}

/**
 * JSON on stdout and nothing else, so `--json` output can be piped.
 * JSON.stringify escapes C0 controls itself; DEL and C1 are escaped here too.
 */
export function out(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2).replace(/[\u007F-\u009F]/g, (c) => `\\u00${hex(c)}`)}\n`);
}

/** A plain aligned table for people; `--json` is the interface for scripts. */
export function printTable<T extends object>(rows: T[], columns: (keyof T & string)[]): void {
  const cell = (v: unknown) => (v === null || v === undefined ? '' : terminalText(String(v).replace(/\s+/g, ' ')).slice(0, 60));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => `${vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd()}\n`;
  process.stdout.write(line(columns));
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r[c]))));
}
