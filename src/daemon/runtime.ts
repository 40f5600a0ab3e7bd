import { join } from 'node:path';
import type { Config, MailboxConfig, QueueConfig } from '../config/load-config.js';
import { composeHandoffNotice } from '../compose/staff-mail.js';
import { smtpFor, type SmtpConfig } from '../config/load-config.js';
import { SMTP_POOL_DEFAULTS } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { TemplateRegistry } from '../compose/template-registry.js';
import { messageIdDomain } from '../compose/compose-mail.js';
import { buildIntakePolicy, mailboxNamed, ownAddresses, routingInput, statusUrlFor } from '../pipeline/intake-policy.js';
import type { Pipeline } from '../pipeline/take-messages.js';
import { createMailer, type Mailer } from '../send/mailer.js';
import { SlaEngine } from '../sla/sla-engine.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { HandoffNoticeRequest, IntakePolicy, OutboundDraft, TicketRow } from '../store/store.js';
import type { WebPages } from '../web/page-templates.js';
import { StatusLinks } from '../web/status-links.js';
import { loadTemplates, type LoadedTemplates, type TemplatesScope } from './templates-check.js';

export interface RuntimeOptions {
  /** Templates to load at construction; every one by default (see TemplatesScope). A reload always loads every one. */
  templates?: TemplatesScope;
}

/**
 * Everything the daemon and the CLI share: config, store, templates, the
 * intake policy and the mailers. `reload` swaps config and templates
 * together, and only when both load.
 */
export class Runtime {
  readonly store: SqliteStore;
  readonly links: StatusLinks;
  readonly pipeline: Pipeline;
  readonly sla: SlaEngine;
  private current: { config: Config; templates: LoadedTemplates; policy: IntakePolicy };
  /** Keyed by the settings each was built with (mailerKey). */
  private mailers = new Map<string, Mailer>();

  constructor(
    config: Config,
    readonly logger: Logger,
    readonly clock: Clock,
    opts: RuntimeOptions = {},
  ) {
    const templates = loadTemplates(config, opts.templates);
    this.store = new SqliteStore(config.database);
    this.links = StatusLinks.loadOrCreate(join(config.dataDir, 'status-link.key'));
    this.current = { config, templates, policy: this.buildPolicy(config, templates.mail) };
    this.sla = new SlaEngine({ store: this.store, config: () => this.config, templates: () => this.templates, links: this.links, logger });
    // Deadlines move in the transaction of the change that moved them.
    this.store.afterTicketChange = (ticketId, _change, now) => this.sla.onTicketChange(ticketId, now);
    // Getters, so a reload reaches sources that hold on to the pipeline.
    const live = () => this.current.config;
    this.pipeline = {
      store: this.store,
      policy: () => this.current.policy,
      logger,
      dataDir: config.dataDir,
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
    };
  }

  private buildPolicy(config: Config, templates: TemplateRegistry): IntakePolicy {
    return buildIntakePolicy({
      config,
      templates,
      links: this.links,
      clock: this.clock,
      firstResponseEstimate: (t: TicketRow) => this.sla.firstResponseEstimate(t),
    });
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

  mailbox(name: string): MailboxConfig {
    return mailboxNamed(this.config, name);
  }

  /** The configured queue of that name, whatever its case; undefined for a name no queue has (a team from before queues). */
  queue(name: string | null): QueueConfig | undefined {
    return name === null ? undefined : this.config.queues.find((q) => q.name.toLowerCase() === name.toLowerCase());
  }

  /** Composes what a handoff tells the receiving side; run by the store inside the handoff's transaction. */
  handoffNotifier(now: number): (req: HandoffNoticeRequest) => OutboundDraft[] {
    return (req) =>
      composeHandoffNotice(
        { config: this.config, mailbox: this.mailbox(req.ticket.mailbox), templates: this.templates },
        req,
        this.queue(req.handoff.toQueue),
        (recipient) => statusUrlFor(this.config, this.store.tokenFor(req.ticket.id, recipient, this.links, now)),
      );
  }

  /**
   * Swaps in a new config and templates; throws (keeping the old ones) if the
   * templates fail. A mail pool whose settings did not change stays open;
   * the others finish the mails in hand and close.
   */
  reload(config: Config): void {
    const templates = loadTemplates(config);
    this.sla.prepare(config);
    this.current = { config, templates, policy: this.buildPolicy(config, templates.mail) };
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

  close(): void {
    for (const m of this.mailers.values()) m.close();
    this.store.close();
  }
}

function mailerKey(smtp: SmtpConfig): string {
  return JSON.stringify(smtp);
}
