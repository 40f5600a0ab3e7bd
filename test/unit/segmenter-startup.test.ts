// `ticketd ingest` starts once per message. Building a grapheme segmenter
// loads ICU's break data (tens of milliseconds), so bounded-text builds one
// only when a text actually has to be cut, never on import; so does the
// command line's table output, loaded by every command.

import { afterEach, describe, expect, it, vi } from 'vitest';

const setSegmenter = (value: typeof Intl.Segmenter) =>
  Object.defineProperty(Intl, 'Segmenter', { value, configurable: true, writable: true });

const Segmenter = Intl.Segmenter;
afterEach(() => {
  setSegmenter(Segmenter);
});

/** Counts the segmenters built from now on. */
function countSegmenters(): { made: number } {
  const count = { made: 0 };
  setSegmenter(
    new Proxy(Segmenter, {
      construct(target, args, newTarget) {
        count.made++;
        return Reflect.construct(target, args, newTarget);
      },
    }),
  );
  vi.resetModules();
  return count;
}

describe('boundedText', () => {
  it('builds no segmenter on import nor for text within bounds, and still cuts at grapheme boundaries', async () => {
    const count = countSegmenters();
    const { boundedText } = await import('../../src/core/bounded-text.js');
    expect(count.made).toBe(0);

    expect(boundedText('Printer jams', 20)).toBe('Printer jams');
    expect(count.made).toBe(0);

    // A family emoji is one grapheme of several code points: never split.
    expect(boundedText('ab👨‍👩‍👧cdef', 4)).toBe('ab👨‍👩‍👧…');
    expect(count.made).toBe(1);
    boundedText('x'.repeat(50), 10);
    expect(count.made).toBe(1);
  });
});

describe('the command line output', () => {
  it('builds no segmenter on import, and a table still cuts a long cell between graphemes', async () => {
    const count = countSegmenters();
    const { cutGraphemes } = await import('../../src/cli/output.js');
    expect(count.made).toBe(0);
    expect(cutGraphemes('ab👨‍👩‍👧cd', 3)).toEqual({ text: 'ab👨‍👩‍👧', length: 3 });
    expect(count.made).toBe(1);
  });
});
