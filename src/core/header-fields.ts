// Header text read by hand rather than by mailparser: Message-ID lists, and
// header-style blocks such as the original headers and delivery-status fields
// inside a bounce. The parse and classify stages both read them.

/** Joins folded lines (RFC 5322 section 2.2.3): a line break followed by white space is not a break. */
export function unfold(text: string): string {
  return text.replace(/\r?\n(?=[ \t])/g, '');
}

/**
 * Reads `Name: value` fields from a header-style block (a header section, or
 * one block of a delivery-status report). Names are lower-cased, values
 * unfolded and trimmed; lines that are not fields are skipped.
 */
export function readFields(block: string): { name: string; value: string }[] {
  const fields: { name: string; value: string }[] = [];
  for (const line of unfold(block).split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === '' || /\s/.test(name)) continue;
    fields.push({ name, value: line.slice(colon + 1).trim() });
  }
  return fields;
}

/**
 * Message-IDs named in a Message-ID, In-Reply-To or References value, without
 * brackets. Bracketed ids win (they skip phrases and comments some clients put
 * around them); a value without any brackets is split on white space and commas.
 */
export function parseMessageIds(value: string): string[] {
  const bracketed = [...value.matchAll(/<([^<>\s]+)>/g)].map((m) => m[1] ?? '');
  const ids = bracketed.length > 0 ? bracketed : value.split(/[\s,]+/).map((id) => id.replace(/^<|>$/g, ''));
  return ids.filter((id) => id !== '');
}
