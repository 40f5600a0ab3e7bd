// Mail reads in one language: every shipped kind, rendered in every shipped
// language, holds no tell-tale word of the other, and dates and durations
// are formatted in the template's language and the mailbox's time zone.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TemplateRegistry, type RenderedMail } from '../../src/compose/template-registry.js';
import { TEMPLATE_KINDS, sampleVars, type TemplateKind, type TemplateVars } from '../../src/compose/template-schema.js';

const SHIPPED = join(import.meta.dirname, '..', '..', 'templates');

function loadShipped(): TemplateRegistry {
  const result = TemplateRegistry.load(SHIPPED, { mailboxes: ['support'] });
  if (!result.ok) throw new Error(`shipped templates failed to load: ${JSON.stringify(result.errors, null, 2)}`);
  return result.registry;
}

// Words that give a language away. Customer text (subject, name, body) is
// set to language-neutral values below so only the template's words count.
const TELL_TALES: Record<string, ReadonlySet<string>> = {
  en: new Set(
    "the and of is are we our your you hello hour hours minute minutes day days second seconds waiting queue received request requests within sorry wait status reference due policy subject requester ticket's mon tue wed thu fri sat sun jan feb mar apr may jun jul aug sep oct nov dec am pm working hold".split(
      ' ',
    ),
  ),
  de: new Set(
    'und der die das ihre ihr wir uns sie guten tag tage tagen stunde stunden minute minuten sekunden anfrage anfragen innerhalb eingegangen wartet zurückgestellt referenz betreff fällig richtlinie verbraucht antwort lösung dez märz uhr mez mesz bitte'.split(
      ' ',
    ),
  ),
};

// "minute" is English and German alike; it only gives English away in English-only phrases.
const SHARED = new Set(['minute', 'ticket', 'status', 'sla', 'e', 'mail']);

function otherLanguage(lang: string): string {
  return lang === 'de' ? 'en' : 'de';
}

/**
 * The words a reader sees. Links are left out: a status link's random token
 * holds letters too, and one with "_Of9" in it read as the English "of".
 */
function words(mail: RenderedMail): string[] {
  const visible = [mail.subject, mail.text, mail.html.replace(/<[^>]*>/g, ' ').replace(/&[a-z]+;/g, ' ')]
    .join('\n')
    .replace(/https?:\/\/\S+/g, ' ');
  return (visible.toLowerCase().match(/\p{L}+/gu) ?? []).filter((w) => !SHARED.has(w));
}

/** Neutral customer content, so the only words left are the template's. */
function neutral<K extends TemplateKind>(kind: K, extra: Partial<TemplateVars<K>> = {}): TemplateVars<K> {
  return {
    ...sampleVars(kind),
    subject: 'X-42',
    customerName: 'Ilse Nakamura',
    body: 'X-42',
    onHoldReason: 'X-42',
    policy: 'gold',
    requester: 'Ilse Nakamura <ilse@example.com>',
    ...extra,
  } as TemplateVars<K>;
}

/** Every value that takes a branch: statuses, estimate sources, targets, empty and one-off counts. */
function variants(kind: TemplateKind): TemplateVars<TemplateKind>[] {
  switch (kind) {
    case 'delay-notice':
      return (['queued', 'in-progress', 'on-hold'] as const).flatMap((status) =>
        (['history', 'target'] as const).flatMap((estimateSource) =>
          [0, 1, 5].map((queuePosition) => neutral('delay-notice', { status, estimateSource, queuePosition })),
        ),
      );
    case 'staff-warning':
      return (['first-response', 'resolution'] as const).flatMap((target) =>
        ['', '2026-12-02T03:32:52.000Z'].map((due) => neutral('staff-warning', { target, due })),
      );
    case 'ack':
      return [0, 1, 5].flatMap((queuePosition) =>
        [0, 30_500_000].map((e) => neutral('ack', { queuePosition, firstResponseEstimate: e })),
      );
    case 'agent-reply':
      // With the rating links (a reply that resolves) and without.
      return [
        neutral('agent-reply'),
        neutral('agent-reply', { ratingUrl: '', ratingUrl1: '', ratingUrl2: '', ratingUrl3: '', ratingUrl4: '', ratingUrl5: '' }),
      ];
    default:
      return [neutral(kind)];
  }
}

describe('the word check', () => {
  it('reads the words around a link, not the letters of its token', () => {
    const text = 'Hier: https://help.example.com/t/aJl5Duxjg7g8z2mzLaVso5zukms_Of91sENpeRv8eYQ bitte.';
    expect(words({ subject: '', text, html: '' })).toEqual(['hier', 'bitte']);
  });
});

describe('shipped mail in every language', () => {
  const registry = loadShipped();
  const languages = ['en', ...registry.languages];

  it('ships German for every kind and every part', () => {
    expect(registry.languages).toEqual(['de']);
    for (const kind of TEMPLATE_KINDS) {
      expect(
        registry.files
          .filter((f) => f.lang === 'de' && f.kind === kind && f.mailbox === null)
          .map((f) => f.part)
          .sort(),
      ).toEqual(['html', 'subject', 'text']);
    }
  });

  it.each(TEMPLATE_KINDS.flatMap((kind) => languages.map((lang) => ({ kind, lang }))))(
    '$kind in $lang has no word of the other language',
    ({ kind, lang }) => {
      const tellTales = TELL_TALES[otherLanguage(lang)]!;
      for (const vars of variants(kind)) {
        for (const timeZone of ['UTC', 'Europe/Berlin', 'America/New_York']) {
          const mail = registry.render(kind, vars, { mailbox: 'support', lang, timeZone });
          const foreign = words(mail).filter((w) => tellTales.has(w));
          expect(foreign, `${kind}/${lang} ${JSON.stringify(vars)}:\n${mail.text}`).toEqual([]);
        }
      }
    },
  );
});

describe('dates and durations in the template language and the mailbox time zone', () => {
  const registry = loadShipped();
  const received = '2026-12-02T03:32:52.000Z';

  it('German acknowledgement', () => {
    const mail = registry.render('ack', neutral('ack', { receivedAt: received, firstResponseEstimate: (8 * 60 + 27) * 60_000 }), {
      mailbox: 'support',
      lang: 'de',
      timeZone: 'Europe/Berlin',
    });
    expect(mail.text).toContain('innerhalb von 8 Stunden und 27 Minuten');
    expect(mail.text).toContain('Eingegangen: 2. Dez. 2026, 04:32 MEZ');
    expect(mail.html).toContain('Eingegangen: 2. Dez. 2026, 04:32 MEZ');
  });

  it('English acknowledgement in the mailbox time zone', () => {
    const mail = registry.render('ack', neutral('ack', { receivedAt: received, firstResponseEstimate: 26 * 3_600_000 }), {
      mailbox: 'support',
      lang: 'en',
      timeZone: 'America/New_York',
    });
    expect(mail.text).toContain('within 1 day and 2 hours');
    expect(mail.text).toMatch(/Received: Dec 1, 2026, 10:32\sPM EST/);
  });

  it('German delay notice: waited, estimate and where it stands', () => {
    const vars = neutral('delay-notice', { waited: 26 * 3_600_000, estimate: 3 * 3_600_000, status: 'queued', onHoldReason: '' });
    const mail = registry.render('delay-notice', vars, { mailbox: 'support', lang: 'de', timeZone: 'Europe/Berlin' });
    expect(mail.text).toContain('wartet schon 1 Tag und 2 Stunden');
    expect(mail.text).toContain('innerhalb von 3 Stunden');
    expect(mail.text).toContain('Aktueller Stand: Ihre Anfrage wartet auf die erste Antwort unseres Teams.');
    const held = registry.render('delay-notice', { ...vars, status: 'on-hold' }, { mailbox: 'support', lang: 'de' });
    expect(held.text).toContain('Aktueller Stand: zurückgestellt.');
  });

  it('German staff warning and agent reply', () => {
    const warning = registry.render(
      'staff-warning',
      neutral('staff-warning', { threshold: 0.8, due: received, target: 'resolution' }),
      {
        mailbox: 'support',
        lang: 'de',
        timeZone: 'Europe/Berlin',
      },
    );
    // Intl puts a no-break space before the German per cent sign.
    expect(warning.subject).toMatch(/^\[ACME-7K3QH9\] SLA-Warnung: 80\s% der Zeit bis zur Lösung verbraucht: X-42$/);
    expect(warning.text).toContain('Fällig:      2. Dez. 2026, 04:32 MEZ');
    const reply = registry.render('agent-reply', neutral('agent-reply'), { mailbox: 'support', lang: 'de' });
    expect(reply.subject).toBe('[ACME-7K3QH9] AW: X-42');
    expect(reply.text).toContain('Stand Ihrer Anfrage: https://support.example.com/');
  });

  it('the resolution mail without a reply: one link per score, worded in each language', () => {
    const page = 'https://support.example.com/status/ACME-7K3QH9/q8Zt2kLw';
    for (const [lang, invitation] of [
      ['en', 'How did we do? Choose a score from 1 (poor) to 5 (excellent);'],
      ['de', 'Wie zufrieden waren Sie? Wählen Sie eine Note von 1 (schlecht) bis 5 (sehr gut);'],
    ] as const) {
      const mail = registry.render('resolved', neutral('resolved'), { mailbox: 'support', lang });
      expect(mail.subject).toBe(lang === 'de' ? '[ACME-7K3QH9] AW: X-42' : '[ACME-7K3QH9] Re: X-42');
      expect(mail.text).toContain(invitation);
      for (const score of [1, 2, 3, 4, 5]) {
        expect(mail.text).toContain(`${score}  ${page}?score=${score}#rate`);
        // Handlebars escapes "=" in the HTML part; a mail client reads it back.
        expect(mail.html).toContain(`href="${page}?score&#x3D;${score}#rate"`);
      }
    }
  });
});

describe('format helpers in operator templates', () => {
  it('are checked like the other helpers: arity and values', async () => {
    const { mkdtempSync, cpSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'ticketd-templates-'));
    try {
      cpSync(SHIPPED, dir, { recursive: true });
      writeFileSync(join(dir, 'ack.text.hbs'), '{{statusUrl}}\n{{duration}}\n{{datetime subject}}\n');
      const result = TemplateRegistry.load(dir, { mailboxes: [] });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.errors.map((p) => `${p.line}: ${p.message}`)).toEqual([
        expect.stringMatching(/^2: duration takes 1 value, got 0/),
      ]);
      writeFileSync(join(dir, 'ack.text.hbs'), '{{statusUrl}}\n{{datetime subject}}\n');
      const again = TemplateRegistry.load(dir, { mailboxes: [] });
      expect(again.ok).toBe(false);
      if (again.ok) return;
      expect(again.errors[0]?.message).toContain('datetime needs an ISO time');

      writeFileSync(
        join(dir, 'de', 'ack.text.hbs'),
        '{{statusUrl}}\n{{date receivedAt}} | {{percent 0.125}} | {{duration 90000}}\n',
      );
      writeFileSync(join(dir, 'ack.text.hbs'), '{{statusUrl}}\n{{date receivedAt}} | {{percent 0.125}} | {{duration 90000}}\n');
      const fine = TemplateRegistry.load(dir, { mailboxes: [] });
      if (!fine.ok) throw new Error(JSON.stringify(fine.errors));
      const at = { lang: 'de', timeZone: 'Pacific/Auckland' };
      const de = fine.registry.render('ack', neutral('ack', { receivedAt: '2026-12-02T13:00:00.000Z' }), at);
      expect(de.text).toMatch(/^3\. Dez\. 2026 \| 12,5\s% \| 2 Minuten$/m);
      const en = fine.registry.render('ack', neutral('ack', { receivedAt: '2026-12-02T13:00:00.000Z' }), { ...at, lang: 'en' });
      expect(en.text).toMatch(/^Dec 3, 2026 \| 12\.5% \| 2 minutes$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('status page dates', () => {
  it('are shown in the page language and the mailbox time zone', async () => {
    const { WebPages } = await import('../../src/web/page-templates.js');
    const { sampleStatusViews } = await import('../../src/web/status-page.js');
    const loaded = WebPages.load(join(SHIPPED, 'web'));
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const view = sampleStatusViews()[0]!;
    // The samples are at 2025-03-03T09:41Z.
    const de = loaded.pages.render('status', view, 'de', 'Europe/Berlin');
    expect(de).toContain('<time datetime="2025-03-03T09:41:00.000Z">3. März 2025, 10:41 MEZ</time>');
    expect(de).not.toContain('UTC');
    const en = loaded.pages.render('status', view, 'en', 'America/New_York');
    expect(en).toMatch(/<time datetime="2025-03-03T09:41:00.000Z">Mar 3, 2025, 4:41\sAM EST<\/time>/);
    // Without a zone the page keeps showing UTC.
    expect(loaded.pages.render('status', view, 'en')).toMatch(/Mar 3, 2025, 9:41\sAM UTC/);
  });
});

describe('a German mailbox end to end', () => {
  it('queues acknowledgement, delay notice, staff warning and agent reply in German, in its time zone', async () => {
    const { DateTime } = await import('luxon');
    const { openDesk, outboxOf } = await import('./sla-fixture.js');
    const { composeAgentReply } = await import('../../src/compose/compose-mail.js');
    const berlin = (text: string) => DateTime.fromISO(text, { zone: 'Europe/Berlin' }).toMillis();
    const desk = await openDesk(DateTime.fromISO('2026-12-01T09:00', { zone: 'Europe/Berlin' }).toISO()!, {
      patch: (cfg) => Object.assign(cfg.mailboxes[0], { language: 'de', timezone: 'Europe/Berlin' }),
    });
    try {
      const ref = await desk.receive({
        subject: 'X-42',
        messageId: 'de1@kunde.example',
        from: 'Ilse Nakamura <ilse@kunde.example>',
      });
      await desk.runtime.sla.tick(berlin('2026-12-01T13:30'));
      const rt = desk.runtime;
      await rt.store.addAgentReply(
        ref,
        (t, statusUrl, thread) =>
          composeAgentReply(
            { config: rt.config, mailbox: rt.mailbox(t.mailbox), templates: rt.templates },
            t,
            'X-42',
            statusUrl,
            thread,
          ),
        await rt.pipeline.policy(),
        berlin('2026-12-01T14:00'),
      );
      const mails = outboxOf(desk, ref);
      expect(mails.map((m) => m.kind)).toEqual(['ack', 'delay-notice', 'staff-warning', 'agent-reply']);
      const english = TELL_TALES.en!;
      for (const m of mails) {
        const found = words({ subject: m.subject, text: m.text, html: '' }).filter((w) => english.has(w));
        expect(found, `${m.kind}:\n${m.subject}\n${m.text}`).toEqual([]);
      }
      const [ack, notice, warning] = mails;
      // Received at 09:00 Berlin time; a 4-hour target from 09:00 is 13:00 that day.
      expect(ack!.text).toContain('Eingegangen: 1. Dez. 2026, 09:00 MEZ');
      expect(ack!.text).toContain('innerhalb von 4 Stunden');
      expect(notice!.text).toContain('wartet schon 4 Stunden und 30 Minuten');
      expect(notice!.text).toContain('Aktueller Stand: Ihre Anfrage wartet auf die erste Antwort unseres Teams.');
      expect(warning!.text).toContain('Fällig:      1. Dez. 2026, 13:00 MEZ');
    } finally {
      await desk.close();
    }
  });
});
