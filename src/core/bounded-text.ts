const ELLIPSIS = '…';
/**
 * Made on the first text that needs cutting: building a segmenter loads ICU's
 * break data, a noticeable part of a short-lived `ticketd ingest` that never cuts.
 */
let graphemes: Intl.Segmenter | null = null;

/**
 * `text` cut to at most `max` user-perceived characters (grapheme clusters,
 * so no emoji, flag or accented letter is split), with an ellipsis when cut.
 * Reads only as far as needed, so a megabyte of input costs no more than `max`.
 */
export function boundedText(text: string, max: number): string {
  // A grapheme is at least one UTF-16 unit: shorter text cannot need cutting.
  if (text.length <= max) return text;
  graphemes ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  let count = 0;
  for (const { index } of graphemes.segment(text)) {
    if (count === max - 1) return `${text.slice(0, index).trimEnd()}${ELLIPSIS}`;
    count++;
  }
  return text;
}
