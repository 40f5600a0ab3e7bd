import { performance } from 'node:perf_hooks';
import type { ImapFlow } from 'imapflow';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Progress, ProgressOptions } from '../../core/progress.js';
import { abortableSleep, Wakeup } from '../../core/wakeup.js';
import type { ImapConfig, MailboxConfig } from '../../config/load-config.js';
import { parseBatch, takeMessages, type ParsedBatch, type Pipeline, type RawMail } from '../../pipeline/take-messages.js';
import type { IntakeOutcome } from '../../store/store.js';
import { DEFAULT_BACKOFF, nextDelay, type BackoffSchedule } from './reconnect-backoff.js';
import { createImapClient } from './imap-client.js';
import { ImapTimeoutError, imapDeadline } from './imap-timeout.js';

export const IMAP_NOT_CONFIGURED = 'TICKETD_IMAP_NOT_CONFIGURED';
export const IMAP_WORKER_BUSY = 'TICKETD_IMAP_WORKER_BUSY';
export const IMAP_WORKER_STOPPED = 'TICKETD_IMAP_WORKER_STOPPED';
export const IMAP_COMMAND_FAILED = 'TICKETD_IMAP_COMMAND_FAILED';
export const IMAP_CONNECTION_LOST = 'TICKETD_IMAP_CONNECTION_LOST';

/** How much of an over-size message is fetched: enough for the quarantine entry to show its headers. */
const OVERSIZE_HEAD_BYTES = 64 * 1024;
/**
 * Message bytes fetched by one FETCH and committed by one transaction, at
 * most (a single larger message goes alone): what a batch holds in memory,
 * twice over while the next batch is fetched during the commit of this one.
 */
const BATCH_BYTES = 16 * 1024 * 1024;
const LITERAL_HEADROOM_BYTES = 1024 * 1024;
/**
 * How long a server may take to answer the command that ends IDLE or follows
 * a poll. A live server answers in milliseconds; a connection a NAT or
 * firewall dropped without RST or FIN never answers, and waiting the whole
 * operation timeout for it would leave the mailbox deaf that long.
 */
const LIVENESS_TIMEOUT_MS = 5_000;

export class ImapWorkerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ImapWorkerError';
  }
}

export interface ImapWorkerOptions {
  /** Must have an `imap` section. */
  mailbox: MailboxConfig;
  pipeline: Pipeline;
  logger: Logger;
  clock: Clock;
  /** Waits between polls and before reconnecting; resolves early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  backoff?: BackoffSchedule;
  /**
   * Runs after a batch is committed and before its messages are moved or
   * flagged; a throw here acts like a crash at that point (tests use it).
   */
  beforeSettle?: (uids: readonly number[]) => void | Promise<void>;
  /** A progress display for a backlog larger than one batch (a first sync); the IMAP_BATCH lines log it either way. */
  progress?: (o: ProgressOptions) => Progress;
}

export interface ImapWorkerHealth {
  connected: boolean;
  /** Epoch ms of the last cycle that found the folder drained. */
  lastPollAt: number | null;
  lastError: string | null;
  idle: boolean;
}

/** One batch as fetched, ready to be taken. */
interface FetchedBatch {
  mails: RawMail[];
  /** Its parse, begun as soon as it was fetched; null when it holds no mail. */
  parsed: ParsedBatch | null;
  /** How many UIDs of the pass it accounts for, for the progress display. */
  covered: number;
  /** UIDs of the pass after it. */
  remaining: number;
}

/** The highest UID a cycle has listed so far: the next search starts above it. */
interface Listed {
  upTo: number;
}

interface Session {
  client: ImapFlow;
  /** Folders known to exist on this connection. */
  folders: Set<string>;
}

/**
 * Takes the mail of one IMAP mailbox into the pipeline, exactly once: a
 * message is moved (or flagged) on the server only after its batch committed,
 * and a receipt per UID makes a retried or repeated fetch a no-op.
 */
export class ImapWorker {
  private readonly mailbox: MailboxConfig;
  private readonly imap: ImapConfig;
  private readonly pipeline: Pipeline;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly backoff: BackoffSchedule;
  private readonly beforeSettle: ImapWorkerOptions['beforeSettle'];
  private readonly progress: ImapWorkerOptions['progress'];
  private readonly abort = new AbortController();

  private session: Session | null = null;
  /** The background loop or a runOnce call, whichever is in progress. */
  private running: Promise<unknown> | null = null;
  private stopping = false;
  /** Woken by EXISTS from the server; taken before each search, so mail arriving mid-cycle is not missed. */
  private readonly newMail = new Wakeup();
  private idling = false;
  private lastPollAt: number | null = null;
  private lastError: string | null = null;
  /** The background loop recorded in the store that it watches this mailbox. */
  private watched = false;

  constructor(opts: ImapWorkerOptions) {
    if (opts.mailbox.imap === undefined) {
      throw new ImapWorkerError(IMAP_NOT_CONFIGURED, `mailbox "${opts.mailbox.name}" has no imap section`);
    }
    this.mailbox = opts.mailbox;
    this.imap = opts.mailbox.imap;
    this.pipeline = opts.pipeline;
    this.log = opts.logger.child({ mailbox: opts.mailbox.name });
    this.clock = opts.clock;
    this.sleep = opts.sleep ?? abortableSleep;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.beforeSettle = opts.beforeSettle;
    this.progress = opts.progress;
  }

  /** Runs the take-wait-reconnect loop in the background until stop(). */
  start(): void {
    this.claim();
    this.running = this.loop();
  }

  /**
   * Stops taking new messages, lets the batch in hand commit and settle on
   * the server, then logs out. Interrupts IDLE and backoff waits. Final.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.newMail.wake();
    await this.running?.catch(() => undefined);
    await this.logout();
    if (this.watched) await this.recordWatch(null);
  }

  /** One full cycle on the current (or a new) connection until the folder has nothing new; no waiting. */
  async runOnce(): Promise<{ taken: number }> {
    this.claim();
    const cycle = this.cycle();
    this.running = cycle;
    try {
      return { taken: await cycle };
    } catch (err) {
      this.fail(err, null);
      throw err;
    } finally {
      this.running = null;
    }
  }

  health(): ImapWorkerHealth {
    return {
      connected: this.session?.client.usable ?? false,
      lastPollAt: this.lastPollAt,
      lastError: this.lastError,
      idle: this.idling,
    };
  }

  private claim(): void {
    if (this.stopping) throw new ImapWorkerError(IMAP_WORKER_STOPPED, `IMAP worker of "${this.mailbox.name}" was stopped`);
    if (this.running) throw new ImapWorkerError(IMAP_WORKER_BUSY, `IMAP worker of "${this.mailbox.name}" is already running`);
  }

  private async loop(): Promise<void> {
    this.watched = true;
    await this.recordWatch(this.clock.now().getTime());
    let attempt = 0;
    while (!this.stopping) {
      try {
        await this.cycle();
        await this.recordRead();
        attempt = 0;
        if (!this.stopping) await this.waitForMail();
      } catch (err) {
        if (this.stopping) {
          this.fail(err, null);
          break;
        }
        attempt += 1;
        const delay = nextDelay(attempt, this.backoff);
        this.fail(err, delay);
        await this.sleep(delay, this.abort.signal);
      }
    }
  }

  /** Checks UIDVALIDITY, settles what earlier runs owe, then takes batches until the folder is drained. */
  private async cycle(): Promise<number> {
    const session = await this.connect();
    // A server reports mail that arrived through other sessions only when
    // asked; without this a reused session searches a stale view.
    await this.deadline(session.client.noop(), 'NOOP');
    const uidValidity = await this.checkUidValidity(session);
    await this.settleOwed(session, uidValidity);

    const cursor = await this.pipeline.store.getCursor(this.mailbox.name);
    const listed: Listed = { upTo: cursor?.uidValidity === uidValidity ? cursor.lastUid : 0 };
    let taken = 0;
    while (!this.stopping) {
      this.newMail.take();
      // One search per pass: a backlog is then worked through in batches
      // without listing it again for each one.
      const pending = await this.searchNew(session.client, listed.upTo);
      if (pending.length === 0) {
        this.lastPollAt = this.clock.now().getTime();
        break;
      }
      taken += await this.takePass(session, uidValidity, pending, listed, false);
    }
    this.lastError = null;
    return taken;
  }

  /**
   * Takes the UIDs of one search in batches. Mail the server reports as
   * arrived meanwhile (EXISTS) is listed between two batches and taken ahead
   * of the rest, so a customer who writes during a backlog is answered in
   * seconds rather than after it. Those messages are marked `ahead`: their
   * receipts keep them from being taken twice, and the cursor moves only
   * with the backlog in UID order, so a crash never skips an older UID.
   */
  private async takePass(
    session: Session,
    uidValidity: number,
    pending: number[],
    listed: Listed,
    ahead: boolean,
  ): Promise<number> {
    listed.upTo = Math.max(listed.upTo, pending[pending.length - 1]!);
    const progress =
      !ahead && pending.length > this.imap.batchSize
        ? this.progress?.({ label: `${this.mailbox.name}: taking ${pending.length} messages`, total: pending.length })
        : undefined;
    // The next batch is fetched, and parsed on the worker threads, while
    // this one commits: the server's I/O, the parse and the commit overlap.
    // imapflow queues commands, so the MOVE of this batch follows that
    // FETCH on the connection.
    const batches = this.fetchBatches(session, uidValidity, pending, ahead);
    let next = batches.next();
    let taken = 0;
    try {
      for (;;) {
        const fetched = await next;
        if (fetched.done) break;
        next = batches.next();
        if (this.stopping) {
          await fetched.value.parsed?.discard();
          break;
        }
        taken += await this.takeBatch(session, uidValidity, fetched.value);
        progress?.tick(fetched.value.covered);
        // Mail that arrives after the last batch is listed by the next search, in order.
        if (fetched.value.remaining > 0 && !this.stopping && this.newMail.take()) {
          const arrived = await this.searchNew(session.client, listed.upTo);
          if (arrived.length > 0) taken += await this.takePass(session, uidValidity, arrived, listed, true);
        }
      }
    } finally {
      // A batch fetched ahead when a commit failed or stop() came is given up: nothing of it was committed.
      next.then((r) => (r.done ? undefined : r.value.parsed?.discard())).catch(() => undefined);
      progress?.done();
    }
    return taken;
  }

  private async connect(): Promise<Session> {
    if (this.session?.client.usable) return this.session;
    if (this.session) {
      const error = `connection closed${reasonSuffix(this.session.client)}`;
      this.log.warn({ code: 'IMAP_DISCONNECTED', error }, 'IMAP connection lost');
      this.dropSession();
    }
    const imap = this.imap;
    const client = await createImapClient(imap, {
      maxLiteralSize: imap.maxLiteralSize ?? this.pipeline.limits.maxMessageBytes + LITERAL_HEADROOM_BYTES,
    });
    // imapflow emits 'error' on a broken connection; unhandled it would take the process down
    client.on('error', (err: Error) => {
      this.log.warn({ code: 'IMAP_ERROR', ...errorFields(err) }, 'IMAP connection error');
    });
    client.on('close', () => this.newMail.interrupt());
    client.on('exists', () => this.newMail.wake());
    try {
      await this.deadline(client.connect(), 'connect');
      await this.deadline(client.mailboxOpen(this.mailbox.folder), 'SELECT');
    } catch (err) {
      client.close();
      throw err;
    }
    this.session = { client, folders: new Set([this.mailbox.folder]) };
    // What the session goes without changes how mail is waited for and moved; see moveTo and waitForMail
    const lacks = ['IDLE', 'MOVE', 'UIDPLUS'].filter((cap) => !client.capabilities.has(cap));
    this.log.info(
      { code: 'IMAP_CONNECTED', host: imap.host, port: imap.port, folder: this.mailbox.folder, lacks },
      'IMAP connected',
    );
    return this.session;
  }

  /** A new UIDVALIDITY invalidates every UID we hold; Message-ID dedup keeps the re-take from creating tickets twice. */
  private async checkUidValidity(session: Session): Promise<number> {
    const opened = session.client.mailbox;
    if (opened === false) throw new ImapWorkerError(IMAP_COMMAND_FAILED, `folder ${this.mailbox.folder} is not selected`);
    const uidValidity = Number(opened.uidValidity);
    const cursor = await this.pipeline.store.getCursor(this.mailbox.name);
    if (cursor?.uidValidity !== uidValidity) {
      await this.pipeline.store.resetCursor(this.mailbox.name, uidValidity, this.clock.now().getTime());
      // First contact with a folder is routine; a change on a known one is worth a warning
      this.log[cursor === null ? 'info' : 'warn'](
        { code: 'IMAP_UIDVALIDITY_CHANGED', old: cursor?.uidValidity ?? null, new: uidValidity },
        'UIDVALIDITY changed, taking the folder from the start',
      );
    }
    return uidValidity;
  }

  /** Moves or flags what an earlier run committed but did not get to settle on the server. */
  private async settleOwed(session: Session, uidValidity: number): Promise<void> {
    const owed = await this.pipeline.store.unsettledReceipts(this.mailbox.name, uidValidity);
    if (owed.length === 0) return;
    await this.settle(session, uidValidity, owed);
    this.log.info({ code: 'IMAP_SETTLED_OWED', count: owed.length }, 'settled messages committed by an earlier run');
  }

  /** UIDs above `after`, ascending. */
  private async searchNew(client: ImapFlow, after: number): Promise<number[]> {
    const found = await this.deadline(client.search({ uid: `${after + 1}:*` }, { uid: true }), 'UID SEARCH');
    if (!Array.isArray(found)) throw new ImapWorkerError(IMAP_COMMAND_FAILED, 'UID SEARCH was refused');
    // `N:*` always matches the highest UID, even one below N
    return found.filter((uid) => uid > after).sort((a, b) => a - b);
  }

  /**
   * The backlog in batches of at most `batchSize` UIDs and BATCH_BYTES of
   * message: one FETCH of the sizes, then one FETCH of the sources (and one
   * of the heads of over-size messages), whatever the batch's length.
   * UIDs that already have a receipt are skipped (settleOwed settles them).
   */
  private async *fetchBatches(
    session: Session,
    uidValidity: number,
    pending: number[],
    ahead: boolean,
  ): AsyncGenerator<FetchedBatch> {
    const { client } = session;
    for (let i = 0; i < pending.length && !this.stopping; i += this.imap.batchSize) {
      const uids = pending.slice(i, i + this.imap.batchSize);
      // Collected in full before anything else is sent: a command issued inside an open FETCH deadlocks imapflow
      const fetched = await this.deadline(client.fetchAll(uids.join(','), { uid: true, size: true }, { uid: true }), 'UID FETCH');
      const sizes = new Map(fetched.map((m) => [m.uid, m.size ?? 0]));
      const known = await this.pipeline.store.knownUids(this.mailbox.name, uidValidity, uids);
      const wanted = uids.filter((uid) => sizes.has(uid) && !known.has(uid));
      const cap = this.pipeline.limits.maxMessageBytes;
      const fetchedBytes = (uid: number): number => (sizes.get(uid)! > cap ? OVERSIZE_HEAD_BYTES : sizes.get(uid)!);
      let start = 0;
      let accounted = 0;
      do {
        let end = start;
        for (let bytes = 0; end < wanted.length; end++) {
          if (end > start && bytes + fetchedBytes(wanted[end]!) > BATCH_BYTES) break;
          bytes += fetchedBytes(wanted[end]!);
        }
        // The last part also accounts for the known and vanished UIDs at the end of the batch.
        const lastUid = end === wanted.length ? uids[uids.length - 1]! : wanted[end - 1]!;
        const upTo = uids.filter((uid) => uid <= lastUid).length;
        const part = wanted.slice(start, end);
        const mails = part.length === 0 ? [] : await this.download(client, uidValidity, part, sizes, ahead);
        const parsed = mails.length === 0 ? null : parseBatch(this.pipeline, mails);
        yield { mails, parsed, covered: upTo - accounted, remaining: pending.length - i - upTo };
        accounted = upTo;
        start = end;
      } while (start < wanted.length && !this.stopping);
    }
  }

  private async takeBatch(session: Session, uidValidity: number, batch: FetchedBatch): Promise<number> {
    const started = performance.now();
    const { mails, parsed, remaining } = batch;
    if (mails.length === 0 || parsed === null) return 0;
    const results = await takeMessages(this.pipeline, mails, parsed);
    const outcomes = results.flatMap((r) => (r.origin.via === 'imap' ? [{ uid: r.origin.uid, outcome: r.outcome }] : []));
    await this.beforeSettle?.(outcomes.map((o) => o.uid));
    await this.settle(session, uidValidity, outcomes);
    const ahead = mails[0]!.origin.via === 'imap' && mails[0]!.origin.ahead === true;
    this.log.info(
      {
        code: 'IMAP_BATCH',
        count: mails.length,
        remaining,
        ...(ahead && { ahead }),
        ms: Math.round(performance.now() - started),
      },
      'IMAP batch taken',
    );
    return mails.length;
  }

  /**
   * The sources of `uids` in one FETCH; a message the server reports over
   * the size cap comes as its first bytes only, from a second FETCH (the
   * pipeline quarantines it as too large). A message that vanished is left out.
   */
  private async download(
    client: ImapFlow,
    uidValidity: number,
    uids: number[],
    sizes: Map<number, number>,
    ahead: boolean,
  ): Promise<RawMail[]> {
    const cap = this.pipeline.limits.maxMessageBytes;
    const whole = uids.filter((uid) => sizes.get(uid)! <= cap);
    const oversize = uids.filter((uid) => sizes.get(uid)! > cap);
    const raws = new Map<number, Buffer>();
    // One byte over the cap, so a message whose reported size was too small still shows as too large
    for (const [set, maxLength] of [
      [whole, cap + 1],
      [oversize, OVERSIZE_HEAD_BYTES],
    ] as const) {
      if (set.length === 0) continue;
      const fetched = await this.deadline(
        client.fetchAll(set.join(','), { uid: true, source: { start: 0, maxLength } }, { uid: true }),
        'UID FETCH BODY',
      );
      for (const m of fetched) if (m.source !== undefined) raws.set(m.uid, m.source);
    }
    return uids.flatMap((uid) => {
      const raw = raws.get(uid);
      if (raw === undefined) return [];
      const origin = {
        via: 'imap' as const,
        mailbox: this.mailbox.name,
        uidValidity,
        uid,
        ...(ahead && { ahead: true as const }),
      };
      return [{ origin, raw, declaredSize: sizes.get(uid)! }];
    });
  }

  /**
   * One MOVE (or STORE) for the processed UIDs and one MOVE to quarantine,
   * then the receipts are settled. UIDs already gone from the folder are
   * fine: the server answers OK and the receipt is settled all the same.
   */
  private async settle(session: Session, uidValidity: number, items: { uid: number; outcome: IntakeOutcome }[]): Promise<void> {
    const { client } = session;
    const quarantined = items.filter((i) => i.outcome === 'quarantined').map((i) => i.uid);
    const processed = items.filter((i) => i.outcome !== 'quarantined').map((i) => i.uid);
    if (processed.length > 0) {
      if (this.mailbox.processedAction === 'flag') {
        const flagged = await this.deadline(client.messageFlagsAdd(processed.join(','), ['\\Seen'], { uid: true }), 'UID STORE');
        if (flagged !== true) throw new ImapWorkerError(IMAP_COMMAND_FAILED, 'UID STORE +FLAGS (\\Seen) was refused');
      } else {
        await this.moveTo(session, processed, this.mailbox.processedFolder);
      }
    }
    if (quarantined.length > 0) await this.moveTo(session, quarantined, this.mailbox.quarantineFolder);
    await this.pipeline.store.markSettled(
      this.mailbox.name,
      uidValidity,
      items.map((i) => i.uid),
      this.clock.now().getTime(),
    );
    // a long first sync is progress too, not a stalled mailbox
    await this.recordRead();
  }

  /**
   * UID MOVE where the server has it (RFC 6851); else COPY and then expunge
   * exactly the copied messages (see expungeOwn).
   */
  private async moveTo(session: Session, uids: number[], folder: string): Promise<void> {
    const { client } = session;
    await this.ensureFolder(session, folder);
    const set = uidSet(uids);
    if (client.capabilities.has('MOVE')) {
      const moved = await this.deadline(client.messageMove(set, folder, { uid: true }), 'UID MOVE');
      if (!moved) throw new ImapWorkerError(IMAP_COMMAND_FAILED, `UID MOVE to ${folder} was refused`);
      return;
    }
    // A crash after the COPY copies again on the next run: a duplicate in the
    // processed folder, never a message lost from both.
    const copied = await this.deadline(client.messageCopy(set, folder, { uid: true }), 'UID COPY');
    if (!copied) throw new ImapWorkerError(IMAP_COMMAND_FAILED, `UID COPY to ${folder} was refused`);
    await this.expungeOwn(client, uids);
  }

  /**
   * Creates the folder once per session. Whether CREATE of an existing folder
   * says [ALREADYEXISTS] (RFC 5530, which imapflow takes as success) is up to
   * the server: Cyrus answers a plain NO. So a refused CREATE is followed by a
   * look at the folder, and only a folder that is really missing is an error.
   */
  private async ensureFolder(session: Session, folder: string): Promise<void> {
    if (session.folders.has(folder)) return;
    const { client } = session;
    try {
      await this.deadline(client.mailboxCreate(folder), 'CREATE');
    } catch (err) {
      if (err instanceof ImapTimeoutError || !(await this.folderExists(client, folder))) throw err;
    }
    session.folders.add(folder);
  }

  private async folderExists(client: ImapFlow, folder: string): Promise<boolean> {
    // imapflow throws for a folder that does not exist
    const status = await this.deadline(client.status(folder, { messages: true }), 'STATUS').catch(() => false as const);
    return status !== false;
  }

  /**
   * Flags `uids` \Deleted and expunges them, and nothing else. With UIDPLUS
   * that is UID EXPUNGE (RFC 4315). Without it, EXPUNGE removes every
   * \Deleted message of the folder, including ones a person marked and
   * ticketd has not taken yet: those lose the flag for the length of the
   * EXPUNGE and get it back after. A message someone marks in that instant
   * is expunged as their client's own EXPUNGE would; a crash in it leaves
   * their messages unmarked, never gone.
   */
  private async expungeOwn(client: ImapFlow, uids: number[]): Promise<void> {
    const set = uidSet(uids);
    if (client.capabilities.has('UIDPLUS')) {
      const expunged = await this.deadline(client.messageDelete(set, { uid: true }), 'UID EXPUNGE');
      if (!expunged) throw new ImapWorkerError(IMAP_COMMAND_FAILED, 'UID EXPUNGE was refused');
      return;
    }
    const ours = new Set(uids);
    const marked = await this.deadline(client.search({ deleted: true }, { uid: true }), 'UID SEARCH DELETED');
    if (!Array.isArray(marked)) throw new ImapWorkerError(IMAP_COMMAND_FAILED, 'UID SEARCH DELETED was refused');
    // a folder nobody expunges can hold thousands of them: ranges keep the command short
    const others = uidSet(marked.filter((uid) => !ours.has(uid)));
    if (others !== '') {
      const unmarked = await this.deadline(client.messageFlagsRemove(others, ['\\Deleted'], { uid: true }), 'UID STORE');
      if (!unmarked) throw new ImapWorkerError(IMAP_COMMAND_FAILED, 'UID STORE -FLAGS (\\Deleted) was refused');
    }
    const expunged = await this.deadline(client.messageDelete(set, { uid: true }), 'EXPUNGE');
    if (others !== '') {
      const remarked = await this.deadline(client.messageFlagsAdd(others, ['\\Deleted'], { uid: true }), 'UID STORE');
      if (!remarked) throw new ImapWorkerError(IMAP_COMMAND_FAILED, 'UID STORE +FLAGS (\\Deleted) was refused');
    }
    if (!expunged) throw new ImapWorkerError(IMAP_COMMAND_FAILED, 'EXPUNGE was refused');
  }

  /**
   * IDLE when the server has it, else sleep; either way at most
   * pollIntervalMs, so a missed notification costs one interval. Either way
   * it ends with a command the server must answer within a few seconds, so a
   * connection that died silently is given up after one interval.
   */
  private async waitForMail(): Promise<void> {
    const session = this.session;
    if (session === null || this.newMail.woken) return;
    const { client } = session;
    if (!this.imap.idle || !client.capabilities.has('IDLE')) {
      await this.sleep(this.imap.pollIntervalMs, this.abort.signal);
      if (!this.stopping && client.usable) await this.liveness(client.noop(), 'NOOP');
      return;
    }
    this.idling = true;
    let idleOver = false;
    // false when the server refused IDLE, an error when the connection failed under it
    const idle = client.idle().then(
      (result) => (result === false ? ('refused' as const) : null),
      (err: unknown) => err,
    );
    void idle.finally(() => {
      idleOver = true;
    });
    try {
      await this.newMail.sleep(this.imap.pollIntervalMs, idle);
      // On stop, the LOGOUT that follows ends IDLE
      if (this.stopping) return;
      // Any command breaks IDLE; NOOP is the one with no other effect
      if (!idleOver && client.usable) await this.liveness(client.noop(), 'NOOP ending IDLE');
      const outcome = await this.deadline(idle, 'IDLE');
      if (!client.usable) throw new ImapWorkerError(IMAP_CONNECTION_LOST, `connection closed during IDLE${reasonSuffix(client)}`);
      if (outcome === 'refused') {
        this.idling = false;
        await this.sleep(this.imap.pollIntervalMs, this.abort.signal);
      } else if (outcome !== null) {
        throw outcome;
      }
    } finally {
      this.idling = false;
    }
  }

  /**
   * What `ticketd doctor` reads to tell a stalled mailbox from a quiet one. A
   * database that refuses the write is logged, not fatal: the mail still gets
   * taken, and doctor shows the mailbox as unread, which says to look.
   */
  private async recordRead(): Promise<void> {
    try {
      await this.pipeline.store.markRead(this.mailbox.name, this.clock.now().getTime());
    } catch (err) {
      this.log.warn({ code: 'IMAP_READ_NOT_RECORDED', ...errorFields(err) }, 'could not record that the mailbox was read');
    }
  }

  private async recordWatch(since: number | null): Promise<void> {
    try {
      await this.pipeline.store.markWatched(this.mailbox.name, since);
    } catch (err) {
      this.log.warn({ code: 'IMAP_READ_NOT_RECORDED', ...errorFields(err) }, 'could not record that the mailbox is watched');
    }
  }

  private deadline<T>(promise: Promise<T>, label: string): Promise<T> {
    return imapDeadline(promise, this.imap.operationTimeoutMs, label);
  }

  /** A deadline for a command any live server answers at once. */
  private liveness<T>(promise: Promise<T>, label: string): Promise<T> {
    return imapDeadline(promise, Math.min(this.imap.operationTimeoutMs, LIVENESS_TIMEOUT_MS), label);
  }

  /** Logs why the connection is being given up and drops it; the next cycle connects anew. */
  private fail(err: unknown, retryInMs: number | null): void {
    const fields = { ...errorFields(err), ...(retryInMs !== null && { retryInMs }) };
    this.lastError = fields.error;
    if (isAuthFailure(err)) this.log.error({ code: 'IMAP_AUTH_FAILED', ...fields }, 'IMAP login refused');
    else this.log.warn({ code: 'IMAP_DISCONNECTED', ...fields }, 'IMAP connection given up');
    this.dropSession();
  }

  private dropSession(): void {
    this.session?.client.close();
    this.session = null;
  }

  private async logout(): Promise<void> {
    const session = this.session;
    if (session === null) return;
    this.session = null;
    try {
      await this.deadline(session.client.logout(), 'LOGOUT');
    } catch {
      // the server may already be gone; the socket is closed either way
    } finally {
      session.client.close();
    }
    this.log.info({ code: 'IMAP_LOGGED_OUT' }, 'IMAP logged out');
  }
}

/** `1:3,7` for [1, 2, 3, 7]: a UID set in ranges. */
export function uidSet(uids: readonly number[]): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function isAuthFailure(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { authenticationFailed?: unknown }).authenticationFailed === true;
}

function reasonSuffix(client: ImapFlow): string {
  return client.byeReason ? ` (server said: ${client.byeReason})` : '';
}

/** What is safe to log about an error: its message, the server's answer and codes, never the command it carried. */
function errorFields(err: unknown): { error: string; errorCode?: string; serverResponseCode?: string } {
  if (!(err instanceof Error)) return { error: String(err) };
  const { code, serverResponseCode, responseText } = err as {
    code?: unknown;
    serverResponseCode?: unknown;
    responseText?: unknown;
  };
  return {
    error: typeof responseText === 'string' && responseText !== '' ? `${err.message}: ${responseText}` : err.message,
    ...(typeof code === 'string' && { errorCode: code }),
    ...(typeof serverResponseCode === 'string' && { serverResponseCode }),
  };
}
