import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/load-config.js';
import { TemplateRegistry, type TemplateProblem } from '../compose/template-registry.js';
import { WebPages } from '../web/page-templates.js';

export type TemplatesCheck = { ok: true; files: string[] } | { ok: false; problems: TemplateProblem[] };

/**
 * Loads every template the daemon would load at start: the mail templates,
 * and the status page's when the web server is enabled. Loading renders each
 * with the sample data of its schema.
 */
export function checkTemplates(config: Config): TemplatesCheck {
  const mail = TemplateRegistry.load(config.templatesDir, { mailboxes: config.mailboxes.map((m) => m.name) });
  const webDir = join(config.templatesDir, 'web');
  const web = config.http.enabled ? WebPages.load(webDir) : null;
  const problems = [...(mail.ok ? [] : mail.errors), ...(web?.ok === false ? web.errors : [])];
  if (!mail.ok || problems.length > 0) return { ok: false, problems };
  const webFiles = web ? readdirSync(webDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.hbs')).map((f) => join(webDir, f)) : [];
  return { ok: true, files: [...mail.registry.files.map((f) => f.path), ...webFiles].sort() };
}
