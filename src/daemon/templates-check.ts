import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/load-config.js';
import { AnswerLibrary } from '../compose/answer-library.js';
import { TemplateRegistry, type TemplateProblem } from '../compose/template-registry.js';
import type { TemplateKind } from '../compose/template-schema.js';
import { WebPages } from '../web/page-templates.js';

export const TEMPLATES_INVALID = 'TICKETD_TEMPLATES_INVALID';

/** Everything operators can edit under `templatesDir`, loaded and checked together. */
export interface LoadedTemplates {
  mail: TemplateRegistry;
  /** The status page's templates; null when the web server is disabled or they were not asked for. */
  web: WebPages | null;
  /** The vetted answers of `templates/answers/`; empty when there is no such folder. */
  answers: AnswerLibrary;
  files: string[];
}

export type TemplatesCheck = { ok: true; templates: LoadedTemplates } | { ok: false; problems: TemplateProblem[] };

export class TemplatesInvalidError extends Error {
  readonly code = TEMPLATES_INVALID;
  constructor(readonly problems: TemplateProblem[]) {
    super(`templates refused:\n  ${problems.map(formatProblem).join('\n  ')}`);
  }
}

export function formatProblem(p: TemplateProblem): string {
  return `${p.file}${p.line !== null ? `:${p.line}` : ''}: ${p.message}`;
}

/**
 * Which templates to load now. By default every one: the daemon, a reload,
 * `templates check` and `check-config` refuse a broken template before it
 * could reach anyone. A one-shot command that renders a single kind names it
 * in `mailKinds` (the rest compile on first use) and leaves out the status
 * page it never serves.
 */
export interface TemplatesScope {
  mailKinds?: readonly TemplateKind[];
  /** Load the status page's templates when http is enabled; default true. */
  web?: boolean;
}

/**
 * Loads every template the daemon uses: the mail templates, and the status
 * page's when the web server is enabled. Loading renders each with the sample
 * data of its schema, so a template that would fail never reaches anyone.
 */
export function checkTemplates(config: Config, scope: TemplatesScope = {}): TemplatesCheck {
  const mail = TemplateRegistry.load(config.templatesDir, {
    mailboxes: config.mailboxes.map((m) => m.name),
    ...(scope.mailKinds ? { kinds: scope.mailKinds } : {}),
  });
  const webDir = join(config.templatesDir, 'web');
  const web = config.http.enabled && scope.web !== false ? WebPages.load(webDir) : null;
  const answers = AnswerLibrary.load(join(config.templatesDir, 'answers'));
  const problems = [
    ...(mail.ok ? [] : mail.errors),
    ...(web?.ok === false ? web.errors : []),
    ...(answers.ok ? [] : answers.errors),
  ];
  if (!mail.ok || web?.ok === false || !answers.ok) return { ok: false, problems };
  const webFiles = web
    ? readdirSync(webDir, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.hbs'))
        .map((f) => join(webDir, f))
    : [];
  return {
    ok: true,
    templates: {
      mail: mail.registry,
      web: web?.pages ?? null,
      answers: answers.library,
      files: [...mail.registry.files.map((f) => f.path), ...webFiles, ...answers.library.files].sort(),
    },
  };
}

/** Like checkTemplates, but throws TemplatesInvalidError listing every problem. */
export function loadTemplates(config: Config, scope: TemplatesScope = {}): LoadedTemplates {
  const checked = checkTemplates(config, scope);
  if (!checked.ok) throw new TemplatesInvalidError(checked.problems);
  return checked.templates;
}
