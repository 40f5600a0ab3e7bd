import { join } from 'node:path';
import { hostname } from 'node:os';
import type { Config, MailboxConfig, QueueConfig } from '../config/load-config.js';
import { composeHandoffNotice, composeNewTicketNotice, handoffRecipients, queueRecipients } from '../compose/staff-mail.js';
import { smtpFor, type SmtpConfig } from '../config/load-config.js';
import { SMTP_POOL_DEFAULTS } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { TemplateRegistry } from '../compose/template-registry.js';
import { AnswerUnknownError } from '../compose/answer-library.js';
import { composeAgentReply, composeResolved, messageIdDomain, renderAnswers, withAnswers } from '../compose/compose-mail.js';
import { buildIntakePolicy, mailboxNamed, ownAddresses, routingInput, staffAddresses } from '../pipeline/intake-policy.js';
import type { Pipeline, PipelineHooks } from '../pipeline/take-messages.js';
import { createMailer, type Mailer } from '../send/mailer.js';
import { SlaEngine } from '../sla/sla-engine.js';
import { openEngine, type OpenOptions } from '../store/open-store.js';
import type { SqlEngine } from '../store/sql-engine.js';
import { SqlStore } from '../store/sql-store.js';
import type { OutboundDraft } from '../core/types.js';
import type {
  AnswerUse,
  HandoffNoticeRequest,
  HandoffRecord,
  RenderedAnswer,
  IntakePolicy,
  Store,
  TicketRow,
} from '../store/store.js';
import { ApiTokenStore } from '../store/api-token-store.js';
import { NotStaffError, QueueUnknownError, StatusUnchangedError } from '../store/ticket-errors.js';
import { decideThread } from '../thread/decide-thread.js';
import { referencesInSubject } from '../thread/reference.js';
import type { WebPages } from '../web/page-templates.js';
import { StatusPageStore } from '../web/status-page-store.js';
import { StatusLinks, statusUrlFor } from '../core/status-links.js';
import { loadTemplates, type LoadedTemplates, type TemplatesScope } from './templates-check.js';

export interface RuntimeOptions {
  /** Templates to load at construction; every one by default (see TemplatesScope). A reload always loads every one. */
  templates?: TemplatesScope;
  /** How the database is opened (migrated by default). */
  database?: OpenOptions;
}

/**
 * Everything the daemon and the CLI share: config, store, templates, the
 * intake policy and the mailers. `reload` swaps config and templates
 * together, and only when both load.
 */
export class Runtime {
  readonly store: Store;
  /** The status page's storage (its reads, link revocation, the readiness probe). */
  readonly statusPages: StatusPageStore;
  readonly links: StatusLinks;
  /** The JSON API's bearer tokens. */
  readonly apiTokens: ApiTokenStore;
  readonly pipeline: Pipeline;
  readonly sla: SlaEngine;
  private current: { config: Config; templates: LoadedTemplates };
  /** The data folder the runtime opened with: attachments and the link key stay there until a restart. */
  private readonly dataDir: string;
  /** Keyed by the settings each was built with (mailerKey). */
  private mailers = new Map<string, Mailer>();

  /** Opens the database the config names (see openEngine), then everything over it. */
  static async open(config: Config, logger: Logger, clock: Clock, opts: RuntimeOptions = {}): Promise<Runtime> {
    const templates = loadTemplates(config, opts.templates);
    const engine = await openEngine(config.database, {
      postgres: config.postgres,
      applicationName: `ticketd ${config.cluster?.nodeName ?? hostname()}`,
      onConnectionError: (err) =>
        logger.warn(
          { code: 'PG_CONNECTION_LOST', err: err.message },
          'a pooled PostgreSQL connection failed; the pool opens a new one',
        ),
      ...opts.database,
    });
    try {
      return new Runtime(engine, config, templates, logger, clock);
    } catch (err) {
      await engine.close();
      throw err;
    }
  }

  private constructor(
    /** The database engine; the daemon keeps its node's mailbox leases in it. */
    readonly engine: SqlEngine,
    config: Config,
    templates: LoadedTemplates,
    readonly logger: Logger,
    readonly clock: Clock,
  ) {
    this.dataDir = config.dataDir;
    this.links = StatusLinks.loadOrCreate(join(config.dataDir, 'status-link.key'));
    this.current = { config, templates };
    this.sla = new SlaEngine({ engine, config: () => this.config, templates: () => this.templates, links: this.links, logger });
    this.store = new SqlStore(engine, {
      thread: { decide: decideThread, referencesIn: referencesInSubject },
      // Deadlines move in the transaction of the change that moved them.
      hooks: { afterTicketChange: (tx, ticketId, _change, now) => this.sla.onTicketChange(tx, ticketId, now) },
    });
    this.statusPages = new StatusPageStore(engine);
    this.apiTokens = new ApiTokenStore(engine);
    this.pipeline = this.pipelineWith({});
  }

  /**
   * A pipeline over this runtime's store and live config with `hooks`:
   * `pipeline` has none (parsing in the calling thread, as a one-shot
   * command wants); the daemon makes its own with its parse pool and metrics.
   */
  pipelineWith(hooks: PipelineHooks): Pipeline {
    // Getters, so a reload reaches sources that hold on to the pipeline.
    const live = () => this.current.config;
    return {
      store: this.store,
      policy: () => this.intakePolicy(),
      logger: this.logger,
      dataDir: this.dataDir,
      get limits() {
        return live().limits;
      },
      get ownAddresses() {
        return ownAddresses(live());
      },
      get ownMessageIdDomains() {
        return live().mailboxes.map(messageIdDomain);
      },
      get trustedAuthservIds() {
        return live().authentication.trustedAuthservIds;
      },
      routing: (mailbox: string) => routingInput(live(), mailbox),
      isStaff: (address: string) => staffAddresses(live()).has(address.toLowerCase()),
      ...hooks,
    };
  }

  /**
   * The intake policy for one batch, bound to the config of the moment. The
   * SLA history the acknowledgement's estimate needs is read here, before
   * the batch's transaction, so every callback of the policy is pure.
   */
  async intakePolicy(): Promise<IntakePolicy> {
    const { config, templates } = this.current;
    const estimate = await this.sla.firstResponseEstimator(this.clock.now().getTime());
    const policy = buildIntakePolicy({
      config,
      templates: templates.mail,
      links: this.links,
      clock: this.clock,
      firstResponseEstimate: (t: TicketRow) => estimate(t),
    });
    const staff = staffAddresses(config);
    if ((config.queues ?? []).length === 0) return policy;
    return {
      ...policy,
      staff: {
        assignTarget: (target) => {
          const queue = this.queue(target);
          if (queue) return { queue: queue.name };
          return staff.has(target.toLowerCase()) ? { owner: target.toLowerCase() } : null;
        },
        composeReply: (t, body, answers, statusUrl, thread, opts) =>
          composeAgentReply(
            { config, mailbox: mailboxNamed(config, t.mailbox), templates: templates.mail },
            t,
            withAnswers(body, answers),
            statusUrl,
            thread,
            opts,
          ),
        composeResolved: (t, statusUrl, thread) =>
          composeResolved({ config, mailbox: mailboxNamed(config, t.mailbox), templates: templates.mail }, t, statusUrl, thread),
        answers: (t, names) => renderAnswers(templates.answers, mailboxNamed(config, t.mailbox), t, names),
        notifyHandoff: this.handoffNotifier(),
        newTicketRecipients: (t) => queueRecipients(this.queue(t.queue ?? null)),
        composeNewTicketNotice: (t, request, recipients, ticketUrl) =>
          composeNewTicketNotice(
            { config, mailbox: mailboxNamed(config, t.mailbox), templates: templates.mail },
            t,
            request,
            recipients,
            ticketUrl,
          ),
      },
    };
  }

  get config(): Config {
    return this.current.config;
  }

  get templates(): TemplateRegistry {
    return this.current.templates.mail;
  }

  /** The status page's templates; null when the web server is disabled. */
  get pages(): WebPages | null {
    return this.current.templates.web;
  }

  /**
   * An agent reply to the requester, worded by the mailbox's template and
   * queued with its outbox row: `text`, then the vetted answers `answers`
   * names in the ticket's language, each use recorded as an `answer_used`
   * event by `by`. An unknown answer refuses the reply (AnswerUnknownError)
   * before anything is written. `resolving`: the reply goes with the
   * ticket's resolution and offers the rating form.
   */
  async addAgentReply(
    ref: string,
    text: string,
    now: number,
    opts: { answers?: readonly string[]; by?: string; resolving?: boolean } = {},
  ): Promise<TicketRow> {
    const names = opts.answers ?? [];
    // Rendered before the reply's transaction: an unknown answer is refused with nothing written.
    const ticket = names.length > 0 ? await this.store.ticketByRef(ref) : null;
    let answers: RenderedAnswer[] = [];
    if (ticket) {
      const rendered = renderAnswers(this.current.templates.answers, this.mailbox(ticket.mailbox), ticket, names);
      if (!rendered.ok) throw new AnswerUnknownError(rendered.why);
      answers = rendered.answers;
    }
    const body = withAnswers(text, answers);
    const uses = answers.map((a): AnswerUse => ({ name: a.name, lang: a.lang, by: opts.by ?? 'cli', via: 'cli' }));
    return this.store.addAgentReply(
      ref,
      (t, statusUrl, thread) =>
        composeAgentReply(
          { config: this.config, mailbox: this.mailbox(t.mailbox), templates: this.templates },
          t,
          body,
          statusUrl,
          thread,
          { resolving: opts.resolving === true },
        ),
      await this.pipeline.policy(),
      now,
      uses,
      opts.by ?? null,
    );
  }

  // What staff do to a ticket, for the command line and the JSON API alike:
  // each checks what it is given against the config here, once, and leaves
  // the rules of the ticket's state to the store.

  /** An internal note; the customer never sees it. */
  addNote(ref: string, text: string, by: string, now: number): Promise<TicketRow> {
    return this.store.addNote(ref, text, by, now);
  }

  /**
   * Resolves a ticket; the requester gets one resolution mail, which invites
   * a rating: `text` as the last reply when given, else the `resolved` mail.
   * A ticket resolved already is refused before anything is sent.
   */
  async resolve(
    ref: string,
    text: string | null,
    now: number,
    opts: { answers?: readonly string[]; by?: string } = {},
  ): Promise<TicketRow> {
    const current = await this.store.ticketByRef(ref);
    // Refused before the reply goes out, not after.
    if (current?.status === 'resolved') throw new StatusUnchangedError(current.ref, 'resolved', null);
    if (text === null) {
      return this.store.resolveWithNotice(
        ref,
        (t, statusUrl, thread) =>
          composeResolved(
            { config: this.config, mailbox: this.mailbox(t.mailbox), templates: this.templates },
            t,
            statusUrl,
            thread,
          ),
        await this.pipeline.policy(),
        now,
      );
    }
    await this.addAgentReply(ref, text, now, { ...opts, resolving: true });
    return this.store.setStatus(ref, 'resolved', { now });
  }

  /** Hands a ticket to another queue and/or person with a note; the receiving side is mailed the whole story. */
  handoff(
    ref: string,
    to: { queue?: string; owner?: string },
    note: string,
    by: string,
    now: number,
  ): Promise<{ ticket: TicketRow; handoff: HandoffRecord | null; notices: number }> {
    const change = {
      ...(to.queue !== undefined ? { queue: this.queueNamed(to.queue) } : {}),
      ...(to.owner !== undefined ? { owner: this.staffAddress(to.owner) } : {}),
    };
    return this.store.assign(ref, change, { note, by, now, handoff: true }, this.handoffNotifier());
  }

  /** Gives a ticket to one person (null: back to its queue, unowned); taking it from its owner is a handoff and needs a note. */
  assignOwner(
    ref: string,
    owner: string | null,
    note: string | null,
    by: string,
    now: number,
  ): Promise<{ ticket: TicketRow; handoff: HandoffRecord | null; notices: number }> {
    const change = { owner: owner === null ? null : this.staffAddress(owner) };
    return this.store.assign(ref, change, { note, by, now }, this.handoffNotifier());
  }

  /** A configured queue's own name, given in any case; any name while no queues are configured (teams as before). */
  queueNamed(name: string): string {
    const queues = this.config.queues ?? [];
    if (queues.length === 0) return name;
    const queue = this.queue(name);
    if (!queue)
      throw new QueueUnknownError(
        name,
        queues.map((q) => q.name),
      );
    return queue.name;
  }

  /** A person a ticket can go to: an address, one of some queue's staff when queues name their staff. */
  staffAddress(text: string): string {
    const address = text.trim().toLowerCase();
    if (!/^[^@\s]+@[^@\s]+$/.test(address)) throw new NotStaffError(text, 'not-an-address');
    const staff = (this.config.queues ?? []).flatMap((q) => q.staff);
    if (staff.length > 0 && !staff.includes(address)) throw new NotStaffError(address, 'not-staff');
    return address;
  }

  mailbox(name: string): MailboxConfig {
    return mailboxNamed(this.config, name);
  }

  /** The configured queue of that name, whatever its case; undefined for a name no queue has (a team from before queues). */
  queue(name: string | null): QueueConfig | undefined {
    return name === null ? undefined : (this.config.queues ?? []).find((q) => q.name.toLowerCase() === name.toLowerCase());
  }

  /** Composes what a handoff tells the receiving side; run by the store inside the handoff's transaction. */
  handoffNotifier(): (req: HandoffNoticeRequest) => Promise<OutboundDraft[]> {
    return async (req) => {
      const queue = this.queue(req.handoff.toQueue);
      const urls = new Map<string, string>();
      for (const r of handoffRecipients(req.handoff, queue))
        urls.set(r, statusUrlFor(this.config, await req.statusToken(r, this.links)));
      return composeHandoffNotice(
        { config: this.config, mailbox: this.mailbox(req.ticket.mailbox), templates: this.templates },
        req,
        queue,
        (recipient) => urls.get(recipient)!,
      );
    };
  }

  /**
   * Swaps in a new config and templates; throws (keeping the old ones) if the
   * templates fail. A mail pool whose settings did not change stays open;
   * the others finish the mails in hand and close.
   */
  reload(config: Config): void {
    const templates = loadTemplates(config);
    this.sla.prepare(config);
    this.current = { config, templates };
    const kept = new Set(config.mailboxes.map((m) => mailerKey(smtpFor(config, m))));
    for (const [key, mailer] of this.mailers) {
      if (kept.has(key)) continue;
      mailer.close();
      this.mailers.delete(key);
    }
  }

  /** The mailer for a mailbox; mailboxes with the same SMTP settings share one pool of connections. */
  mailerFor(mailbox: string): Mailer {
    const smtp = smtpFor(this.config, this.mailbox(mailbox));
    const key = mailerKey(smtp);
    let mailer = this.mailers.get(key);
    if (!mailer) {
      mailer = createMailer(smtp);
      this.mailers.set(key, mailer);
    }
    return mailer;
  }

  /** The send deadline of a mailbox's SMTP settings. */
  mailerTimeout(mailbox: string): number {
    return smtpFor(this.config, this.mailbox(mailbox)).sendTimeoutMs;
  }

  /** Sends the outbox keeps in flight: as many as the largest pool has connections. */
  outboxConcurrency(): number {
    return Math.max(
      ...this.config.mailboxes.map((m) => smtpFor(this.config, m).maxConnections ?? SMTP_POOL_DEFAULTS.maxConnections),
    );
  }

  async close(): Promise<void> {
    for (const m of this.mailers.values()) m.close();
    await this.store.close();
  }
}

function mailerKey(smtp: SmtpConfig): string {
  return JSON.stringify(smtp);
}
