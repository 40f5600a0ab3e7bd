import { randomInt } from 'node:crypto';

// Crockford base32 leaves out I, L, O and U so a reference read aloud or
// typed from paper cannot be mistaken; on input we map the look-alikes back.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const REFERENCE_CODE_LENGTH = 6;

export function newReference(prefix: string, random: (max: number) => number = randomInt): string {
  let code = '';
  for (let i = 0; i < REFERENCE_CODE_LENGTH; i++) code += ALPHABET[random(ALPHABET.length)];
  return `${prefix}-${code}`;
}

/** Canonical form of a code as a customer may have typed it, or null if it cannot be one. */
export function normalizeCode(code: string): string | null {
  const upper = code.toUpperCase().replace(/O/g, '0').replace(/[IL]/g, '1');
  if (upper.length !== REFERENCE_CODE_LENGTH) return null;
  for (const ch of upper) if (!ALPHABET.includes(ch)) return null;
  return upper;
}

const TAG = /\[\s*([A-Za-z][A-Za-z0-9]{1,9})\s*-\s*([0-9A-Za-z]{6})\s*\]/g;

/** Reference tags found in a subject for one of the given prefixes, canonicalised, in order. */
export function referencesInSubject(subject: string, prefixes: readonly string[]): string[] {
  const wanted = new Set(prefixes.map((p) => p.toUpperCase()));
  const found: string[] = [];
  for (const m of subject.matchAll(TAG)) {
    const prefix = m[1]!.toUpperCase();
    const code = normalizeCode(m[2]!);
    if (!wanted.has(prefix) || code === null) continue;
    const ref = `${prefix}-${code}`;
    if (!found.includes(ref)) found.push(ref);
  }
  return found;
}

/** A reference given on the command line, canonicalised; null when malformed. */
export function parseReference(text: string): string | null {
  const m = /^\s*\[?\s*([A-Za-z][A-Za-z0-9]{1,9})\s*-\s*([0-9A-Za-z]{6})\s*\]?\s*$/.exec(text);
  if (!m) return null;
  const code = normalizeCode(m[2]!);
  return code === null ? null : `${m[1]!.toUpperCase()}-${code}`;
}
