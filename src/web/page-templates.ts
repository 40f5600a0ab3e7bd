import { statSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { FORMAT_HELPERS, registerFormatHelpers, type FormatData } from '../compose/format-helpers.js';
import type { TemplateProblem } from '../compose/template-registry.js';
import {
  helperName,
  languageCandidates,
  parseTemplateFile,
  templateProblem,
  walkLanguageFolders,
} from '../compose/template-source.js';
import { sampleStatusViews, type StatusView } from './status-page.js';

/** The pages of `templates/web/`: the status page and the one page every failed lookup gets. */
export const WEB_PAGES = ['status', 'not-found', 'too-many-requests'] as const;
export type WebPage = (typeof WEB_PAGES)[number];

export type WebPagesLoadResult = { ok: true; pages: WebPages } | { ok: false; errors: TemplateProblem[] };

type Env = typeof Handlebars;
type Template = Handlebars.TemplateDelegate;

const BLOCK_HELPERS = new Set(['if', 'unless', 'each']);
const INLINE_HELPERS: ReadonlyMap<string, number> = new Map([['eq', 2], ['plural', 3], ...FORMAT_HELPERS]);

const COMPILE_OPTIONS = {
  strict: true,
  knownHelpersOnly: true,
  knownHelpers: {
    eq: true,
    plural: true,
    with: false,
    lookup: false,
    log: false,
    ...Object.fromEntries([...FORMAT_HELPERS.keys()].map((name) => [name, true])),
  },
} as const;

// The top-level pages are the default set, which ships in English.
const DEFAULT_LOCALE = 'en';
// Any zone other than UTC, so loading exercises zone names too.
const SAMPLE_TIME_ZONE = 'Europe/Berlin';

// A private instance: nothing registered elsewhere in the process reaches the
// pages, and the helpers that could reach outside the view are removed.
function createEnvironment(): Env {
  const hb = Handlebars.create();
  for (const name of ['with', 'lookup', 'log']) hb.unregisterHelper(name);
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('plural', (n: unknown, one: unknown, many: unknown) => (Number(n) === 1 ? one : many));
  registerFormatHelpers(hb);
  return hb;
}

/** The views each page is checked against at load: together they take every branch. */
function samplesFor(page: WebPage): object[] {
  return page === 'status' ? sampleStatusViews() : [{}];
}

/**
 * Refuses what would let text from an email become markup: raw output
 * (`{{{x}}}`, `{{& x}}`), partials and decorators. Reported with their line,
 * before anything is compiled.
 */
function checkAst(program: hbs.AST.Program | undefined, report: (node: hbs.AST.Node, message: string) => void): void {
  for (const node of program?.body ?? []) {
    switch (node.type) {
      case 'MustacheStatement': {
        const m = node as hbs.AST.MustacheStatement;
        if (!m.escaped) report(m, 'raw output ({{{…}}} or {{& …}}) is not allowed: use {{…}}, which escapes');
        const name = helperName(m.path);
        if (name !== null && INLINE_HELPERS.has(name) && m.params.length !== INLINE_HELPERS.get(name)) {
          report(m, `${name} takes ${INLINE_HELPERS.get(name)} values, got ${m.params.length}`);
        }
        break;
      }
      case 'BlockStatement': {
        const b = node as hbs.AST.BlockStatement;
        const name = helperName(b.path);
        if (name === null || !BLOCK_HELPERS.has(name)) {
          report(b, `blocks can only be {{#if …}}, {{#unless …}} or {{#each …}}`);
        }
        checkAst(b.program, report);
        checkAst(b.inverse, report);
        break;
      }
      case 'PartialStatement':
      case 'PartialBlockStatement':
        report(node, 'partials ({{> name}}) are not available in web pages');
        break;
      case 'Decorator':
      case 'DecoratorBlock':
        report(node, 'decorators are not available in web pages');
        break;
    }
  }
}

function compileFile(
  hb: Env,
  path: string,
  page: WebPage,
  lang: string | null,
): { ok: true; template: Template } | { ok: false; problems: TemplateProblem[] } {
  const problems: TemplateProblem[] = [];
  const parsed = parseTemplateFile(hb, path);
  if (!parsed.ok) return { ok: false, problems: [{ file: path, ...parsed.problem }] };
  const { source, ast } = parsed;
  checkAst(ast, (node, message) => problems.push({ file: path, line: node.loc.start.line, message }));
  if (problems.length > 0) return { ok: false, problems };
  let template: Template;
  try {
    template = hb.compile(ast, COMPILE_OPTIONS);
    // Strict lookups only fail when a template runs, so run it on every sample.
    const data: FormatData = { locale: lang ?? DEFAULT_LOCALE, timeZone: SAMPLE_TIME_ZONE };
    for (const sample of samplesFor(page)) template(sample, { data });
  } catch (error) {
    return { ok: false, problems: [{ file: path, ...templateProblem(error, source) }] };
  }
  return { ok: true, template };
}

function key(lang: string | null, page: WebPage): string {
  return `${lang ?? ''}/${page}`;
}

function isWebPage(name: string): name is WebPage {
  return (WEB_PAGES as readonly string[]).includes(name);
}

/**
 * The compiled web pages of `templates/web/`: the top level is the default
 * language, `templates/web/<lang>/` overrides single pages for a language.
 * Immutable; a page that fails to load refuses the whole set.
 */
export class WebPages {
  private constructor(
    readonly dir: string,
    readonly languages: readonly string[],
    private readonly templates: ReadonlyMap<string, Template>,
  ) {}

  static load(dir: string): WebPagesLoadResult {
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      return { ok: false, errors: [{ file: dir, line: null, message: 'web templates directory not found' }] };
    }
    const hb = createEnvironment();
    const problems: TemplateProblem[] = [];
    const templates = new Map<string, Template>();
    const languages: string[] = [];

    const loadFile = (path: string, name: string, lang: string | null) => {
      if (lang !== null) languages.push(lang);
      const page = name.endsWith('.hbs') ? name.slice(0, -'.hbs'.length) : null;
      if (page === null || !isWebPage(page)) {
        problems.push({
          file: path,
          line: null,
          message: `not a known page: names are ${WEB_PAGES.map((p) => `${p}.hbs`).join(', ')}`,
        });
        return;
      }
      if (templates.has(key(lang, page))) {
        problems.push({ file: path, line: null, message: 'same page twice (folder names differ only in case)' });
        return;
      }
      const compiled = compileFile(hb, path, page, lang);
      if (compiled.ok) templates.set(key(lang, page), compiled.template);
      else problems.push(...compiled.problems);
    };
    walkLanguageFolders(dir, loadFile, problems);

    for (const page of WEB_PAGES) {
      const path = join(dir, `${page}.hbs`);
      if (!templates.has(key(null, page)) && !problems.some((p) => p.file === path)) {
        problems.push({ file: path, line: null, message: 'missing: every page needs its template at the top of templates/web/' });
      }
    }
    if (problems.length > 0) {
      problems.sort((a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0));
      return { ok: false, errors: problems };
    }
    return { ok: true, pages: new WebPages(dir, Object.freeze([...new Set(languages)].sort()), templates) };
  }

  /** The language folder a page is rendered from for a reader's language; null for the top level. */
  languageFor(page: WebPage, lang: string | null | undefined): string | null {
    return languageCandidates(lang).find((l) => this.templates.has(key(l, page))) ?? null;
  }

  /** `timeZone` is the mailbox's: the format helpers show instants in it (UTC when omitted). */
  render(page: 'status', view: StatusView, lang: string | null, timeZone?: string): string;
  render(page: 'not-found' | 'too-many-requests'): string;
  render(page: WebPage, view: object = {}, lang: string | null = null, timeZone = 'UTC'): string {
    const folder = this.languageFor(page, lang);
    const template = this.templates.get(key(folder, page));
    if (!template) throw new Error(`web page ${page} is not loaded`);
    return template(view, { data: { locale: folder ?? DEFAULT_LOCALE, timeZone } satisfies FormatData });
  }
}
