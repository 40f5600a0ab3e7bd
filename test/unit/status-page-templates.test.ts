import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TemplateProblem } from '../../src/compose/template-registry.js';
import { TICKET_STATUSES } from '../../src/core/types.js';
import { WebPages, type WebPagesLoadResult } from '../../src/web/page-templates.js';
import { sampleStatusViews, type StatusView } from '../../src/web/status-page.js';

const SHIPPED = join(import.meta.dirname, '..', '..', 'templates', 'web');

function shipped(): WebPages {
  const loaded = WebPages.load(SHIPPED);
  if (!loaded.ok) throw new Error(`shipped web pages refused: ${JSON.stringify(loaded.errors, null, 2)}`);
  return loaded.pages;
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The shipped pages with `files` (relative path -> content, null to delete) on top. */
function pagesWith(files: Record<string, string | null>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-web-'));
  dirs.push(dir);
  cpSync(SHIPPED, dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    if (content === null) rmSync(join(dir, rel));
    else {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), content);
    }
  }
  return dir;
}

function refused(result: WebPagesLoadResult): TemplateProblem[] {
  if (result.ok) throw new Error('expected the pages to be refused');
  return result.errors;
}

function view(over: Partial<StatusView> = {}): StatusView {
  return { ...sampleStatusViews()[0]!, ...over };
}

describe('shipped web pages', () => {
  it('load, with a German status page', () => {
    expect(shipped().languages).toEqual(['de']);
  });

  it('say where the ticket stands in plain words, per language', () => {
    const pages = shipped();
    const words: Record<string, [string, string]> = {
      open: ['We are working on it', 'Wir arbeiten daran'],
      pending: ['Waiting for your reply', 'Wir warten auf Ihre Antwort'],
      'on-hold': ['On hold', 'Angehalten'],
      resolved: ['Resolved', 'Gelöst'],
      closed: ['Closed', 'Abgeschlossen'],
    };
    for (const status of TICKET_STATUSES) {
      const [en, de] = words[status]!;
      expect(pages.render('status', view({ status }), null)).toContain(`</span>${en}</p>`);
      expect(pages.render('status', view({ status }), 'de')).toContain(`</span>${de}</p>`);
    }
  });

  it('show the on-hold reason, the promise and the queue in words', () => {
    const html = shipped().render('status', view({ status: 'on-hold', onHoldReason: 'waiting for a spare part' }), null);
    expect(html).toContain('Reason: <span class="user-text">waiting for a spare part</span>');
    expect(html).toContain('We aim to reply by <time datetime="2025-03-03T09:41:00.000Z">');
    expect(html).toContain('12 open requests are ahead of yours.');
    expect(shipped().render('status', view({ queue: { ahead: 1 } }), null)).toContain('1 open request is ahead of yours.');
    expect(shipped().render('status', view({ queue: { ahead: 0 } }), null)).toContain('Yours is the next request in line.');
    expect(shipped().render('status', view({ promise: null, queue: null, hasNextSteps: false }), null)).not.toContain(
      'What happens next',
    );
  });

  it('tell the customer how to add information: the address and the reference to quote', () => {
    const html = shipped().render('status', view(), null);
    expect(html).toContain('Reply to the acknowledgement email');
    expect(html).toContain('<a href="mailto:support@example.com?subject&#x3D;%5BACME-7K3QH9%5D">support@example.com</a>');
    expect(html).toContain('<span class="ref">[ACME-7K3QH9]</span> in the subject');
  });

  it('contain no script and no external resource', () => {
    const pages = shipped();
    for (const html of [
      pages.render('status', view(), null),
      pages.render('status', view(), 'de'),
      pages.render('not-found'),
      pages.render('too-many-requests'),
    ]) {
      expect(html).not.toMatch(/<script|\son\w+=|javascript:/i);
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
      expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    }
  });

  it('escape every field that came from an email', () => {
    const hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'`=&';
    const html = shipped().render(
      'status',
      view({
        subject: hostile,
        requesterName: hostile,
        onHoldReason: hostile,
        timeline: [
          { kind: 'handoff', at: view().receivedAt, team: hostile },
          {
            kind: 'message',
            at: view().receivedAt,
            fromUs: false,
            fromRequester: false,
            from: hostile,
            text: hostile,
            shortened: false,
            attachments: [hostile],
          },
        ],
      }),
      null,
    );
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    const escaped =
      '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src&#x3D;x onerror&#x3D;alert(2)&gt;&quot;&#x27;&#x60;&#x3D;&amp;';
    // subject (twice: heading only), name, reason, team, sender, body, attachment
    expect(html.split(escaped).length - 1).toBe(7);
  });
});

describe('loading web pages', () => {
  it('refuses raw output anywhere, with file and line', () => {
    const dir = pagesWith({ 'status.hbs': '<p>{{ref}}</p>\n<h1>{{{subject}}}</h1>\n{{#each timeline}}{{& kind}}{{/each}}' });
    expect(refused(WebPages.load(dir))).toEqual([
      { file: join(dir, 'status.hbs'), line: 2, message: expect.stringContaining('raw output') },
      { file: join(dir, 'status.hbs'), line: 3, message: expect.stringContaining('raw output') },
    ]);
  });

  it('refuses an unknown variable, also inside a branch and a loop, with its line', () => {
    const inBranch = pagesWith({ 'status.hbs': '<p>{{ref}}</p>\n{{#if promise}}\n{{promise.when}}\n{{/if}}' });
    expect(refused(WebPages.load(inBranch))).toEqual([
      { file: join(inBranch, 'status.hbs'), line: 3, message: 'unknown variable "when"' },
    ]);
    const inLoop = pagesWith({ 'de/status.hbs': '{{#each timeline}}\n{{#if (eq kind "handoff")}}{{teem}}{{/if}}\n{{/each}}' });
    expect(refused(WebPages.load(inLoop))).toEqual([
      { file: join(inLoop, 'de', 'status.hbs'), line: 2, message: 'unknown variable "teem"' },
    ]);
    const onErrorPage = pagesWith({ 'not-found.hbs': '<p>\n{{ref}}</p>' });
    expect(refused(WebPages.load(onErrorPage))).toEqual([
      { file: join(onErrorPage, 'not-found.hbs'), line: 2, message: 'unknown variable "ref"' },
    ]);
  });

  it('refuses partials, other block helpers and unknown helpers', () => {
    const dir = pagesWith({ 'status.hbs': '{{> header}}\n{{#with promise}}{{/with}}\n{{lookup timeline 0}}\n{{eq status}}' });
    const problems = refused(WebPages.load(dir));
    expect(problems.map((p) => [p.line, p.message])).toEqual([
      [1, expect.stringContaining('partials')],
      [2, expect.stringContaining('blocks can only be')],
      [4, 'eq takes 2 values, got 1'],
    ]);
    const unknownHelper = pagesWith({ 'status.hbs': '{{lookup timeline 0}}' });
    expect(refused(WebPages.load(unknownHelper))).toEqual([
      { file: join(unknownHelper, 'status.hbs'), line: 1, message: expect.stringContaining('unknown helper lookup') },
    ]);
  });

  it('refuses a parse error with its line', () => {
    const dir = pagesWith({ 'too-many-requests.hbs': '<p>\n{{#if}}\n' });
    expect(refused(WebPages.load(dir))).toEqual([
      {
        file: join(dir, 'too-many-requests.hbs'),
        line: expect.any(Number),
        message: expect.stringMatching(/Parse error|Expecting/),
      },
    ]);
  });

  it('refuses unknown files and folders and names missing pages', () => {
    const dir = pagesWith({ 'ticket.hbs': 'x', 'assets/style.hbs': 'x', 'not-found.hbs': null });
    expect(refused(WebPages.load(dir)).map((p) => [p.file, p.message])).toEqual([
      [join(dir, 'assets'), expect.stringContaining('only language folders')],
      [join(dir, 'not-found.hbs'), expect.stringContaining('missing')],
      [join(dir, 'ticket.hbs'), expect.stringContaining('not a known page')],
    ]);
  });

  it('uses the most specific language folder that has the page, else the top level', () => {
    const dir = pagesWith({ 'de-ch/status.hbs': '<p>Grüezi {{ref}}</p>', 'de/not-found.hbs': '<p>Nicht gefunden</p>' });
    const loaded = WebPages.load(dir);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const pages = loaded.pages;
    expect(pages.languages).toEqual(['de', 'de-ch']);
    expect(pages.languageFor('status', 'de-CH')).toBe('de-ch');
    expect(pages.languageFor('status', 'de_AT')).toBe('de');
    expect(pages.languageFor('status', 'fr')).toBeNull();
    expect(pages.languageFor('status', null)).toBeNull();
    expect(pages.render('status', view(), 'de-ch')).toBe('<p>Grüezi ACME-7K3QH9</p>');
    expect(pages.render('status', view(), null)).toContain('<html lang="en">');
    expect(pages.render('status', view(), 'de')).toContain('<html lang="de">');
  });
});
