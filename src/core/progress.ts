/** Where progress goes; `isTTY` decides between a redrawn bar and plain lines. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface ProgressOptions {
  label: string;
  total: number;
  stream?: ProgressStream;
  /** Milliseconds between plain lines when the stream is not a terminal (journal, pipe, file). */
  lineIntervalMs?: number;
  now?: () => number;
}

export interface Progress {
  tick(n?: number): void;
  /** Ends the bar (or logs the last line); call once, also after a failure. */
  done(): void;
}

const BAR_WIDTH = 30;
const REDRAW_MS = 100;

/**
 * A bar redrawn in place on a terminal; elsewhere one plain line every
 * `lineIntervalMs`, because carriage returns make a journal or log file unreadable.
 */
export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  const now = o.now ?? Date.now;
  const tty = stream.isTTY === true;
  const interval = tty ? REDRAW_MS : (o.lineIntervalMs ?? 5_000);
  const started = now();
  let count = 0;
  let lastShown = started;
  let finished = false;

  const percent = () => (o.total === 0 ? 100 : Math.floor((count / o.total) * 100));
  const show = () => {
    if (tty) {
      const filled = o.total === 0 ? BAR_WIDTH : Math.round((count / o.total) * BAR_WIDTH);
      const line = `${o.label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${count}/${o.total} ${percent()}%`;
      stream.write(`\r${line.slice(0, Math.max(20, (stream.columns ?? 80) - 1))}\x1b[K`);
    } else {
      stream.write(`${o.label}: ${count}/${o.total} (${percent()}%)\n`);
    }
  };

  if (tty) show();
  return {
    tick(n = 1) {
      count = Math.min(o.total, count + n);
      const at = now();
      if (at - lastShown >= interval) {
        lastShown = at;
        show();
      }
    },
    done() {
      if (finished) return;
      finished = true;
      const seconds = ((now() - started) / 1000).toFixed(1);
      if (tty) {
        show();
        stream.write('\n');
      } else {
        stream.write(`${o.label}: ${count}/${o.total} done in ${seconds} s\n`);
      }
    },
  };
}
