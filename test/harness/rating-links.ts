// The one-click rating links of a resolution mail as the customer's client
// shows them: per score, the URL in the text part and the link in the HTML
// part, read the way a mail client reads them.

import { Parser } from 'htmlparser2';
import type { CapturedMessage } from './smtp-capture.js';

const SCORE_LINK = /(https?:\/\/[^\s"<>]+\/t\/[\w-]{43})\?score=([1-5])#rate/g;

/** `[score, status page, whole link]` for each score link, in the order the part lists them. */
function linksIn(part: string): [number, string, string][] {
  return [...part.matchAll(SCORE_LINK)].map((m) => [Number(m[2]), m[1]!, m[0]]);
}

export interface RatingLinks {
  /** The scores linked, in order (1 to 5 in both parts when the mail invites a rating). */
  textScores: number[];
  htmlScores: number[];
  /** The status pages the links lead to; one page for a mail about one ticket. */
  pages: string[];
  /** The link that chooses `score`, as the text part gives it. */
  forScore(score: number): string;
}

export function ratingLinks(mail: CapturedMessage): RatingLinks {
  const text = linksIn(mail.parsed.text ?? '');
  const html = linksIn(hrefsOf(typeof mail.parsed.html === 'string' ? mail.parsed.html : '').join('\n'));
  return {
    textScores: text.map((l) => l[0]),
    htmlScores: html.map((l) => l[0]),
    pages: [...new Set([...text, ...html].map((l) => l[1]))],
    forScore: (score) => text.find((l) => l[0] === score)?.[2] ?? '',
  };
}

/** The links of an HTML part, decoded as a browser decodes them (handlebars writes `=` as `&#x3D;`). */
function hrefsOf(html: string): string[] {
  const out: string[] = [];
  const parser = new Parser({
    onopentag(name, attrs) {
      if (name === 'a' && attrs.href !== undefined) out.push(attrs.href);
    },
  });
  parser.write(html);
  parser.end();
  return out;
}
