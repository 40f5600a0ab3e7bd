import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readStaffReply } from '../../src/classify/staff-reply.js';
import { AnswerLibrary } from '../../src/compose/answer-library.js';

const SHIPPED = resolve(import.meta.dirname, '..', '..', 'templates', 'answers');
const VARS = { ref: 'ACME-7K3QH9', subject: 'Kettle', customerName: 'Jane', mailboxAddress: 'support@example.com' };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function library(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-answers-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { dir, result: AnswerLibrary.load(dir) };
}

describe('the answers library', () => {
  it('loads the shipped answers, in English and German', () => {
    const r = AnswerLibrary.load(SHIPPED);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.library.names).toEqual(['spare-part-delay', 'warranty']);
    const de = r.library.render('spare-part-delay', VARS, 'de-CH');
    expect(de).toMatchObject({ ok: true, lang: 'de' });
    expect(de.ok && de.text).toMatch(/^Guten Tag Jane,\n\ndas Ersatzteil für Ihre Anfrage ACME-7K3QH9/);
    // A language the library lacks gets the default text.
    expect(r.library.render('warranty', VARS, 'fr')).toMatchObject({ ok: true, lang: null });
  });

  it('refuses an unknown name with the names there are', () => {
    const { result } = library({ 'a.text.hbs': 'A' });
    if (!result.ok) throw new Error('not loaded');
    expect(result.library.render('b', VARS, null)).toEqual({ ok: false, why: 'no answer named "b" (known: a)' });
    expect(result.library.render('A', VARS, null)).toMatchObject({ ok: true, text: 'A' });
  });

  it('refuses unknown variables, helpers and partials, as for the mail templates', () => {
    const { result, dir } = library({
      'a.text.hbs': 'Dear {{customerName}}, see {{statusUrl}}',
      'b.text.hbs': '{{> footer}}',
      'c.text.hbs': '{{#each x}}{{/each}}',
    });
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors).toContainEqual(
      expect.objectContaining({
        file: join(dir, 'a.text.hbs'),
        line: 1,
        message: expect.stringMatching(/unknown variable "statusUrl"/),
      }),
    );
    expect(errors.map((e) => e.file)).toEqual([join(dir, 'a.text.hbs'), join(dir, 'b.text.hbs'), join(dir, 'c.text.hbs')]);
  });

  it('needs every answer in the default language, and names like name.text.hbs', () => {
    const { result, dir } = library({ 'de/only-german.text.hbs': 'Hallo', 'Bad Name.text.hbs': 'x', 'x/y.text.hbs': 'y' });
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors.map((e) => e.file).sort()).toEqual(
      [join(dir, 'Bad Name.text.hbs'), join(dir, 'de', 'only-german.text.hbs'), join(dir, 'x')].sort(),
    );
  });

  it('is empty, not an error, when there is no answers folder', () => {
    expect(AnswerLibrary.load(join(tmpdir(), 'ticketd-no-such-folder'))).toMatchObject({ ok: true, library: { names: [] } });
  });
});

describe('#answer in a staff reply', () => {
  it('reads #answer NAME, in any case, with the text below', () => {
    expect(readStaffReply('#answer Warranty\n#resolve\nHello Jane,')).toEqual({
      commands: [{ kind: 'answer', name: 'warranty' }, { kind: 'resolve' }],
      body: 'Hello Jane,',
      problems: [],
    });
  });

  it('refuses #answer without a name, with two, or beside #note and #assign', () => {
    expect(readStaffReply('#answer').problems).toEqual(['#answer needs one answer name, got ""']);
    expect(readStaffReply('#answer a b').problems).toEqual(['#answer needs one answer name, got "a b"']);
    expect(readStaffReply('#note\n#answer warranty').problems).toEqual([
      '#answer sends text to the customer; it cannot go with #note or #assign, whose text stays internal',
    ]);
  });
});
