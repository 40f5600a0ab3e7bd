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
  ParsedMessage,
  SenderAuthentication,
  TicketStatus,
} from '../core/types.js';
import type { StatusLinks } from '../web/status-links.js';
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

/** A mail to queue; rendered before the transaction commits, composed to MIME by the outbox worker. */
export interface OutboundDraft {
  kind: string;
  from: Address;
  to: Address[];
  subject: string;
  text: string;
  html: string | null;
  messageId: string;
  inReplyTo: string | null;
  references: string[];
  /** Extra headers such as Auto-Submitted. */
  headers: Record<string, string>;
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
  | { action: 'ignore'; reason: string };

/**
 * The thread stage as the store runs it: pure functions given when the store
 * is made (thread/decide-thread.ts, thread/reference.ts), so the store only
 * reads the facts and records the verdict.
 */
export interface ThreadStage {
  /** Where a message goes: new ticket (with or without acknowledgement), thread, record or ignore. */
  decide(msg: ParsedMessage, cls: Classification, ctx: ThreadContext, rules: ThreadRules): ThreadVerdict;
  /** Ticket references quoted in a subject, in order. */
  referencesIn(subject: string, prefixes: readonly string[]): string[];
}

/** Why a ticket changed; the SLA engine recomputes its deadlines on each. */
export type TicketChange = 'created' | 'customer-reply' | 'reopened' | 'agent-reply' | 'status';

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
  /** The team it was last handed to, if any. */
  team: string | null;
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
  /** Why no acknowledgement went out (see README, "What gets answered"); null when one did. */
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

export interface TicketDetail extends TicketSummary, TicketAutoReply {
  messages: MessageSummary[];
  events: TicketEvent[];
}

export interface OutboxJob {
  id: number;
  messageRow: number;
  mailbox: string;
  kind: string;
  envelopeFrom: string;
  envelopeTo: string[];
  attempts: number;
  raw: Buffer | null;
  draft: OutboundDraft;
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
export interface OutboxQueue {
  /**
   * Leases up to `limit` due rows: up to `fresh` of them the newest never
   * tried, the rest the oldest due (first attempts and retries alike).
   * `claimant` names the node's incarnation: its claim then lasts only as
   * long as the node's heartbeat, and a row claimed by a dead node is due
   * at once (see daemon/mailbox-leases.ts).
   */
  claimOutbox(now: number, limit: number, leaseMs: number, fresh?: number, claimant?: string | null): Promise<OutboxJob[]>;
  /** Keeps composed messages, several in one commit, so every retry sends the same bytes. */
  saveOutboundRaw(items: { messageRow: number; raw: Buffer }[], now: number): Promise<void>;
  /** Marks rows the server accepted, several in one commit. */
  markOutboxSent(ids: number[], now: number): Promise<void>;
  /** Gives claimed rows back unsent before their lease ends (a clean stop). */
  releaseOutbox(ids: number[], now: number): Promise<void>;
  markOutboxRetry(id: number, nextAttemptAt: number, error: string): Promise<void>;
  markOutboxFailed(id: number, error: string, now: number): Promise<void>;
  outboxCounts(): Promise<OutboxCounts>;
  /** Rows not sent yet (pending and failed), only the failed ones, or the one with `id`. */
  listOutbox(filter?: { failedOnly?: boolean; id?: number }): Promise<OutboxEntry[]>;
  /** Makes failed rows (one, or all) pending and due now, with the retry schedule started afresh; returns their ids. */
  requeueOutbox(which: { id: number } | 'failed', now: number): Promise<number[]>;
}

/** What staff do to tickets (the CLI), and what they read of them. */
export interface TicketCommands {
  listTickets(filter?: { status?: TicketStatus; mailbox?: string }): Promise<TicketSummary[]>;
  ticketByRef(ref: string): Promise<TicketRow | null>;
  ticketDetail(ref: string): Promise<TicketDetail | null>;
  /** Open requests of the same mailbox ahead of this ticket: the acknowledgement, the page and the delay notice all use this. */
  queuePosition(t: TicketRow): Promise<number>;
  /** An agent reply: the outbound message and its outbox row in one transaction. */
  addAgentReply(
    ref: string,
    compose: (ticket: TicketRow, statusUrl: string, thread: { inReplyTo: string | null; references: string[] }) => OutboundDraft,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
  ): Promise<TicketRow>;
  setStatus(ref: string, status: TicketStatus, opts: { reason?: string | null; now: number }): Promise<TicketRow>;
  /** Hands a ticket to a team: a public event naming the team, and the note for the team as an internal one. */
  handoff(ref: string, team: string, note: string | null, now: number): Promise<TicketRow>;
  /** The recipient's status link if one is active, without issuing one (templates preview). */
  activeStatusToken(ticketId: number, recipient: string, links: StatusLinks): Promise<string | null>;
}

export interface QuarantineStore {
  listQuarantine(opts?: { includeReleased?: boolean }): Promise<QuarantineEntry[]>;
  quarantineRaw(id: number): Promise<{ entry: QuarantineEntry; raw: Buffer } | null>;
  markQuarantineReleased(id: number, outcome: string, now: number): Promise<void>;
}

export interface Store extends IntakeStore, MailboxCursors, OutboxQueue, TicketCommands, QuarantineStore {
  close(): Promise<void>;
}
