// Kinds left out of `kinds` at load are compiled on first render, with the
// same checks a full load makes; a full load stays strict about every kind.

import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TemplateRegistry, TemplateRenderError } from '../../src/compose/template-registry.js';
import { TEMPLATE_KINDS, sampleVars } from '../../src/compose/template-schema.js';

const SHIPPED = join(import.meta.dirname, '..', '..', 'templates');
const MAILBOXES = ['support'];

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function shippedWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-templates-'));
  tempDirs.push(dir);
  cpSync(SHIPPED, dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) writeFileSync(join(dir, rel), content);
  return dir;
}

function registry(dir: string, kinds?: (typeof TEMPLATE_KINDS)[number][]): TemplateRegistry {
  const result = TemplateRegistry.load(dir, { mailboxes: MAILBOXES, ...(kinds ? { kinds } : {}) });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.registry;
}

describe('templates compiled on first use', () => {
  it('compiles only the kinds asked for, the rest when first rendered, with the same output as a full load', () => {
    const eager = registry(SHIPPED);
    expect(eager.compiledKinds()).toEqual([...TEMPLATE_KINDS]);
    const lazy = registry(SHIPPED, ['ack']);
    expect(lazy.compiledKinds()).toEqual(['ack']);
    for (const kind of TEMPLATE_KINDS) {
      for (const lang of [null, 'de']) {
        expect(lazy.render(kind, sampleVars(kind), { mailbox: 'support', lang })).toEqual(
          eager.render(kind, sampleVars(kind), { mailbox: 'support', lang }),
        );
      }
    }
    expect(lazy.compiledKinds()).toEqual([...TEMPLATE_KINDS]);
  });

  it('refuses a broken kind when it is first rendered, and a full load refuses it at once', () => {
    const dir = shippedWith({ 'delay-notice.text.hbs': 'Hello\n{{no_such_variable}}\n' });
    const full = TemplateRegistry.load(dir, { mailboxes: MAILBOXES });
    expect(full.ok).toBe(false);
    expect(full.ok ? [] : full.errors.map((e) => e.file)).toEqual([join(dir, 'delay-notice.text.hbs')]);

    const lazy = registry(dir, ['ack']);
    expect(lazy.render('ack', sampleVars('ack')).subject).toContain('[ACME-');
    expect(() => lazy.render('delay-notice', sampleVars('delay-notice'))).toThrow(TemplateRenderError);
    expect(() => lazy.render('delay-notice', sampleVars('delay-notice'))).toThrow(
      /delay-notice\.text\.hbs:2: unknown variable "no_such_variable"/,
    );
    expect(lazy.compiledKinds()).toEqual(['ack']);
  });

  it('still reports problems of the folder layout and missing files at load', () => {
    const dir = shippedWith({ 'bogus.text.hbs': 'x' });
    rmSync(join(dir, 'staff-warning.html.hbs'));
    const result = TemplateRegistry.load(dir, { mailboxes: MAILBOXES, kinds: ['ack'] });
    expect(result.ok ? [] : result.errors.map((e) => e.file).sort()).toEqual([
      join(dir, 'bogus.text.hbs'),
      join(dir, 'staff-warning.html.hbs'),
    ]);
  });
});
