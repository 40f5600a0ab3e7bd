import { join } from 'node:path';
import type { Config, MailboxConfig } from '../config/load-config.js';
import { smtpFor } from '../config/load-config.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { TemplateRegistry, type TemplateProblem } from '../compose/template-registry.js';
import { messageIdDomain } from '../compose/compose-mail.js';
import { buildIntakePolicy, mailboxNamed, ownAddresses } from '../pipeline/intake-policy.js';
import type { Pipeline } from '../pipeline/take-messages.js';
import { createMailer, type Mailer } from '../send/mailer.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { IntakePolicy, TicketRow } from '../store/store.js';
import { StatusLinks } from '../web/status-links.js';

export const TEMPLATES_INVALID = 'TICKETD_TEMPLATES_INVALID';

export class TemplatesInvalidError extends Error {
  readonly code = TEMPLATES_INVALID;
  constructor(readonly problems: TemplateProblem[]) {
    super(`templates refused:\n  ${problems.map(formatProblem).join('\n  ')}`);
  }
}

export function formatProblem(p: TemplateProblem): string {
  return `${p.file}${p.line !== null ? `:${p.line}` : ''}: ${p.message}`;
}

/** Loads and checks every template; a template that fails never reaches a customer. */
export function loadTemplates(config: Config): TemplateRegistry {
  const loaded = TemplateRegistry.load(config.templatesDir, { mailboxes: config.mailboxes.map((m) => m.name) });
  if (!loaded.ok) throw new TemplatesInvalidError(loaded.errors);
  return loaded.registry;
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
  private current: { config: Config; templates: TemplateRegistry; policy: IntakePolicy };
  private mailers = new Map<string, Mailer>();
  /** Supplied by the SLA engine when it runs; '' means no estimate. */
  firstResponseEstimate: (ticket: TicketRow) => string = () => '';
  /** What the status page promises next; supplied by the SLA engine, null where no SLA applies. */
  slaPromise: (ticket: TicketRow) => { target: 'first-response' | 'resolution'; due: Date } | null = () => null;

  constructor(
    config: Config,
    readonly logger: Logger,
    readonly clock: Clock,
  ) {
    const templates = loadTemplates(config);
    this.store = new SqliteStore(config.database);
    this.links = StatusLinks.loadOrCreate(join(config.dataDir, 'status-link.key'));
    this.current = { config, templates, policy: this.buildPolicy(config, templates) };
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
    };
  }

  private buildPolicy(config: Config, templates: TemplateRegistry): IntakePolicy {
    return buildIntakePolicy({
      config,
      templates,
      links: this.links,
      clock: this.clock,
      firstResponseEstimate: (t) => this.firstResponseEstimate(t),
    });
  }

  get config(): Config {
    return this.current.config;
  }

  get templates(): TemplateRegistry {
    return this.current.templates;
  }

  mailbox(name: string): MailboxConfig {
    return mailboxNamed(this.config, name);
  }

  /** Swaps in a new config and templates; throws (keeping the old ones) if the templates fail. */
  reload(config: Config): void {
    const templates = loadTemplates(config);
    this.current = { config, templates, policy: this.buildPolicy(config, templates) };
    for (const m of this.mailers.values()) m.close();
    this.mailers.clear();
  }

  mailerFor(mailbox: string): Mailer {
    let mailer = this.mailers.get(mailbox);
    if (!mailer) {
      mailer = createMailer(smtpFor(this.config, this.mailbox(mailbox)));
      this.mailers.set(mailbox, mailer);
    }
    return mailer;
  }

  /** The send deadline of a mailbox's SMTP settings. */
  mailerTimeout(mailbox: string): number {
    return smtpFor(this.config, this.mailbox(mailbox)).sendTimeoutMs;
  }

  close(): void {
    for (const m of this.mailers.values()) m.close();
    this.store.close();
  }
}
