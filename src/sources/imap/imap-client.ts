import { ImapFlow } from 'imapflow';
import type { ImapConfig } from '../../config/load-config.js';
import { resolveSecret } from '../../config/secrets.js';

/**
 * A new, not yet connected client for a mailbox's IMAP settings. A closed
 * ImapFlow cannot be reused, so every (re)connect builds one here. Automatic
 * IDLE is off: callers enter and leave IDLE where they can break it.
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
    ...(opts.maxLiteralSize !== undefined ? { maxLiteralSize: opts.maxLiteralSize } : {}),
  });
}
