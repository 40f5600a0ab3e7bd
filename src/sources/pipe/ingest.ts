// Delivery by an MTA to a command (Postfix pipe(8), local(8) mailbox_command,
// a .forward "|command"): one message on stdin, the verdict in the exit code.

import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { takeMessages, type Pipeline } from '../../pipeline/take-messages.js';
import type { IntakeResult } from '../../store/store.js';

/** An mbox envelope line ("From sender date"), which is not a header; "From:" and "From :" are headers. */
const ENVELOPE_LINE = /^From (?![\t ]*:)/;

/**
 * Drops the mbox "From sender date" line that local(8) and sendmail put in
 * front of a message delivered to a command, so the message starts at its
 * first header as it would in a mailbox.
 */
export function stripEnvelopeLine(raw: Buffer): Buffer {
  if (!ENVELOPE_LINE.test(raw.subarray(0, 16).toString('latin1'))) return raw;
  const eol = raw.indexOf(0x0a);
  return eol < 0 ? Buffer.alloc(0) : raw.subarray(eol + 1);
}

/**
 * Reads one piped message to the end. The whole message is kept even over
 * `limits.maxMessageBytes`: the pipeline quarantines it, and the stored copy
 * is what `quarantine retry` takes once the limit was raised. The MTA's own
 * size limit bounds what arrives here.
 */
export async function readPipedMessage(input: Readable): Promise<Buffer> {
  return stripEnvelopeLine(await buffer(input));
}

/**
 * Takes piped messages for one mailbox in one transaction. Resolves once
 * they are committed (taken, duplicate or quarantined: in every case safe in
 * the database); rejects when nothing was committed, which is the moment to
 * tell the MTA to try again later.
 */
export function ingestMessages(p: Pipeline, mailbox: string, messages: Buffer[]): Promise<IntakeResult[]> {
  return takeMessages(
    p,
    messages.map((raw) => ({ origin: { via: 'pipe', mailbox }, raw })),
  );
}
