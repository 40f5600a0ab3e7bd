import type { Config, MailboxConfig } from '../config/load-config.js';
import type { RouteInput, RouteRule } from '../classify/route.js';
import type { Clock } from '../core/clock.js';
import { composeAck } from '../compose/compose-mail.js';
import type { TemplateRegistry } from '../compose/template-registry.js';
import type { IntakePolicy, TicketRow } from '../store/store.js';
import { newReference } from '../thread/reference.js';
import { statusUrlFor, type StatusLinks } from '../core/status-links.js';

export interface PolicyDeps {
  config: Config;
  templates: TemplateRegistry;
  links: StatusLinks;
  clock: Clock;
  /** Expected wall-clock time to a first reply in milliseconds, for the acknowledgement; 0 when no SLA applies. */
  firstResponseEstimate: (ticket: TicketRow) => number;
}

/** Own addresses of every mailbox: mail from them is never answered or made a participant. */
export function ownAddresses(config: Config): string[] {
  return config.mailboxes.flatMap((m) => [m.address, ...m.aliases]).map((a) => a.toLowerCase());
}

export function mailboxNamed(config: Config, name: string): MailboxConfig {
  const mailbox = config.mailboxes.find((m) => m.name === name);
  if (!mailbox) throw new Error(`no mailbox named ${name}`);
  return mailbox;
}

/** The routing rules and what a mailbox's unrouted tickets fall back to. */
export function routingInput(config: Config, mailbox: string): { input: RouteInput; rules: readonly RouteRule[] } {
  return {
    input: { mailbox, defaultQueue: canonicalQueue(config, mailboxNamed(config, mailbox).defaultQueue ?? null) },
    rules: (config.routing ?? []).map((r) => ({
      ...r,
      set: { ...r.set, ...(r.set.queue !== undefined ? { queue: canonicalQueue(config, r.set.queue) } : {}) },
    })),
  };
}

/** Every address in some queue's `staff`, lower-cased: the people whose mail to a ticket is read as staff mail. */
export function staffAddresses(config: Config): Set<string> {
  return new Set((config.queues ?? []).flatMap((q) => q.staff));
}

/** A queue name as configured, whatever its case where it was named; unknown names as given. */
export function canonicalQueue<T extends string | null>(config: Config, name: T): T {
  if (name === null) return name;
  return ((config.queues ?? []).find((q) => q.name.toLowerCase() === name.toLowerCase())?.name ?? name) as T;
}

/** The decisions the store asks for while it holds the intake transaction, bound to one config. */
export function buildIntakePolicy(d: PolicyDeps): IntakePolicy {
  const own = ownAddresses(d.config);
  return {
    clock: d.clock,
    ownAddresses: own,
    referencePrefixes: d.config.mailboxes.map((m) => m.referencePrefix),
    links: d.links,
    statusUrl: (token) => statusUrlFor(d.config, token),
    rulesFor: (name) => ({
      reopenWindowDays: mailboxNamed(d.config, name).reopenWindowDays,
      acksPerSenderPerHour: d.config.limits.acksPerSenderPerHour,
      ticketsPerSenderPerHour: d.config.limits.ticketsPerSenderPerHour,
      autoRepliesPerHour: d.config.limits.autoRepliesPerHour,
    }),
    newReference: (name) => newReference(mailboxNamed(d.config, name).referencePrefix),
    composeAck: (req) =>
      composeAck(
        { config: d.config, mailbox: mailboxNamed(d.config, req.ticket.mailbox), templates: d.templates },
        req.ticket,
        req.to,
        req.inbound,
        req.statusUrl,
        req.queuePosition,
        d.firstResponseEstimate(req.ticket),
      ),
  };
}
