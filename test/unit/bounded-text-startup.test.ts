// `ticketd ingest` starts once per message. Building a grapheme segmenter
// loads ICU's break data (tens of milliseconds), so bounded-text builds one
// only when a text actually has to be cut, never on import.

import { afterEach, describe, expect, it, vi } from 'vitest';

const setSegmenter = (value: typeof Intl.Segmenter) =>
  Object.defineProperty(Intl, 'Segmenter', { value, configurable: true, writable: true });

const Segmenter = Intl.Segmenter;
afterEach(() => {
  setSegmenter(Segmenter);
});

describe('boundedText', () => {
  it('builds no segmenter on import nor for text within bounds, and still cuts at grapheme boundaries', async () => {
    let made = 0;
    setSegmenter(
      new Proxy(Segmenter, {
        construct(target, args, newTarget) {
          made++;
          return Reflect.construct(target, args, newTarget);
        },
      }),
    );
    vi.resetModules();
    const { boundedText } = await import('../../src/core/bounded-text.js');
    expect(made).toBe(0);

    expect(boundedText('Printer jams', 20)).toBe('Printer jams');
    expect(made).toBe(0);

    // A family emoji is one grapheme of several code points: never split.
    expect(boundedText('ab👨‍👩‍👧cdef', 4)).toBe('ab👨‍👩‍👧…');
    expect(made).toBe(1);
    boundedText('x'.repeat(50), 10);
    expect(made).toBe(1);
  });
});
