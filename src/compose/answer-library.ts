// The library of vetted answers: texts the operators wrote once, so every
// agent states the same policy in the same words. Staff insert one by name
// (`#answer NAME` in a reply mail, `--answer NAME` on the command line); it
// is rendered in the ticket's language and sent as part of the agent reply.
//
// Layout, beside the mail templates:
//   templates/answers/NAME.text.hbs        the default language (English as shipped)
//   templates/answers/LANG/NAME.text.hbs   the same answer in another language
// Every answer exists in the default language, so a ticket in a language the
// library lacks still gets one.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ANSWER_NAME } from '../core/types.js';
import {
  compileOptions,
  createEnvironment,
  formatData,
  SAMPLE_TIME_ZONE,
  TemplateChecker,
  type TemplateProblem,
} from './template-registry.js';
import { ANSWER_VARIABLES, type AnswerVars } from './template-schema.js';
import { errorMessage, languageCandidates, parseTemplateFile, templateProblem, walkLanguageFolders } from './template-source.js';

export const ANSWER_UNKNOWN = 'TICKETD_ANSWER_UNKNOWN';

const FILE_NAME = /^(.+)\.text\.hbs$/;

export type AnswerLoadResult = { ok: true; library: AnswerLibrary } | { ok: false; errors: TemplateProblem[] };

/** An answer rendered for one ticket; `lang` is the language folder used, null for the default language. */
export type AnswerRender = { ok: true; name: string; text: string; lang: string | null } | { ok: false; why: string };

export class AnswerUnknownError extends Error {
  readonly code = ANSWER_UNKNOWN;
  constructor(why: string) {
    super(why);
  }
}

type Template = HandlebarsTemplateDelegate;

function key(lang: string | null, name: string): string {
  return `${lang ?? ''}/${name}`;
}

function sampleVars(): AnswerVars {
  return Object.fromEntries(Object.entries(ANSWER_VARIABLES).map(([n, v]) => [n, String(v.sample)])) as AnswerVars;
}

/** The compiled answers of one templates directory; immutable, swapped whole on reload like the mail templates. */
export class AnswerLibrary {
  private constructor(
    /** Every answer file loaded, sorted by path. */
    readonly files: readonly string[],
    private readonly templates: ReadonlyMap<string, Template>,
    /** The names of the answers, sorted. */
    readonly names: readonly string[],
  ) {}

  static readonly empty = new AnswerLibrary([], new Map(), []);

  /**
   * Loads and checks every answer under `dir` (a missing folder is an empty
   * library). Each file is checked as the mail templates are: only the
   * answer variables, known helpers, no partials; then rendered once with
   * sample values.
   */
  static load(dir: string): AnswerLoadResult {
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return { ok: true, library: AnswerLibrary.empty };
    const hb = createEnvironment();
    const problems: TemplateProblem[] = [];
    const templates = new Map<string, Template>();
    const files: string[] = [];
    const byLang = new Map<string | null, string[]>();

    const loadFile = (path: string, name: string, lang: string | null) => {
      const answer = FILE_NAME.exec(name)?.[1];
      if (answer === undefined || !ANSWER_NAME.test(answer)) {
        problems.push({
          file: path,
          line: null,
          message: 'not an answer: names are NAME.text.hbs, NAME in lower case letters, digits, - and _ (up to 64)',
        });
        return;
      }
      if (templates.has(key(lang, answer))) {
        problems.push({ file: path, line: null, message: 'same answer twice (folder names differ only in case)' });
        return;
      }
      const parsed = parseTemplateFile(hb, path);
      if (!parsed.ok) {
        problems.push({ file: path, ...parsed.problem });
        return;
      }
      const checker = new TemplateChecker('answer', 'text', ANSWER_VARIABLES);
      checker.program(parsed.ast);
      if (checker.problems.length > 0) {
        problems.push(...checker.problems.map((p) => ({ file: path, ...p })));
        return;
      }
      const template = hb.compile(parsed.ast, compileOptions('text'));
      try {
        template(sampleVars(), { data: formatData(lang, SAMPLE_TIME_ZONE) });
      } catch (error) {
        problems.push({ file: path, ...templateProblem(error, parsed.source) });
        return;
      }
      templates.set(key(lang, answer), template);
      files.push(path);
      byLang.set(lang, [...(byLang.get(lang) ?? []), answer]);
    };

    walkLanguageFolders(dir, loadFile, problems);

    const defaults = new Set(byLang.get(null) ?? []);
    for (const [lang, names] of byLang) {
      if (lang === null) continue;
      for (const name of names) {
        if (!defaults.has(name)) {
          problems.push({
            file: join(dir, lang, `${name}.text.hbs`),
            line: null,
            message: `no ${name}.text.hbs at the top of answers/: every answer needs its default-language text, which tickets in other languages get`,
          });
        }
      }
    }
    if (problems.length > 0) {
      problems.sort((a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0));
      return { ok: false, errors: problems };
    }
    return { ok: true, library: new AnswerLibrary(Object.freeze(files.sort()), templates, Object.freeze([...defaults].sort())) };
  }

  /**
   * Renders an answer in the reader's language (`de-CH` tries `de-ch`, then
   * `de`, then the default language). An unknown name is refused with the
   * names there are.
   */
  render(name: string, vars: AnswerVars, lang: string | null | undefined): AnswerRender {
    const wanted = name.toLowerCase();
    if (!this.names.includes(wanted)) {
      const known = this.names.length > 0 ? `known: ${this.names.join(', ')}` : 'the library under templates/answers/ is empty';
      return { ok: false, why: `no answer named ${JSON.stringify(name)} (${known})` };
    }
    for (const folder of [...languageCandidates(lang), null]) {
      const template = this.templates.get(key(folder, wanted));
      if (!template) continue;
      try {
        return { ok: true, name: wanted, text: template(vars, { data: formatData(folder, 'UTC') }).trim(), lang: folder };
      } catch (error) {
        return { ok: false, why: `answer ${wanted}: ${errorMessage(error)}` };
      }
    }
    return { ok: false, why: `no answer named ${JSON.stringify(name)}` };
  }
}
