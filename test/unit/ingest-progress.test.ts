// The progress display used by `quarantine retry --all` (and long first syncs).
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/core/progress.js';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { isTTY, columns: 120, writes, write: (t: string) => writes.push(t) };
}

describe('createProgress', () => {
  it('logs plain lines at the interval and a final line when not on a terminal', () => {
    const stream = sink(false);
    let now = 0;
    const p = createProgress({ label: 'retry', total: 10, stream, lineIntervalMs: 1000, now: () => now });
    for (let i = 0; i < 10; i++) {
      now += 300;
      p.tick();
    }
    p.done();
    p.done();
    expect(stream.writes).toEqual(['retry: 4/10 (40%)\n', 'retry: 8/10 (80%)\n', 'retry: 10/10 done in 3.0 s\n']);
    expect(stream.writes.join('')).not.toContain('\r');
  });

  it('redraws one bar in place on a terminal and ends it with a newline', () => {
    const stream = sink(true);
    let now = 0;
    const p = createProgress({ label: 'retry', total: 4, stream, now: () => now });
    for (let i = 0; i < 4; i++) {
      now += 150;
      p.tick();
    }
    p.done();
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the progress line ends with the terminal's erase-line sequence
    expect(stream.writes[0]).toMatch(/^\rretry \[-{30}\] 0\/4 0%\x1b\[K$/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: as above
    expect(stream.writes.at(-2)).toMatch(/^\rretry \[#{30}\] 4\/4 100%\x1b\[K$/);
    expect(stream.writes.at(-1)).toBe('\n');
    expect(stream.writes.slice(0, -1).every((w) => w.startsWith('\r') && !w.includes('\n'))).toBe(true);
  });

  it('never counts past the total and shows an empty run as complete', () => {
    const stream = sink(false);
    const p = createProgress({ label: 'retry', total: 0, stream, now: () => 0 });
    p.tick(5);
    p.done();
    expect(stream.writes).toEqual(['retry: 0/0 done in 0.0 s\n']);
  });
});
