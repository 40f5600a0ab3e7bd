// The one seam between the pipeline and persistence. Everything the daemon
// and the CLI persist or read goes through `Store`, composed of narrow
// interfaces (intake, mailbox cursors, outbox queue, ticket commands,
// quarantine) that each caller can take on its own. Its rules are written
// once over SqlEngine (sql-store.ts and the files it composes); an engine
// (SQLite, PostgreSQL) only runs named queries and transactions.

import type { Clock } from '../core/clock.js';
import type {
  Address,
  AutoReplyTarget,
  Classification,
  MessageOrigin,
  OutboundDraft,
  ParsedMessage,
  SenderAuthentication,
  TicketStatus,
} from '../core/types.js';
import type { StatusLinks } from '../core/status-links.js';
import type { OutboxClaims } from '../outbox/outbox-claims.js';
import type { SqlTransaction } from './sql-engine.js';

/** What the pipeline decided about a parsed message, for the store to apply. */
export interface IntakeStageOk {
  ok: true;
  message: ParsedMessage;
  classification: Classification;
  /** Where an automatic reply would go, or why none may (decided in the pipeline, by classify). */
  replyTarget: AutoReplyTarget;
  /** A trusted receiving MTA's DMARC verdict; absent or null when none was stamped or none is trusted. */
  senderAuth?: SenderAuthentication | null;
  /** Where routing sends the ticket if the message opens one; absent when no routing ran. */
  route?: TicketRoute | null;
  /** A staff member's mail, read (commands and new text); absent when the sender is not staff. */
  staffMail?: StaffReply | null;
}

/** What a line of `#` commands at the top of a staff member's mail asks for. */
export type StaffCommand =
  | { kind: 'note' }
  | { kind: 'status'; status: TicketStatus; reason: string | null }
  | { kind: 'assign'; target: string; note: string }
  | { kind: 'resolve' }
  | { kind: 'answer'; name: string };

/** A vetted answer rendered for a ticket; `lang` is the language folder its text came from, null for the default. */
export interface RenderedAnswer {
  name: string;
  text: string;
  lang: string | null;
}

/** Who inserted an answer and how: each use is an internal `answer_used` event the report counts. */
export interface AnswerUse {
  name: string;
  lang: string | null;
  by: string;
  via: 'mail' | 'cli';
}

/** A staff member's mail to a ticket, read: the commands it starts with, and its own text without the quoted history. */
export interface StaffReply {
  commands: StaffCommand[];
  /** The text after the command lines, quoted history and signature removed. */
  body: string;
  /** Command lines that could not be read, each with why: nothing of the mail is acted on then. */
  problems: string[];
}

/** What the routing rules decided for a new ticket (classify/route.ts). */
export interface TicketRoute {
  rule: string | null;
  queue: string | null;
  priority: string | null;
  tags: string[];
}

/** A message that went through parse and classify, or failed there. */
export interface IntakeItem {
  origin: MessageOrigin;
  raw: Buffer;
  stage: IntakeStageOk | { ok: false; reason: string };
}

export type IntakeOutcome = 'taken' | 'threaded' | 'recorded' | 'ignored' | 'duplicate' | 'quarantined';

export interface IntakeResult {
  origin: MessageOrigin;
  outcome: IntakeOutcome;
  reason: string;
  ref: string | null;
  /** The automatic reply queued with it, if any. */
  ackQueued: boolean;
  quarantineId: number | null;
}

/** What a composer gets to write an automatic reply for a new ticket. */
export interface AckRequest {
  ticket: TicketRow;
  /** The address the pipeline chose for automatic replies (RFC 3834 section 4), not necessarily `ticket.replyTo`. */
  to: Address;
  inbound: ParsedMessage;
  statusUrl: string;
  queuePosition: number;
}

/** What the store knows about a ticket that a message may belong to. */
export interface TicketSnapshot {
  id: number;
  ref: string;
  status: TicketStatus;
  participants: string[];
  closedAt: number | null;
}

/** Everything the thread stage looks at besides the message; read by the store inside the intake transaction. */
export interface ThreadContext {
  /** Tickets found through In-Reply-To/References, most specific first. */
  byMessageId: TicketSnapshot[];
  /** Tickets found through a reference tag in the subject, in subject order. */
  byReference: TicketSnapshot[];
  /** Automatic replies already sent in the last hour to the address this one would go to. */
  acksLastHour: number;
  /** Tickets opened in the last hour whose automatic reply goes to that same address. */
  ticketsLastHour: number;
  /** That address is suppressed (it hard-bounced before). */
  senderSuppressed: boolean;
  /** Why the pipeline found nobody fit for an automatic reply, or that it must not get one (`dmarc-fail`). */
  replyWithheld?: string | null;
  /** Automatic replies queued in the last hour, to anyone. */
  autoRepliesLastHour?: number;
  /**
   * The ticket whose staff notice (new-ticket or handoff notice) the message
   * answers by its In-Reply-To/References, or null. Mail from staff about a
   * ticket never reaches the thread stage, so such an answer here is from
   * someone who is not staff, or from a staff address a trusted MTA found forged.
   */
  staffNoticeAnswered?: number | null;
  now: number;
}

export interface ThreadRules {
  reopenWindowDays: number;
  acksPerSenderPerHour: number;
  ticketsPerSenderPerHour: number;
  /** The global hourly cap on automatic replies; absent means none. */
  autoRepliesPerHour?: number;
}

export type ThreadVerdict =
  | { action: 'new-ticket'; linkTo: number | null; ackSuppressedBy: string | null; reason: string }
  | { action: 'thread'; ticketId: number; newStatus: TicketStatus | null; reason: string }
  | { action: 'record'; ticketId: number | null; reason: string }
  | { action: 'ignore'; reason: string }
  /** Kept aside for an operator, not taken: nothing is stored with a ticket, nothing is sent. */
  | { action: 'quarantine'; ticketId: number; reason: string };

/**
 * The thread stage as the store runs it: pure functions given when the store
 * is made (thread/decide-thread.ts, thread/reference.ts), so the store only
 * reads the facts and records the verdict.
 */
export interface ThreadStage {
  /** Where a message goes: new ticket (with or without acknowledgement), thread, record, ignore or quarantine. */
  decide(msg: ParsedMessage, cls: Classification, ctx: ThreadContext, rules: ThreadRules): ThreadVerdict;
  /** Ticket references quoted in a subject, in order. */
  referencesIn(subject: string, prefixes: readonly string[]): string[];
}

/** Why a ticket changed; the SLA engine recomputes its deadlines on each. */
export type TicketChange = 'created' | 'customer-reply' | 'reopened' | 'agent-reply' | 'status' | 'handoff';

/** Given when the store is made. */
export interface StoreHooks {
  /**
   * Called inside the transaction that changed a ticket, with that
   * transaction, so whatever it writes (SLA deadlines) commits or rolls back
   * together with the change.
   */
  afterTicketChange?(tx: SqlTransaction, ticketId: number, change: TicketChange, now: number): Promise<void>;
}

/** Decisions the store needs from the pipeline while it holds the transaction. Pure functions: none reads the database. */
export interface IntakePolicy {
  clock: Clock;
  rulesFor(mailbox: string): ThreadRules;
  /** Our own addresses, never made participants of a ticket. */
  ownAddresses: readonly string[];
  referencePrefixes: readonly string[];
  newReference(mailbox: string): string;
  composeAck(req: AckRequest): OutboundDraft;
  links: StatusLinks;
  statusUrl(token: string): string;
  /** Staff mail: notices of new tickets, and mail from staff to a ticket; absent when no queues are configured. */
  staff?: StaffMailPolicy;
}

/** A mail to a ticket's requester, made inside the transaction that queues it: their status link and the conversation's thread. */
export type ComposeToRequester = (
  ticket: TicketRow,
  statusUrl: string,
  thread: { inReplyTo: string | null; references: string[] },
) => OutboundDraft;

/** How the intake transaction treats a staff member's mail to a ticket (see classify/staff-reply.ts). */
export interface StaffMailPolicy {
  /** What a `#assign` target names: a configured queue or a staff address; null when neither. */
  assignTarget(target: string): AssignmentChange | null;
  /**
   * The staff member's text, then the answers it inserts, as the agent reply
   * to the requester; `resolving` when it goes with the resolution (it
   * offers the rating).
   */
  composeReply(
    ticket: TicketRow,
    body: string,
    answers: readonly RenderedAnswer[],
    statusUrl: string,
    thread: { inReplyTo: string | null; references: string[] },
    opts: { resolving: boolean },
  ): OutboundDraft;
  /** The resolution mail when a staff mail resolves the ticket without text for the customer; it invites a rating. */
  composeResolved: ComposeToRequester;
  /** The answers `#answer` names, rendered for the ticket; the first unknown name refuses the mail. */
  answers(ticket: TicketRow, names: readonly string[]): { ok: true; answers: RenderedAnswer[] } | { ok: false; why: string };
  /** What a handoff made by mail tells the receiving side. */
  notifyHandoff(req: HandoffNoticeRequest): Promise<OutboundDraft[]>;
  /** Who hears of a new ticket in its queue (the queue's notify address, else its staff); none for a ticket without a queue. */
  newTicketRecipients(ticket: TicketRow): string[];
  /** The notices of a new ticket, one per recipient, each with that recipient's status link. */
  composeNewTicketNotice(
    ticket: TicketRow,
    request: string,
    recipients: readonly string[],
    ticketUrl: (recipient: string) => string,
  ): OutboundDraft[];
}

export interface TicketRow {
  id: number;
  ref: string;
  mailbox: string;
  status: TicketStatus;
  subject: string;
  requester: string;
  requesterName: string;
  /** Where a person's reply goes: Reply-To, else From (RFC 5322 section 3.6.2). */
  replyTo: string;
  /** Where automatic mail goes (RFC 3834 section 4); null when nobody was fit, absent on rows read without it. */
  ackTo?: string | null;
  language: string | null;
  priority: string;
  onHoldReason: string | null;
  /** The queue (team) working it: set by routing, changed by handoffs; absent on rows read without it. */
  queue?: string | null;
  /** Read as `queue` before queues existed; rows built by older code may still carry it. */
  team?: string | null;
  /** The one person working it, if anyone took it. */
  owner?: string | null;
  tags?: string[];
  linkedTo: number | null;
  createdAt: number;
  updatedAt: number;
  firstResponseAt: number | null;
  resolvedAt: number | null;
  closedAt: number | null;
}

export interface TicketSummary {
  ref: string;
  status: TicketStatus;
  subject: string;
  requester: string;
  mailbox: string;
  /** The queue working the ticket. */
  queue: string | null;
  /** The same, under its name before queues: kept in `tickets list --json` and `tickets show --json` for one release. */
  team: string | null;
  createdAt: string;
  messageCount: number;
  linkedTo: string | null;
}

/** What the pipeline decided about the ticket's automatic reply, and why staff should look twice. */
export interface TicketAutoReply {
  /** Why staff should look twice, e.g. `dmarc-fail` (a trusted MTA found the sender forged); null when nothing is wrong. */
  flag: string | null;
  /** Where the acknowledgement went, or would have gone; null when there was nobody fit to write to. */
  ackTo: string | null;
  /** Why no acknowledgement went out (see docs/answering-and-threading.md); null when one did. */
  ackWithheld: string | null;
}

export interface MessageSummary {
  id: number;
  direction: 'in' | 'out';
  kind: string;
  from: string;
  to: string[];
  subject: string;
  messageId: string;
  date: string;
  text: string;
  public: boolean;
}

export interface TicketEvent {
  type: string;
  public: boolean;
  detail: Record<string, unknown>;
  at: number;
}

/** The requester's rating of a ticket from its status page (rules in ratings.ts). */
export interface TicketRating {
  score: number;
  comment: string;
  at: number;
}

/** One handoff: from which queue and owner to which, by whom and why. */
export interface HandoffRecord {
  fromQueue: string | null;
  toQueue: string | null;
  fromOwner: string | null;
  toOwner: string | null;
  by: string | null;
  note: string;
  at: number;
}

export interface TicketDetail extends TicketSummary, TicketAutoReply {
  queue: string | null;
  owner: string | null;
  priority: string;
  tags: string[];
  messages: MessageSummary[];
  events: TicketEvent[];
  handoffs: HandoffRecord[];
  /** The requester's rating from the status page, the latest one; null when they gave none. */
  rating: TicketRating | null;
}

/** A change of queue and/or owner asked for; absent fields stay as they are. */
export interface AssignmentChange {
  queue?: string;
  /** An address, or null to give the ticket back to its queue. */
  owner?: string | null;
}

/** What the receiving queue is told, composed inside the transaction that records the handoff. */
export interface HandoffNoticeRequest {
  ticket: TicketRow;
  handoff: HandoffRecord;
  /** The ticket so far, oldest first: its messages and events (notes included). */
  detail: TicketDetail;
  /** Message-IDs of the staff mail about this ticket sent so far, oldest first, to thread the notice under. */
  staffThread: string[];
  /** The ticket's status link for a recipient, issued in the handoff's transaction. */
  statusToken(recipient: string, links: StatusLinks): Promise<string>;
}

export interface ImapCursor {
  uidValidity: number;
  lastUid: number;
}

export interface UnsettledReceipt {
  uid: number;
  outcome: IntakeOutcome;
}

export interface QuarantineEntry {
  id: number;
  mailbox: string;
  origin: MessageOrigin;
  reason: string;
  createdAt: number;
  releasedAt: number | null;
  releaseOutcome: string | null;
  size: number;
}

/** An outbox row as `ticketd outbox list` shows it. */
export interface OutboxEntry {
  id: number;
  mailbox: string;
  kind: string;
  envelopeTo: string[];
  subject: string;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  sentAt: number | null;
  /** The ticket the mail belongs to. */
  ref: string | null;
}

export interface OutboxCounts {
  pending: number;
  failed: number;
  sent: number;
}

/** The intake stage's side of the store. */
export interface IntakeStore {
  /** Takes a batch in one transaction (group commit); each item in its own savepoint. */
  takeBatch(items: IntakeItem[], policy: IntakePolicy): Promise<IntakeResult[]>;
}

/** What an IMAP worker keeps per mailbox: the cursor, the receipts of what it took, and when it last read. */
export interface MailboxCursors {
  getCursor(mailbox: string): Promise<ImapCursor | null>;
  /** Receipts of UIDs whose move/flag on the server is still owed. */
  unsettledReceipts(mailbox: string, uidValidity: number): Promise<UnsettledReceipt[]>;
  /** UIDs (of those given) that already have a receipt. */
  knownUids(mailbox: string, uidValidity: number, uids: number[]): Promise<Set<number>>;
  markSettled(mailbox: string, uidValidity: number, uids: number[], at: number): Promise<void>;
  /** Starts a new cursor when the server reports a new UIDVALIDITY. */
  resetCursor(mailbox: string, uidValidity: number, at: number): Promise<void>;
  /** A running worker started (`since`) or stopped (null) watching the mailbox; what doctor judges a stall by. */
  markWatched(mailbox: string, since: number | null): Promise<void>;
  /** The worker read the folder through, or committed a batch from it. */
  markRead(mailbox: string, at: number): Promise<void>;
}

/** The outbox worker's queue, and what `ticketd outbox` shows and retries. */
/** The outbox worker's queue, and what the CLI and health checks read of it. */
export interface OutboxQueue extends OutboxClaims {
  outboxCounts(): Promise<OutboxCounts>;
  /** Rows not sent yet (pending and failed), only the failed ones, or the one with `id`. */
  listOutbox(filter?: { failedOnly?: boolean; id?: number }): Promise<OutboxEntry[]>;
  /** Makes failed rows (one, or all) pending and due now, with the retry schedule started afresh; returns their ids. */
  requeueOutbox(which: { id: number } | 'failed', now: number): Promise<number[]>;
}

/** What staff do to tickets (the CLI), and what they read of them. */
export interface TicketCommands {
  /** `queue` matches whatever the case. */
  listTickets(filter?: { status?: TicketStatus; mailbox?: string; queue?: string }): Promise<TicketSummary[]>;
  ticketByRef(ref: string): Promise<TicketRow | null>;
  ticketDetail(ref: string): Promise<TicketDetail | null>;
  /** Open requests of the same mailbox ahead of this ticket: the acknowledgement, the page and the delay notice all use this. */
  queuePosition(t: TicketRow): Promise<number>;
  /**
   * An agent reply: the outbound message and its outbox row in one
   * transaction, with an `answer_used` event for each answer of the library
   * it carries.
   */
  addAgentReply(
    ref: string,
    compose: ComposeToRequester,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
    answers?: readonly AnswerUse[],
    /** Who wrote it, recorded on the ticket's reply event: a staff name, or `api:TOKEN` for the JSON API. */
    by?: string | null,
  ): Promise<TicketRow>;
  /**
   * Changes the status. The same status again is refused (StatusUnchangedError)
   * unless it is on-hold with a different reason; `reason` undefined keeps an
   * on-hold ticket's reason, null clears it.
   */
  setStatus(ref: string, status: TicketStatus, opts: { reason?: string | null; now: number }): Promise<TicketRow>;
  /**
   * Resolves a ticket without a last reply and queues the resolution mail
   * `compose` makes for its requester (it invites a rating), threaded into
   * their conversation, in one transaction. A resolved ticket is refused
   * (StatusUnchangedError) with nothing queued.
   */
  resolveWithNotice(
    ref: string,
    compose: ComposeToRequester,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
  ): Promise<TicketRow>;
  /** A handoff to a queue by its old name, a team (`assign` with a queue, by nobody in particular); kept for one release. */
  handoff(ref: string, team: string, note: string | null, now: number): Promise<TicketRow>;
  /** An internal note: kept with the ticket for staff, never shown or sent to the customer. */
  addNote(ref: string, text: string, by: string, now: number): Promise<TicketRow>;
  /**
   * Moves a ticket to another queue and/or owner. Changing the queue, or an
   * owner who had it to someone else, is a handoff: it needs a note
   * (HandoffNoteRequiredError), is recorded with who, when, from, to and why,
   * shows the customer the new queue's name only, and queues the notices
   * `notify` composes for the receiving side. Taking an unowned ticket
   * within its queue is not a handoff unless `handoff` says it is (an
   * explicit handoff to a person). Nothing changing is refused
   * (AssignmentUnchangedError).
   */
  assign(
    ref: string,
    change: AssignmentChange,
    opts: { note: string | null; by: string | null; now: number; handoff?: boolean },
    notify?: (req: HandoffNoticeRequest) => Promise<OutboundDraft[]>,
  ): Promise<{ ticket: TicketRow; handoff: HandoffRecord | null; notices: number }>;
  /** The recipient's status link if one is active, without issuing one (templates preview). */
  activeStatusToken(ticketId: number, recipient: string, links: StatusLinks): Promise<string | null>;
}

export interface QuarantineStore {
  listQuarantine(opts?: { includeReleased?: boolean }): Promise<QuarantineEntry[]>;
  quarantineRaw(id: number): Promise<{ entry: QuarantineEntry; raw: Buffer } | null>;
  markQuarantineReleased(id: number, outcome: string, now: number): Promise<void>;
  /**
   * Releases an entry as junk (`discarded`) and removes its stored bytes
   * unless a message or another entry holds the same ones; null when there is
   * no such entry, QuarantineReleasedError when it was released already.
   */
  discardQuarantine(id: number, now: number): Promise<{ entry: QuarantineEntry; bytesRemoved: boolean } | null>;
}

export interface Store extends IntakeStore, MailboxCursors, OutboxQueue, TicketCommands, QuarantineStore {
  close(): Promise<void>;
}
