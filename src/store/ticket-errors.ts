// Refusals of ticket commands that depend on the ticket's state rather than
// on how the command was called; each carries a stable code for the CLI,
// the mail commands and the API to report.

export const STATUS_UNCHANGED = 'TICKETD_STATUS_UNCHANGED';
export const QUARANTINE_RELEASED = 'TICKETD_QUARANTINE_RELEASED';
export const HANDOFF_NOTE_REQUIRED = 'TICKETD_HANDOFF_NOTE_REQUIRED';
export const ASSIGNMENT_UNCHANGED = 'TICKETD_ASSIGNMENT_UNCHANGED';
export const QUEUE_UNKNOWN = 'TICKETD_QUEUE_UNKNOWN';
export const NOT_STAFF = 'TICKETD_NOT_STAFF';

/**
 * A status change to the status the ticket already has: recording it would
 * tell the customer twice that nothing happened, and an on-hold without a
 * new reason would wipe the reason they were given.
 */
export class StatusUnchangedError extends Error {
  readonly code = STATUS_UNCHANGED;
  constructor(ref: string, status: string, reason: string | null) {
    super(
      `${ref} is already ${status}${reason ? ` (${JSON.stringify(reason)})` : ''}` +
        (status === 'on-hold' ? '; give a different --reason to change the reason' : ''),
    );
  }
}

/** A quarantine entry already released (retried, or discarded) cannot be discarded again. */
export class QuarantineReleasedError extends Error {
  readonly code = QUARANTINE_RELEASED;
  constructor(id: number, outcome: string | null) {
    super(`quarantine entry #${id} was already released (${outcome ?? ''})`);
  }
}

/** A handoff without a note: the receiving side would have to ask the customer again. */
export class HandoffNoteRequiredError extends Error {
  readonly code = HANDOFF_NOTE_REQUIRED;
  constructor(ref: string) {
    super(`handing ${ref} on needs a note: what the next person needs to know`);
  }
}

/** An assignment to the queue and owner the ticket already has. */
export class AssignmentUnchangedError extends Error {
  readonly code = ASSIGNMENT_UNCHANGED;
  constructor(ref: string, queue: string | null, owner: string | null) {
    super(`${ref} is already with ${queue ?? 'no queue'}${owner ? ` (${owner})` : ''}`);
  }
}

/** A handoff to a queue that is not configured, while queues are. */
export class QueueUnknownError extends Error {
  readonly code = QUEUE_UNKNOWN;
  constructor(name: string, configured: readonly string[]) {
    super(`no queue named ${JSON.stringify(name)} (configured: ${configured.join(', ')})`);
  }
}

/** A ticket given to someone who is not an address, or not in any queue's staff while queues list staff. */
export class NotStaffError extends Error {
  readonly code = NOT_STAFF;
  constructor(text: string, why: 'not-an-address' | 'not-staff') {
    super(why === 'not-an-address' ? `not an address: ${JSON.stringify(text)}` : `${text} is not in the staff of any queue`);
  }
}
