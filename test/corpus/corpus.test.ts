// Real-world bounces, auto-replies, feedback reports and odd-charset mail
// from other mail projects' public test suites, run through the real parse
// and classify stages. The files are not kept in this repository:
// test/corpus/collect.sh copies them (manifest.tsv names each file's source,
// commit and licence) and TICKETD_CORPUS_DIR points here to them. Without it
// the test is skipped and says so.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classify } from '../../src/classify/classify.js';
import type { Classification, ParsedMessage } from '../../src/core/types.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import { stripEnvelopeLine } from '../../src/sources/pipe/ingest.js';

type CorpusClass = 'bounce' | 'auto-reply' | 'arf' | 'person' | 'charset';
const MACHINE: ReadonlySet<CorpusClass> = new Set(['bounce', 'auto-reply', 'arf']);

interface Entry {
  file: string;
  source: string;
  cls: CorpusClass;
}

function manifest(): Entry[] {
  const lines = readFileSync(join(import.meta.dirname, 'manifest.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1);
  return lines.map((line) => {
    const [file = '', source = '', , , , cls = ''] = line.split('\t');
    return { file, source, cls: cls as CorpusClass };
  });
}

/** Whether the stages saw the mail for what the manifest says it is. */
function recognised(cls: CorpusClass, msg: ParsedMessage, c: Classification): boolean {
  switch (cls) {
    case 'bounce':
      return c.kind === 'bounce';
    case 'auto-reply':
      return c.kind === 'auto-reply' || c.kind === 'out-of-office';
    case 'arf':
      return c.kind !== 'request' && !c.mayAutoReply;
    case 'person':
      return c.kind === 'request' && c.mayAutoReply;
    case 'charset':
      // Neither replacement characters nor UTF-8 read as Latin-1 ("FrÃ¶sche").
      return !/\uFFFD|[ÃÂ][\u0080-\u00BF]/.test(`${msg.subject}${msg.from?.name ?? ''}`);
  }
}

const corpusDir = process.env.TICKETD_CORPUS_DIR;
const present = corpusDir !== undefined && existsSync(corpusDir);

describe('real-world mail corpus', () => {
  if (!present) {
    const why = `corpus test skipped: TICKETD_CORPUS_DIR ${corpusDir === undefined ? 'is not set' : `(${corpusDir}) does not exist`}; fill a directory with test/corpus/collect.sh`;
    it('recognises machine mail and never acknowledges it', (test) => {
      process.stdout.write(`${why}\n`);
      test.skip(why);
    });
    return;
  }
  const attachments = mkdtempSync(join(tmpdir(), 'ticketd-corpus-'));
  afterAll(() => rmSync(attachments, { recursive: true, force: true }));
  const ctx = { ownAddresses: ['support@support.example.com'], ownMessageIdDomains: ['support.example.com'] };

  it('recognises machine mail and never acknowledges it', { timeout: 600_000 }, async () => {
    const totals = new Map<CorpusClass, { n: number; ok: number; misses: string[] }>();
    const acknowledged: string[] = [];
    let quarantined = 0;
    let bounceRecipients = 0;
    let absent = 0;
    for (const entry of manifest()) {
      const path = join(corpusDir!, entry.file);
      if (!existsSync(path)) {
        absent++;
        continue;
      }
      const total = totals.get(entry.cls) ?? { n: 0, ok: 0, misses: [] };
      totals.set(entry.cls, total);
      total.n++;
      // As `ticketd ingest` reads a message an MTA pipes to it.
      const raw = stripEnvelopeLine(readFileSync(path));
      const parsed = await parseMessage(raw, { attachmentsDir: attachments, maxAttachmentBytes: 1024 * 1024 });
      if (!parsed.ok) {
        // A quarantined mail is never answered; it counts as not recognised.
        quarantined++;
        total.misses.push(`${entry.file} (${parsed.reason})`);
        continue;
      }
      const c = classify(parsed.message, ctx);
      if (recognised(entry.cls, parsed.message, c)) total.ok++;
      else
        total.misses.push(`${entry.file} (${c.kind}, ${c.suppressReason ?? 'answered'}: ${parsed.message.subject.slice(0, 60)})`);
      if (c.kind === 'bounce' && (c.bounce?.recipients.length ?? 0) > 0) bounceRecipients++;
      if (MACHINE.has(entry.cls) && c.mayAutoReply)
        acknowledged.push(`${entry.file} (${entry.cls}): ${parsed.message.subject.slice(0, 60)}`);
    }

    const percent = (ok: number, n: number) => (n === 0 ? '-' : `${((100 * ok) / n).toFixed(1)}%`);
    const plural: Record<CorpusClass, string> = {
      bounce: 'bounces',
      'auto-reply': 'auto-replies',
      arf: 'feedback reports',
      person: 'mails from people',
      charset: 'raw 8-bit legacy-charset mails',
    };
    const lines = [...totals].map(([cls, t]) => {
      const verb = cls === 'charset' ? 'decoded without replacement characters' : cls === 'person' ? 'answered' : 'recognised';
      return `corpus: ${t.n} ${plural[cls]}, ${t.ok} ${verb} (${percent(t.ok, t.n)})`;
    });
    lines.push(`corpus: bounces with failed recipients read: ${bounceRecipients}`);
    lines.push(`corpus: quarantined (parse failed): ${quarantined}`);
    if (absent > 0) lines.push(`corpus: files in the manifest but not in ${corpusDir}: ${absent}`);
    lines.push(`acknowledged machine mail: ${acknowledged.length}`);
    for (const [cls, t] of totals) for (const miss of t.misses) lines.push(`  not recognised as ${cls}: ${miss}`);
    for (const ack of acknowledged) lines.push(`  acknowledged: ${ack}`);
    process.stdout.write(`${lines.join('\n')}\n`);

    expect(acknowledged).toEqual([]);
  });
});
