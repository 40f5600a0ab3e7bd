import { compile } from 'html-to-text';
import { Parser } from 'htmlparser2';

/**
 * HTML taken into account, in characters. The body kept is at most 200,000
 * characters of text, which even markup-heavy newsletters reach well within
 * this; beyond it a 15 MB table only costs memory (its DOM took ~1 GB).
 */
export const MAX_HTML_CHARS = 1024 * 1024;

/**
 * Deepest element nesting converted. Real mail, tables in tables and a long
 * chain of quoted forwards included, stays far below; htmlparser2 keeps its
 * open elements in an array it shifts and unshifts, so each level makes every
 * later tag dearer (200,000 nested `<div>` took over a minute), and
 * html-to-text's recursive walk overflows the stack a few thousand levels down.
 */
export const MAX_HTML_DEPTH = 256;

/**
 * Elements converted in all. A long newsletter has a few thousand; the
 * conversion costs some microseconds per element and more the deeper it
 * sits, so a megabyte of tiny nested blocks took seconds.
 */
export const MAX_HTML_ELEMENTS = 10_000;

/**
 * Siblings converted per element: a table with more rows than this is cut
 * (html-to-text marks the cut with "..."); its layout cost grows with rows.
 */
const MAX_CHILD_NODES = 10_000;

// Compiled once: building the selector decision trees costs more than
// converting a short mail.
const converter = compile({
  wordwrap: false,
  selectors: [
    { selector: 'img', format: 'skip' },
    { selector: 'a', options: { ignoreHref: true } },
  ],
  limits: { maxInputLength: MAX_HTML_CHARS, maxDepth: MAX_HTML_DEPTH, maxChildNodes: MAX_CHILD_NODES, ellipsis: '...' },
});

class OverLimit extends Error {}

/**
 * The part of `html` before its nesting first goes deeper than
 * MAX_HTML_DEPTH or its element count passes MAX_HTML_ELEMENTS, found in one
 * pass of the same parser html-to-text uses (with no tree built). What lies
 * beyond is no mail a person wrote.
 */
function withinLimits(html: string): string {
  let depth = 0;
  let elements = 0;
  const parser: Parser = new Parser({
    // The parser reports every close, implied ones included, so this is the
    // length of its stack of open elements.
    onopentag() {
      depth += 1;
      elements += 1;
      if (depth > MAX_HTML_DEPTH || elements > MAX_HTML_ELEMENTS) throw new OverLimit();
    },
    onclosetag() {
      depth -= 1;
    },
  });
  try {
    parser.end(html);
    return html;
  } catch (err) {
    if (err instanceof OverLimit) return html.slice(0, parser.startIndex);
    throw err;
  }
}

/** Plain text of an HTML body, bounded in input size, elements, nesting depth and siblings per element. */
export function htmlToText(html: string): string {
  const bounded = html.length > MAX_HTML_CHARS ? html.slice(0, MAX_HTML_CHARS) : html;
  return converter(withinLimits(bounded));
}
