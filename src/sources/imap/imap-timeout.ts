import { withDeadline } from '../../core/deadline.js';

export const IMAP_TIMEOUT = 'TICKETD_IMAP_TIMEOUT';

/** An IMAP operation that did not finish in time; the connection it ran on must not be trusted any more. */
export class ImapTimeoutError extends Error {
  readonly code = IMAP_TIMEOUT;

  constructor(
    readonly label: string,
    readonly ms: number,
  ) {
    super(`IMAP ${label} did not finish within ${ms} ms`);
    this.name = 'ImapTimeoutError';
  }
}

/**
 * Settles like `promise`, or rejects with ImapTimeoutError after `ms`. The
 * operation itself is not cancelled: the caller closes the connection.
 */
export function imapDeadline<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  return withDeadline(promise, ms, () => {
    throw new ImapTimeoutError(label, ms);
  });
}
