import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TEMPLATE_RENDER_ERROR,
  TemplateRegistry,
  TemplateRenderError,
  type TemplateLoadResult,
  type TemplateProblem,
} from '../../src/compose/template-registry.js';
import { TEMPLATE_KINDS, sampleVars, type TemplateVars } from '../../src/compose/template-schema.js';

const SHIPPED = join(import.meta.dirname, '..', '..', 'templates');
const MAILBOXES = ['support', 'sales'];

function loadShipped(): TemplateRegistry {
  const result = TemplateRegistry.load(SHIPPED, { mailboxes: MAILBOXES });
  if (!result.ok) throw new Error(`shipped templates failed to load: ${JSON.stringify(result.errors, null, 2)}`);
  return result.registry;
}

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the shipped templates with `files` (relative path -> content) written over it. */
function templatesWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-templates-'));
  tempDirs.push(dir);
  cpSync(SHIPPED, dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}

function problems(result: TemplateLoadResult): TemplateProblem[] {
  if (result.ok) throw new Error('expected the templates to be refused');
  return result.errors;
}

function ackVars(overrides: Partial<TemplateVars<'ack'>> = {}): TemplateVars<'ack'> {
  return { ...sampleVars('ack'), ...overrides };
}

describe('shipped templates', () => {
  it('load with every kind and the German folder', () => {
    const registry = loadShipped();
    expect(registry.languages).toEqual(['de']);
    const root = registry.files.filter((f) => f.mailbox === null && f.lang === null);
    expect(root).toHaveLength(TEMPLATE_KINDS.length * 3);
    expect(registry.files.filter((f) => f.lang === 'de').map((f) => f.kind)).toEqual(
      expect.arrayContaining(['ack', 'delay-notice']),
    );
  });

  it.each(
    TEMPLATE_KINDS.flatMap((kind) => [
      { kind, lang: 'en' },
      { kind, lang: 'de' },
    ]),
  )('render $kind for mailbox support in $lang', ({ kind, lang }) => {
    const registry = loadShipped();
    const vars = sampleVars(kind);
    const mail = registry.render(kind, vars, { mailbox: 'support', lang });
    expect(mail.subject).toContain(`[${vars.ref}]`);
    expect(mail.subject).toContain(vars.subject);
    expect(mail.subject).not.toMatch(/[\r\n]/);
    const named = vars as Record<string, string | number>;
    const link = String(named.statusUrl ?? named.ticketUrl);
    expect(mail.text).toContain(link);
    expect(mail.html).toContain(`href="${link}"`);
    expect(mail.html).not.toMatch(/<script|<img|\{\{/i);
    expect(mail.text).not.toContain('{{');
  });

  it('use German where a German file exists and fall back per file otherwise', () => {
    const registry = loadShipped();
    const de = registry.render('ack', ackVars(), { mailbox: 'support', lang: 'de' });
    expect(de.subject).toBe('[ACME-7K3QH9] Wir haben Ihre Anfrage erhalten: Printer on the 3rd floor keeps jamming');
    expect(de.text).toContain('Guten Tag Jane Doe,');
    expect(de.html).toContain('<html lang="de">');

    // A regional tag finds the language folder.
    expect(registry.render('ack', ackVars(), { lang: 'de-CH' }).subject).toBe(de.subject);

    // A part missing from the language folder comes from the default set.
    const dir = templatesWith({});
    rmSync(join(dir, 'de', 'agent-reply.html.hbs'));
    const partial = TemplateRegistry.load(dir, { mailboxes: MAILBOXES });
    if (!partial.ok) throw new Error(JSON.stringify(partial.errors));
    const replyVars = sampleVars('agent-reply');
    const mixed = partial.registry.render('agent-reply', replyVars, { mailbox: 'support', lang: 'de' });
    expect(mixed.text).toContain('Stand Ihrer Anfrage');
    expect(mixed.html).toBe(registry.render('agent-reply', replyVars, { mailbox: 'support', lang: 'en' }).html);

    const en = registry.render('ack', ackVars(), { mailbox: 'support', lang: 'fr' });
    expect(en.subject).toBe('[ACME-7K3QH9] We received your request: Printer on the 3rd floor keeps jamming');
  });

  it('handle an empty estimate, an empty name and an empty queue honestly', () => {
    const registry = loadShipped();
    const mail = registry.render('ack', ackVars({ firstResponseEstimate: 0, customerName: '', queuePosition: 0 }));
    expect(mail.text).toMatch(/^Hello,\n/);
    expect(mail.text).not.toContain('within');
    expect(mail.text).not.toContain('ahead of yours');
    const one = registry.render('ack', ackVars({ queuePosition: 1 }));
    expect(one.text).toContain('There is 1 request ahead of yours.');
    expect(one.html).toContain('There is 1 request ahead of yours.');
  });

  it('word the delay estimate by where it came from', () => {
    const registry = loadShipped();
    const vars = sampleVars('delay-notice');
    const history = registry.render('delay-notice', { ...vars, estimateSource: 'history' });
    const target = registry.render('delay-notice', { ...vars, estimateSource: 'target', onHoldReason: '' });
    expect(history.text).toContain('Judging by similar requests, we expect the next step within 1 day.');
    expect(target.text).toContain('We aim to take the next step within 1 day.');
    expect(history.text).toContain('on hold because: waiting for a replacement part');
    expect(target.text).not.toContain('on hold');
  });

  it('escape hostile values in HTML but keep them verbatim in text', () => {
    const registry = loadShipped();
    const hostile = [
      { subject: '<script>alert(1)</script>', escaped: '&lt;script&gt;alert(1)&lt;/script&gt;' },
      { subject: '"><img src=x onerror=alert(1)>', escaped: '&quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;' },
    ];
    for (const { subject, escaped } of hostile) {
      const mail = registry.render('ack', ackVars({ subject, customerName: subject }), { mailbox: 'support' });
      expect(mail.html).not.toContain(subject);
      expect(mail.html).not.toMatch(/<script|<img/i);
      expect(mail.html).toContain(`Hello ${escaped},`);
      expect(mail.html).toContain(`&ldquo;${escaped}&rdquo;`);
      expect(mail.text).toContain(subject);
      expect(mail.subject).toContain(subject);
    }
  });

  it('turn an agent reply into escaped paragraphs', () => {
    const registry = loadShipped();
    const body = 'Hi <b>Jane</b>,\r\n\r\nline one\r\nline two & more\n\n\n\nbye';
    const mail = registry.render('agent-reply', { ...sampleVars('agent-reply'), body });
    expect(mail.html).toContain('<p style="margin:0 0 1em 0;">Hi &lt;b&gt;Jane&lt;/b&gt;,</p>');
    expect(mail.html).toContain('<p style="margin:0 0 1em 0;">line one<br>\nline two &amp; more</p>');
    expect(mail.html).toContain('<p style="margin:0 0 1em 0;">bye</p>');
    expect(mail.text).toContain(body);
  });

  it('keep the subject on one line when the customer subject has CRLF', () => {
    const registry = loadShipped();
    const mail = registry.render('ack', ackVars({ subject: 'first\r\nBcc: victim@example.com\r\n\r\nsecond' }));
    expect(mail.subject).toBe('[ACME-7K3QH9] We received your request: first Bcc: victim@example.com second');
    expect(mail.subject).not.toMatch(/[\r\n]/);
  });

  it('never need a triple-stash', () => {
    const files = readdirSync(SHIPPED, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.hbs'));
    expect(files.length).toBeGreaterThanOrEqual(18);
    for (const file of files) expect(readFileSync(join(SHIPPED, file), 'utf8')).not.toMatch(/\{\{\{|\{\{&/);
  });

  it('refuse to render with missing variables', () => {
    const registry = loadShipped();
    const { statusUrl: _dropped, ...rest } = ackVars();
    let caught: unknown;
    try {
      registry.render('ack', { ...rest, queuePosition: null } as unknown as TemplateVars<'ack'>);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TemplateRenderError);
    expect((caught as TemplateRenderError).code).toBe(TEMPLATE_RENDER_ERROR);
    expect(TEMPLATE_RENDER_ERROR).toBe('TICKETD_TEMPLATE_RENDER');
    expect((caught as TemplateRenderError).missing).toEqual(['statusUrl', 'queuePosition']);
  });
});

describe('loading operator templates', () => {
  it('reports an unknown variable with its file and line', () => {
    const dir = templatesWith({ 'ack.text.hbs': 'Hello,\n\nyour reference is {{reff}}.\n{{statusUrl}}\n' });
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ file: join(dir, 'ack.text.hbs'), line: 3 });
    expect(found[0]?.message).toContain('"reff"');
  });

  it('reports an unknown variable in a branch the sample data does not take', () => {
    const dir = templatesWith({
      'de/ack.html.hbs': '<p>\n{{#if firstResponseEstimate}}\nsoon\n{{else}}\n{{firstResponseEstimat}}\n{{/if}}\n</p>\n',
    });
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found).toEqual([
      { file: join(dir, 'de', 'ack.html.hbs'), line: 5, message: expect.stringContaining('"firstResponseEstimat"') },
    ]);
  });

  it('reports a syntax error with file and line', () => {
    const dir = templatesWith({ 'delay-notice.text.hbs': 'Hello\n{{#if ref}}\nopen block\n' });
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found).toHaveLength(1);
    expect(found[0]?.file).toBe(join(dir, 'delay-notice.text.hbs'));
    expect(found[0]?.line).toEqual(expect.any(Number));
    expect(found[0]?.message).toMatch(/Parse error/);
  });

  it('uses a per-mailbox override for that mailbox only, part by part', () => {
    const dir = templatesWith({ 'support/ack.subject.hbs': '[{{ref}}] Support has your request: {{subject}}\n' });
    const result = TemplateRegistry.load(dir, { mailboxes: MAILBOXES });
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const registry = result.registry;
    const support = registry.render('ack', ackVars(), { mailbox: 'support', lang: 'en' });
    const sales = registry.render('ack', ackVars(), { mailbox: 'sales', lang: 'en' });
    expect(support.subject).toBe('[ACME-7K3QH9] Support has your request: Printer on the 3rd floor keeps jamming');
    expect(sales.subject).toBe('[ACME-7K3QH9] We received your request: Printer on the 3rd floor keeps jamming');
    expect(support.text).toBe(sales.text);
    // The mailbox folder comes before the language folder.
    expect(registry.render('ack', ackVars(), { mailbox: 'support', lang: 'de' }).subject).toBe(support.subject);
    expect(registry.render('ack', ackVars(), { mailbox: 'support', lang: 'de' }).text).toContain('Guten Tag');
    expect(registry.files.find((f) => f.mailbox === 'support')).toEqual({
      path: join(dir, 'support', 'ack.subject.hbs'),
      kind: 'ack',
      part: 'subject',
      mailbox: 'support',
      lang: null,
    });
  });

  it('prefers <mailbox>/<lang>/ over everything else', () => {
    const dir = templatesWith({ 'support/de/ack.subject.hbs': '[{{ref}}] Support DE: {{subject}}' });
    const result = TemplateRegistry.load(dir, { mailboxes: MAILBOXES });
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.registry.render('ack', ackVars(), { mailbox: 'support', lang: 'de-AT' }).subject).toBe(
      '[ACME-7K3QH9] Support DE: Printer on the 3rd floor keeps jamming',
    );
    expect(result.registry.render('ack', ackVars(), { mailbox: 'sales', lang: 'de' }).subject).toContain('Wir haben');
  });

  it('reports an hbs file with an unknown kind', () => {
    const dir = templatesWith({ 'foo.text.hbs': 'hello', 'notes.txt': 'ignored', 'ack.txt.hbs': '{{ref}}' });
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found.map((p) => p.file)).toEqual([join(dir, 'ack.txt.hbs'), join(dir, 'foo.text.hbs')]);
    expect(found[1]?.message).toContain('not a known template');
  });

  it('reports a folder that is neither a mailbox nor a language', () => {
    const dir = templatesWith({ 'suport/ack.subject.hbs': '[{{ref}}] {{subject}}', 'web/page.hbs': '{{anything}}' });
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found).toEqual([{ file: join(dir, 'suport'), line: null, message: expect.stringContaining('never used') }]);
  });

  it('reports a missing default file', () => {
    const dir = templatesWith({});
    rmSync(join(dir, 'ack.subject.hbs'));
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found).toEqual([{ file: join(dir, 'ack.subject.hbs'), line: null, message: expect.stringContaining('missing') }]);
  });

  it('reports a missing directory', () => {
    const found = problems(TemplateRegistry.load(join(tmpdir(), 'ticketd-no-such-templates'), { mailboxes: [] }));
    expect(found[0]?.message).toContain('not found');
  });

  it('requires the reference tag in customer subjects', () => {
    const dir = templatesWith({ 'sales/agent-reply.subject.hbs': 'Re: {{subject}} ({{ref}})' });
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found).toEqual([
      { file: join(dir, 'sales', 'agent-reply.subject.hbs'), line: null, message: expect.stringContaining('[{{ref}}]') },
    ]);
  });

  it('refuses raw output in HTML templates', () => {
    const dir = templatesWith({ 'ack.html.hbs': '<p>\n{{{subject}}}\n{{& customerName}}</p>\n{{statusUrl}}' });
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found.map((p) => p.line)).toEqual([2, 3]);
    expect(found[0]?.message).toContain('{{{');
  });

  it('refuses helpers that are not offered', () => {
    const dir = templatesWith({
      'ack.text.hbs':
        '{{paragraphs subject}}\n{{#each subject}}x{{/each}}\n{{lookup this "ref"}}\n{{plural queuePosition "a"}}\n{{> footer}}',
    });
    const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
    expect(found.map((p) => p.line)).toEqual([1, 2, 3, 4, 5]);
    expect(found[0]?.message).toContain('unknown helper "paragraphs"');
    expect(found[1]?.message).toContain('not "each"');
    expect(found[3]?.message).toContain('plural takes 3 values, got 2');
    expect(found[4]?.message).toContain('partials');
  });

  it('does not expose prototype properties', () => {
    for (const source of ['{{constructor.name}}', '{{__proto__}}', '{{ref.constructor}}', '{{@root.constructor}}', '{{this}}']) {
      const dir = templatesWith({ 'ack.text.hbs': `{{statusUrl}}\n${source}` });
      const found = problems(TemplateRegistry.load(dir, { mailboxes: MAILBOXES }));
      expect(found).toEqual([{ file: join(dir, 'ack.text.hbs'), line: 2, message: expect.stringContaining('unknown variable') }]);
    }
  });

  it('passes only schema variables to a template', () => {
    const registry = loadShipped();
    const polluted = Object.assign(Object.create({ inherited: 'x' }), ackVars(), { extra: '<script>' }) as TemplateVars<'ack'>;
    const mail = registry.render('ack', polluted);
    expect(mail.html).not.toContain('script');
    expect(mail).toEqual(registry.render('ack', ackVars()));
  });
});
