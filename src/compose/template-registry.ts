import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { FORMAT_HELPERS, registerFormatHelpers, type FormatData } from './format-helpers.js';
import {
  TEMPLATE_KINDS,
  TEMPLATE_PARTS,
  TEMPLATE_SCHEMA,
  isTemplateKind,
  sampleVars,
  variablesOf,
  type TemplateKind,
  type TemplatePart,
  type TemplateVars,
} from './template-schema.js';
import {
  errorMessage,
  helperName,
  LANGUAGE_TAG,
  languageCandidates,
  parseTemplateFile,
  templateProblem,
} from './template-source.js';

export const TEMPLATE_RENDER_ERROR = 'TICKETD_TEMPLATE_RENDER';

export interface TemplateProblem {
  file: string;
  line: number | null;
  message: string;
}

export type TemplateLoadResult = { ok: true; registry: TemplateRegistry } | { ok: false; errors: TemplateProblem[] };

export interface TemplateLoadOptions {
  /** Mailbox names from the configuration; a folder with one of these names overrides for that mailbox. */
  mailboxes: string[];
  /** Language folders to accept; when omitted any folder named like a language tag (`de`, `pt-br`) is one. */
  languages?: string[];
  /**
   * Kinds to compile and check now; the others are compiled, with the same
   * checks, the first time one of them is rendered. Every kind when omitted,
   * which is what `start`, a reload and `templates check` use: a broken
   * template is refused before anything runs. A short-lived process that
   * renders one kind (`ingest` only acknowledges) names just that one.
   */
  kinds?: readonly TemplateKind[];
}

export interface TemplateFile {
  /** The file as found: the templates directory joined with its relative path. */
  path: string;
  kind: TemplateKind;
  part: TemplatePart;
  mailbox: string | null;
  /** Lower-cased language folder name. */
  lang: string | null;
}

export interface RenderTarget {
  mailbox?: string | null;
  /** Language tag of the reader, e.g. `de-CH`; tried as `de-ch`, then `de`, then the default. */
  lang?: string | null;
  /** IANA time zone the format helpers show instants in (the mailbox's); UTC when omitted. */
  timeZone?: string | undefined;
}

export interface RenderedMail {
  /** Always a single line. */
  subject: string;
  text: string;
  html: string;
}

export class TemplateRenderError extends Error {
  readonly code = TEMPLATE_RENDER_ERROR;
  constructor(
    message: string,
    readonly missing: readonly string[] = [],
  ) {
    super(message);
    this.name = 'TemplateRenderError';
  }
}

type Env = typeof Handlebars;
type Template = Handlebars.TemplateDelegate;

// `web/` belongs to the status page, which loads its own templates;
// `answers/` to the answer library (answer-library.ts).
const OWN_FOLDERS: ReadonlySet<string> = new Set(['web', 'answers']);
const FILE_NAME = /^(.+)\.(subject|text|html)\.hbs$/;

// Helpers a template may call and how many values each takes. Checked before
// rendering so a wrong call is reported with its line instead of surfacing
// as a failed mail later.
const BLOCK_HELPERS: ReadonlyMap<string, number> = new Map([
  ['if', 1],
  ['unless', 1],
]);
const TEXT_HELPERS: ReadonlyMap<string, number> = new Map([['eq', 2], ['plural', 3], ...FORMAT_HELPERS]);
// `paragraphs` emits markup, which would show up literally in a text part.
const HTML_HELPERS: ReadonlyMap<string, number> = new Map([...TEXT_HELPERS, ['paragraphs', 1]]);

function inlineHelpers(part: TemplatePart): ReadonlyMap<string, number> {
  return part === 'html' ? HTML_HELPERS : TEXT_HELPERS;
}

export function compileOptions(part: TemplatePart): Parameters<Env['compile']>[1] {
  return {
    strict: true,
    knownHelpersOnly: true,
    // Subject and text are not HTML: escaping would turn `&` into `&amp;` in a plain mail.
    noEscape: part !== 'html',
    knownHelpers: {
      each: false,
      with: false,
      log: false,
      lookup: false,
      eq: true,
      plural: true,
      paragraphs: part === 'html',
      ...Object.fromEntries([...FORMAT_HELPERS.keys()].map((name) => [name, true])),
    },
  };
}

/** Plain text to HTML paragraphs: escaped, blank lines split paragraphs, single newlines become <br>. */
function paragraphsHtml(hb: Env, text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((block) => block.replace(/^\n+|\n+$/g, ''))
    .filter((block) => block.trim() !== '')
    .map((block) => `<p style="margin:0 0 1em 0;">${hb.escapeExpression(block).replace(/\n/g, '<br>\n')}</p>`)
    .join('\n');
}

// A private instance, so nothing registered elsewhere in the process (or by a
// dependency) is reachable from operator templates.
export function createEnvironment(): Env {
  const hb = Handlebars.create();
  hb.registerHelper('paragraphs', (text: unknown) => new hb.SafeString(paragraphsHtml(hb, String(text))));
  hb.registerHelper('plural', (n: unknown, one: unknown, many: unknown) => (Number(n) === 1 ? one : many));
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  registerFormatHelpers(hb);
  return hb;
}

/**
 * Walks a parsed template and reports every variable outside the kind's
 * schema, wrong helper calls, partials and raw HTML output. Rendering with
 * sample data alone would miss names inside branches the samples don't take.
 */
export class TemplateChecker {
  readonly problems: { line: number; message: string }[] = [];
  private readonly inline: ReadonlyMap<string, number>;
  private readonly variables: ReadonlySet<string>;

  constructor(
    /** What the file is, as the problems name it: a mail kind, or `answer`. */
    private readonly kind: string,
    private readonly part: TemplatePart,
    variables: Readonly<Record<string, unknown>>,
  ) {
    this.inline = inlineHelpers(part);
    this.variables = new Set(Object.keys(variables));
  }

  program(program: hbs.AST.Program | undefined): void {
    for (const statement of program?.body ?? []) this.statement(statement);
  }

  private statement(node: hbs.AST.Statement): void {
    switch (node.type) {
      case 'MustacheStatement':
        this.mustache(node as hbs.AST.MustacheStatement);
        break;
      case 'BlockStatement': {
        const block = node as hbs.AST.BlockStatement;
        this.call(block, BLOCK_HELPERS, (name) => `blocks can only be {{#if …}} or {{#unless …}}, not "${name}"`);
        this.program(block.program);
        this.program(block.inverse);
        break;
      }
      case 'PartialStatement':
      case 'PartialBlockStatement':
        this.report(node, 'partials ({{> name}}) are not available in mail templates');
        break;
      case 'Decorator':
      case 'DecoratorBlock':
        this.report(node, 'decorators are not available in mail templates');
        break;
    }
  }

  private mustache(node: hbs.AST.MustacheStatement): void {
    if (!node.escaped && this.part === 'html') {
      this.report(
        node,
        'raw output {{{…}}} is not allowed in HTML templates: use {{…}}, or {{paragraphs body}} for multi-line text',
      );
    }
    if (node.path.type !== 'PathExpression') {
      this.report(node, 'expected a variable or helper name');
      return;
    }
    const path = node.path as hbs.AST.PathExpression;
    const name = helperName(path);
    if ((name !== null && this.inline.has(name)) || node.params.length > 0 || (node.hash?.pairs.length ?? 0) > 0) {
      this.call(node, this.inline, this.unknownHelper);
    } else {
      this.variable(path);
    }
  }

  private call(
    node: hbs.AST.MustacheStatement | hbs.AST.BlockStatement | hbs.AST.SubExpression,
    helpers: ReadonlyMap<string, number>,
    unknown: (name: string) => string,
  ): void {
    const name = helperName(node.path);
    const arity = name === null ? undefined : helpers.get(name);
    if (arity === undefined) {
      this.report(node, unknown((node.path as hbs.AST.PathExpression).original));
      return;
    }
    if (node.params.length !== arity) {
      this.report(node, `${name} takes ${arity} value${arity === 1 ? '' : 's'}, got ${node.params.length}`);
    }
    for (const param of node.params) this.expression(param);
    for (const pair of node.hash?.pairs ?? []) this.expression(pair.value);
  }

  private expression(node: hbs.AST.Expression): void {
    if (node.type === 'PathExpression') {
      this.variable(node as hbs.AST.PathExpression);
    } else if (node.type === 'SubExpression') {
      const sub = node as hbs.AST.SubExpression;
      this.call(sub, this.inline, this.unknownHelper);
    }
  }

  private variable(path: hbs.AST.PathExpression): void {
    let name: string | null = null;
    if (!path.data && path.depth === 0) name = path.parts.join('.');
    else if (path.data && path.parts[0] === 'root') name = path.parts.slice(1).join('.');
    if (name === null || !this.variables.has(name)) {
      this.report(
        path,
        `unknown variable "${path.original}" (${this.kind} templates can use: ${[...this.variables].join(', ')})`,
      );
    }
  }

  private readonly unknownHelper = (name: string): string =>
    `unknown helper "${name}" (available: ${[...this.inline.keys()].join(', ')}; blocks: #if, #unless)`;

  private report(node: hbs.AST.Node, message: string): void {
    this.problems.push({ line: node.loc.start.line, message });
  }
}

// Templates outside a language folder are the default set, which ships in English.
const DEFAULT_LOCALE = 'en';
// Any zone other than UTC, so `templates check` exercises zone names too.
export const SAMPLE_TIME_ZONE = 'Europe/Berlin';

export function formatData(lang: string | null, timeZone: string): FormatData {
  return { locale: lang ?? DEFAULT_LOCALE, timeZone };
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ').trim();
}

function templateKey(mailbox: string | null, lang: string | null, kind: TemplateKind, part: TemplatePart): string {
  return JSON.stringify([mailbox, lang, kind, part]);
}

function holdsTemplates(dir: string): boolean {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).some((name) => name.endsWith('.hbs'));
}

interface Scope {
  mailbox: string | null;
  lang: string | null;
}

class TemplateScanner {
  readonly files: TemplateFile[] = [];
  readonly problems: TemplateProblem[] = [];
  private readonly mailboxes: ReadonlySet<string>;
  private readonly languages: ReadonlySet<string> | null;

  constructor(
    private readonly dir: string,
    opts: TemplateLoadOptions,
  ) {
    this.mailboxes = new Set(opts.mailboxes);
    this.languages = opts.languages ? new Set(opts.languages.map((l) => l.toLowerCase())) : null;
  }

  scan(rel: string, scope: Scope): void {
    for (const name of readdirSync(join(this.dir, rel)).sort()) {
      if (name.startsWith('.')) continue;
      const relPath = rel === '' ? name : join(rel, name);
      const path = join(this.dir, relPath);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat?.isDirectory()) {
        if (rel === '' && OWN_FOLDERS.has(name)) continue;
        const child = this.childScope(scope, name);
        if (child) this.scan(relPath, child);
        else if (holdsTemplates(path)) {
          this.problems.push({
            file: path,
            line: null,
            message:
              'templates in this folder are never used: overrides go in <mailbox>/, <language>/ or <mailbox>/<language>/ ' +
              `(mailboxes: ${[...this.mailboxes].join(', ') || 'none'})`,
          });
        }
      } else if (stat?.isFile() && name.endsWith('.hbs')) {
        this.file(path, name, scope);
      }
    }
  }

  private file(path: string, name: string, scope: Scope): void {
    const match = FILE_NAME.exec(name);
    const kind = match?.[1];
    if (!match || kind === undefined || !isTemplateKind(kind)) {
      this.problems.push({
        file: path,
        line: null,
        message: `not a known template: names are <kind>.subject.hbs, <kind>.text.hbs or <kind>.html.hbs with kind one of ${TEMPLATE_KINDS.join(', ')}`,
      });
      return;
    }
    this.files.push({ path, kind, part: match[2] as TemplatePart, mailbox: scope.mailbox, lang: scope.lang });
  }

  private childScope(scope: Scope, name: string): Scope | null {
    if (scope.lang !== null) return null;
    if (scope.mailbox === null && this.mailboxes.has(name)) return { mailbox: name, lang: null };
    return this.isLanguage(name) ? { mailbox: scope.mailbox, lang: name.toLowerCase() } : null;
  }

  private isLanguage(name: string): boolean {
    return this.languages ? this.languages.has(name.toLowerCase()) : LANGUAGE_TAG.test(name);
  }
}

type Compiled = { ok: true; template: Template } | { ok: false; problems: TemplateProblem[] };

function compileFile(hb: Env, file: TemplateFile): Compiled {
  const fail = (line: number | null, message: string): Compiled => ({
    ok: false,
    problems: [{ file: file.path, line, message }],
  });
  const parsed = parseTemplateFile(hb, file.path);
  if (!parsed.ok) return { ok: false, problems: [{ file: file.path, ...parsed.problem }] };
  const { source, ast } = parsed;
  const checker = new TemplateChecker(file.kind, file.part, variablesOf(file.kind));
  checker.program(ast);
  if (checker.problems.length > 0) {
    return { ok: false, problems: checker.problems.map((p) => ({ file: file.path, ...p })) };
  }
  const template = hb.compile(ast, compileOptions(file.part));
  // Strict mode and helper checks only fire when the template runs.
  let rendered: string;
  try {
    rendered = template(sampleVars(file.kind), { data: formatData(file.lang, SAMPLE_TIME_ZONE) });
  } catch (error) {
    return { ok: false, problems: [{ file: file.path, ...templateProblem(error, source) }] };
  }
  if (file.part === 'subject' && TEMPLATE_SCHEMA[file.kind].audience === 'customer') {
    if (!rendered.includes(`[${TEMPLATE_SCHEMA[file.kind].variables.ref.sample}]`)) {
      return fail(null, 'customer subjects must contain the reference tag [{{ref}}] so replies reach the same ticket');
    }
  }
  return { ok: true, template };
}

/** Compiles the files of one kind into `into`; returns the problems found. */
function compileKind(hb: Env, files: readonly TemplateFile[], into: Map<string, Template>): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  for (const file of files) {
    const compiled = compileFile(hb, file);
    if (compiled.ok) into.set(templateKey(file.mailbox, file.lang, file.kind, file.part), compiled.template);
    else problems.push(...compiled.problems);
  }
  return problems;
}

/**
 * The compiled mail templates of one templates directory. Immutable to its
 * users: a reload loads a new registry and swaps it in only when loading
 * succeeded. Kinds left out of `kinds` at load are compiled on first render.
 */
export class TemplateRegistry {
  private constructor(
    readonly dir: string,
    /** Every template file that was loaded, sorted by path. */
    readonly files: readonly TemplateFile[],
    /** Language folders that hold at least one template; the top level is the default language. */
    readonly languages: readonly string[],
    private readonly hb: Env,
    private readonly templates: Map<string, Template>,
    /** Kinds not compiled yet, with their files. */
    private readonly pending: Map<TemplateKind, TemplateFile[]>,
  ) {}

  static load(dir: string, opts: TemplateLoadOptions): TemplateLoadResult {
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      return { ok: false, errors: [{ file: dir, line: null, message: 'templates directory not found' }] };
    }
    const scanner = new TemplateScanner(dir, opts);
    scanner.scan('', { mailbox: null, lang: null });
    const problems = [...scanner.problems];
    const files = scanner.files.sort((a, b) => a.path.localeCompare(b.path));

    const present = new Set(files.map((f) => templateKey(f.mailbox, f.lang, f.kind, f.part)));
    for (const kind of TEMPLATE_KINDS) {
      for (const part of TEMPLATE_PARTS) {
        if (!present.has(templateKey(null, null, kind, part))) {
          problems.push({
            file: join(dir, `${kind}.${part}.hbs`),
            line: null,
            message: 'missing: every kind needs its subject, text and html template at the top of the templates directory',
          });
        }
      }
    }

    const owners = new Map<string, string>();
    const pending = new Map<TemplateKind, TemplateFile[]>();
    for (const file of files) {
      const key = templateKey(file.mailbox, file.lang, file.kind, file.part);
      const earlier = owners.get(key);
      if (earlier !== undefined) {
        problems.push({ file: file.path, line: null, message: `same template as ${earlier} (folder names differ only in case)` });
        continue;
      }
      owners.set(key, file.path);
      pending.set(file.kind, [...(pending.get(file.kind) ?? []), file]);
    }

    const hb = createEnvironment();
    const templates = new Map<string, Template>();
    const now = opts.kinds ?? TEMPLATE_KINDS;
    for (const kind of now) {
      problems.push(...compileKind(hb, pending.get(kind) ?? [], templates));
      pending.delete(kind);
    }

    if (problems.length > 0) {
      problems.sort((a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0));
      return { ok: false, errors: problems };
    }
    const languages = [...new Set(files.flatMap((f) => (f.lang === null ? [] : [f.lang])))].sort();
    return {
      ok: true,
      registry: new TemplateRegistry(dir, Object.freeze(files), Object.freeze(languages), hb, templates, pending),
    };
  }

  /** Kinds whose templates are compiled, in schema order. */
  compiledKinds(): TemplateKind[] {
    return TEMPLATE_KINDS.filter((kind) => !this.pending.has(kind));
  }

  /** Compiles a kind left for later at load; its problems make the render fail as a caller error would. */
  private ensureCompiled(kind: TemplateKind): void {
    const files = this.pending.get(kind);
    if (files === undefined) return;
    const compiled = new Map<string, Template>();
    const problems = compileKind(this.hb, files, compiled);
    if (problems.length > 0) {
      throw new TemplateRenderError(
        `${kind}: templates refused: ${problems.map((p) => `${p.file}${p.line !== null ? `:${p.line}` : ''}: ${p.message}`).join('; ')}`,
      );
    }
    for (const [key, template] of compiled) this.templates.set(key, template);
    this.pending.delete(kind);
  }

  /**
   * Renders one mail. Each part is looked up on its own in `<mailbox>/<lang>/`,
   * `<mailbox>/`, `<lang>/`, then the top level. Throws TemplateRenderError
   * only when the caller passes vars that don't match the schema.
   */
  render<K extends TemplateKind>(kind: K, vars: TemplateVars<K>, target: RenderTarget = {}): RenderedMail {
    if (!isTemplateKind(kind)) throw new TemplateRenderError(`unknown template kind "${String(kind)}"`);
    this.ensureCompiled(kind);
    const given = vars as Record<string, unknown>;
    const names = Object.keys(variablesOf(kind));
    const missing = names.filter((name) => given[name] === undefined || given[name] === null);
    if (missing.length > 0) {
      throw new TemplateRenderError(`${kind}: missing template variables: ${missing.join(', ')}`, missing);
    }
    // Only schema variables reach the template, matching what load validated against.
    const context = Object.fromEntries(names.map((name) => [name, given[name]]));
    const langs = languageCandidates(target.lang);
    const mailbox = target.mailbox ?? null;
    const scopes: Scope[] = [
      ...(mailbox === null ? [] : [...langs.map((lang) => ({ mailbox, lang })), { mailbox, lang: null }]),
      ...langs.map((lang) => ({ mailbox: null, lang })),
      { mailbox: null, lang: null },
    ];
    const timeZone = target.timeZone ?? 'UTC';
    const run = (part: TemplatePart): string => {
      for (const scope of scopes) {
        const template = this.templates.get(templateKey(scope.mailbox, scope.lang, kind, part));
        if (!template) continue;
        try {
          // Formatted in the language of the file found, which may be a fallback.
          return template(context, { data: formatData(scope.lang, timeZone) });
        } catch (error) {
          throw new TemplateRenderError(`${kind}.${part}: ${errorMessage(error)}`);
        }
      }
      throw new TemplateRenderError(`${kind}.${part}: no template loaded`);
    };
    return { subject: oneLine(run('subject')), text: run('text'), html: run('html') };
  }
}
