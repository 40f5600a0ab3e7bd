import { ImapFlow } from 'imapflow';
import type { ImapConfig } from '../../config/load-config.js';
import { resolveSecret } from '../../config/secrets.js';

/**
 * A new, not yet connected client for a mailbox's IMAP settings. A closed
 * ImapFlow cannot be reused, so every (re)connect builds one here. Automatic
 * IDLE is off: callers enter and leave IDLE where they can break it.
 *
 * COMPRESS=DEFLATE only when the mailbox asks for it (`imap.compress`): over
 * a compressed session Cyrus 3.6 stopped telling our IDLE about new mail
 * after 176 messages taken as they came, about 40 s (the benchmark's
 * `idle-cyrus` part: the last 24 of 200 waited for the next poll, while a
 * second session that only IDLEd heard of every one; uncompressed, ours
 * heard of all 200). Near the mail server, as ticketd mostly runs,
 * compression only costs CPU on both sides for every message fetched.
 */
export async function createImapClient(imap: ImapConfig, opts: { maxLiteralSize?: number } = {}): Promise<ImapFlow> {
  const secret = await resolveSecret(imap.auth);
  return new ImapFlow({
    host: imap.host,
    port: imap.port,
    secure: imap.secure,
    tls: { rejectUnauthorized: imap.tlsRejectUnauthorized },
    auth:
      secret.kind === 'password'
        ? { user: imap.auth.user, pass: secret.value }
        : { user: imap.auth.user, accessToken: secret.value },
    logger: false,
    disableAutoIdle: true,
    disableCompression: !imap.compress,
    ...(opts.maxLiteralSize !== undefined ? { maxLiteralSize: opts.maxLiteralSize } : {}),
  });
}
