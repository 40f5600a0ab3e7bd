import parseAuthHeader from 'mailauth/lib/parse-dkim-headers.js';
import type { ParsedMessage, SenderAuthentication } from '../core/types.js';

export interface SenderAuthContext {
  /**
   * authserv-ids (RFC 8601 section 2.5) of the receiving MTAs whose results
   * count, lower-case; '' stands for the field Microsoft 365 writes without one.
   */
  trustedAuthservIds: readonly string[];
}

// RFC 8601 puts the authserv-id first; Microsoft 365 leaves it out and starts
// with the first result (`spf=pass ...`), which must not be read as an id.
const STARTS_WITH_RESULT = /^\s*[A-Za-z0-9_.-]+\s*=/;

/** The authserv-id of an Authentication-Results value, lower-case, '' when it has none. */
export function authservIdOf(value: string): string {
  if (STARTS_WITH_RESULT.test(value)) return '';
  const { parsed } = parseAuthHeader(`Authentication-Results: ${value}`);
  // The id may be followed by a version number (`mx.example.org 1`).
  return (parsed.value ?? '').trim().split(/\s+/)[0]!.toLowerCase();
}

function dmarcOf(value: string): { result: string; headerFrom: string | null } | null {
  const entry = parseAuthHeader(`Authentication-Results: ${value}`).parsed.dmarc;
  if (entry === undefined || typeof entry === 'string' || Array.isArray(entry) || !entry.value) return null;
  return { result: entry.value.toLowerCase(), headerFrom: entry.header?.from?.toLowerCase() ?? null };
}

/**
 * The DMARC result a trusted receiving MTA stamped on the message, or null
 * when none did. Receiving MTAs add their Authentication-Results at the top,
 * so the fields are read from the top down and reading stops at the first
 * one that does not come from a trusted authserv-id: that is the trace
 * boundary, and everything below it (whatever id it claims) arrived with the
 * message. The MTA must also strip incoming fields that claim its own id
 * (docs/sender-authentication.md). Pure: everything comes from the message and `ctx`.
 */
export function senderAuthentication(msg: ParsedMessage, ctx: SenderAuthContext): SenderAuthentication | null {
  if (ctx.trustedAuthservIds.length === 0) return null;
  const trusted = new Set(ctx.trustedAuthservIds.map((id) => id.toLowerCase()));
  for (const value of msg.headers.get('authentication-results') ?? []) {
    const authservId = authservIdOf(value);
    if (!trusted.has(authservId)) break;
    const dmarc = dmarcOf(value);
    if (dmarc !== null) return { authservId, dmarc: dmarc.result, headerFrom: dmarc.headerFrom };
  }
  return null;
}
