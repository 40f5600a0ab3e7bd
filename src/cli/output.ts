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

/** Widest cell of a table, in characters as a reader counts them. */
const CELL_GRAPHEMES = 60;

/** Made on the first table: building one loads ICU's break data, which `ingest` and other table-less commands skip. */
let graphemes: Intl.Segmenter | null = null;

/**
 * The first `max` user-perceived characters of `text` and how many it kept:
 * cut between grapheme clusters, so an emoji (a surrogate pair, a flag, a
 * family joined by ZWJ) or a letter with its combining accent is kept whole
 * or dropped whole, never halved into bytes a terminal shows as garbage.
 */
export function cutGraphemes(text: string, max: number): { text: string; length: number } {
  let length = 0;
  let end = 0;
  graphemes ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  for (const { segment, index } of graphemes.segment(text)) {
    if (length === max) return { text: text.slice(0, index), length };
    length++;
    end = index + segment.length;
  }
  return { text: text.slice(0, end), length };
}

/** A plain aligned table for people; `--json` is the interface for scripts. */
export function printTable<T extends object>(rows: T[], columns: (keyof T & string)[]): void {
  const cell = (v: unknown) =>
    v === null || v === undefined
      ? { text: '', length: 0 }
      : cutGraphemes(terminalText(String(v).replace(/\s+/g, ' ')), CELL_GRAPHEMES);
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: { text: string; length: number }[]) =>
    `${vals
      .map((v, i) => v.text + ' '.repeat(widths[i]! - v.length))
      .join('  ')
      .trimEnd()}\n`;
  process.stdout.write(line(columns.map((c) => ({ text: c, length: c.length }))));
  for (const row of cells) process.stdout.write(line(row));
}
