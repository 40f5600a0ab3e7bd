/** A mistake in how a command was called: reported in one line, exit 64. */
export class UsageError extends Error {
  readonly code = 'TICKETD_USAGE';
}

/** JSON on stdout and nothing else, so `--json` output can be piped. */
export function out(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

/** A plain aligned table for people; `--json` is the interface for scripts. */
export function printTable<T extends object>(rows: T[], columns: (keyof T & string)[]): void {
  const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v).replace(/\s+/g, ' ').slice(0, 60));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
  process.stdout.write(line(columns));
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r[c]))));
}
