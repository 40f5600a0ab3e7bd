import { parseAddressHeader, type AddressObject, type EmailAddress, type HeaderLines, type HeaderValue } from 'mailparser';
import { unfold } from '../core/header-fields.js';
import type { Address } from '../core/types.js';

/**
 * Header map from mailparser's raw header lines: nothing decoded, so what a
 * later stage compares (Auto-Submitted, List-Id, ...) is what the sender wrote.
 * Lines arrive as binary strings; 8-bit UTF-8 headers are read back as UTF-8.
 */
export function rawHeaderMap(lines: HeaderLines): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const { key, line } of lines) {
    const text = unfold(Buffer.from(line, 'binary').toString('utf8'));
    const colon = text.indexOf(':');
    const value = colon < 0 ? '' : text.slice(colon + 1).trim();
    const values = map.get(key);
    if (values) values.push(value);
    else map.set(key, [value]);
  }
  return map;
}

function flatten(entries: EmailAddress[]): EmailAddress[] {
  return entries.flatMap((entry) => (entry.group ? flatten(entry.group) : [entry]));
}

function toAddress(entry: EmailAddress): Address | null {
  if (entry.address) return { address: entry.address.toLowerCase(), name: entry.name };
  // A bare local part such as `From: MAILER-DAEMON (Mail Delivery System)`
  // comes back as a name without an address; it is the address.
  if (/^[^\s@<>()",;:]+$/.test(entry.name)) return { address: entry.name.toLowerCase(), name: '' };
  return null;
}

/** Mailboxes of a parsed address header (groups flattened), addresses lower-cased. */
export function addressList(value: HeaderValue | undefined): Address[] {
  if (value === undefined) return [];
  const objects = (Array.isArray(value) ? value : [value]) as AddressObject[];
  return objects
    .flatMap((object) => flatten(object.value ?? []))
    .map(toAddress)
    .filter((address) => address !== null);
}

/** A mailbox that can be written to: a local part, `@`, a domain. */
function deliverable(address: Address): boolean {
  return /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address.address);
}

/**
 * Who sent a message, from its raw header values (name to values, as
 * `rawHeaderMap` gives them). The first deliverable From wins, so of two
 * From lines the first usable one counts; a message without one falls back
 * to Reply-To, then Sender, then the envelope's Return-Path, which name the
 * same person or their system when a mail program lost or mangled From.
 * With none of them deliverable, a bare From such as `MAILER-DAEMON` is still
 * returned, for the classify stage to recognise.
 */
export function senderAddress(headers: Map<string, string[]>): Address | null {
  const parsed = (name: string): Address[] => addressList(parseAddressHeader(headers.get(name) ?? []));
  const from = parsed('from');
  for (const name of ['reply-to', 'sender', 'return-path']) {
    if (from.some(deliverable)) break;
    const fallback = parsed(name).find(deliverable);
    if (fallback) return fallback;
  }
  return from.find(deliverable) ?? from[0] ?? null;
}
