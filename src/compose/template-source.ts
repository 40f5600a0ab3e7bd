// What the mail templates and the status page templates share: reading a
// file, turning handlebars' errors into file-and-line problems, and the
// language fallback order. Each loader keeps its own rules on top.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type Handlebars from 'handlebars';

type Env = typeof Handlebars;

/** A folder name that reads as a language tag: `de`, `pt-br`. */
export const LANGUAGE_TAG = /^[a-z]{2,3}(-[a-z0-9]{2,8})*$/i;

/**
 * Visits the files of a template folder laid out as the status page and the
 * answers are: files of the default language at the top (`lang` null), one
 * level of language folders (`de/`, `pt-br/`) beside them. Any other folder is
 * a problem. Names are visited sorted, hidden ones skipped.
 */
export function walkLanguageFolders(
  dir: string,
  onFile: (path: string, name: string, lang: string | null) => void,
  problems: { file: string; line: number | null; message: string }[],
): void {
  const walk = (folder: string, lang: string | null) => {
    for (const name of readdirSync(folder).sort()) {
      if (name.startsWith('.')) continue;
      const path = join(folder, name);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat?.isDirectory()) {
        if (lang === null && LANGUAGE_TAG.test(name)) walk(path, name.toLowerCase());
        else problems.push({ file: path, line: null, message: 'only language folders (like de/ or pt-br/) are read here' });
      } else if (stat?.isFile()) {
        onFile(path, name, lang);
      }
    }
  };
  walk(dir, null);
}

export interface SourceProblem {
  line: number | null;
  message: string;
}

/** Reads and parses one template; a byte-order mark some editors save is dropped. */
export function parseTemplateFile(
  hb: Env,
  path: string,
): { ok: true; source: string; ast: hbs.AST.Program } | { ok: false; problem: SourceProblem } {
  let source: string;
  try {
    source = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  } catch (error) {
    return { ok: false, problem: { line: null, message: `cannot read: ${errorText(error)}` } };
  }
  try {
    return { ok: true, source, ast: hb.parse(source) };
  } catch (error) {
    return { ok: false, problem: templateProblem(error, source) };
  }
}

/** A handlebars parse or render error as a line and a message an operator can act on. */
export function templateProblem(error: unknown, source: string): SourceProblem {
  const text = errorText(error);
  const missing = /^"([^"]+)" not defined/.exec(text);
  return { line: errorLine(error, text, source, missing?.[1]), message: missing ? `unknown variable "${missing[1]}"` : text };
}

/** The message of a render error, without handlebars' trailing position. */
export function errorMessage(error: unknown): string {
  return templateProblem(error, '').message;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/ - \d+:\d+$/, '');
}

function errorLine(error: unknown, text: string, source: string, missing: string | undefined): number | null {
  const lineNumber = (error as { lineNumber?: unknown } | null)?.lineNumber;
  if (typeof lineNumber === 'number') return lineNumber;
  const parseLine = /^Parse error on line (\d+)/.exec(text);
  if (parseLine) return Number(parseLine[1]);
  // Strict-mode lookups don't always carry a location: point at where the name first appears.
  if (missing) {
    const index = source.split('\n').findIndex((line) => line.includes(missing));
    return index === -1 ? null : index + 1;
  }
  return null;
}

/** The name of a plain helper call (`{{eq a b}}`), or null for a path like `a.b` or `@root`. */
export function helperName(node: hbs.AST.Node): string | null {
  if (node.type !== 'PathExpression') return null;
  const p = node as hbs.AST.PathExpression;
  return !p.data && p.depth === 0 && p.parts.length === 1 ? (p.parts[0] ?? null) : null;
}

/** Folders to try for a reader's language: `de-CH` becomes `de-ch`, then `de`. */
export function languageCandidates(lang: string | null | undefined): string[] {
  const subtags = (lang ?? '').trim().toLowerCase().replace(/_/g, '-').split('-').filter(Boolean);
  const out: string[] = [];
  for (let n = subtags.length; n > 0; n--) out.push(subtags.slice(0, n).join('-'));
  return out;
}
