import { isIP } from 'node:net';
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { BusinessCalendar } from '../core/calendar.js';
import { Duration, Percent } from '../core/duration.js';

const DURATION_PATTERN = /^(\d+[smhdw]\s*)+$/;
const PERCENT_PATTERN = /^\d+(\.\d+)?%$/;
const HOURS_PATTERN = /^\d\d:\d\d-\d\d:\d\d(,\d\d:\d\d-\d\d:\d\d)*$/;
const MAILBOX_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
const REFERENCE_PREFIX_PATTERN = /^[A-Z][A-Z0-9]{1,9}$/;
const LANGUAGE_PATTERN = /^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$/;

/**
 * Defaults of the LMTP/SMTP listener's resource bounds. They are applied by
 * inboundLimits rather than by the schema, so configs parse to the same
 * shape as before these settings existed.
 */
export const INBOUND_LIMIT_DEFAULTS = {
  /** MTA connections served at once; more are answered 421 and retried by the MTA. */
  maxConnections: 32,
  /** Message bytes all transfers in progress may hold together (never less than maxMessageBytes); a message that does not fit gets 451. */
  maxInFlightBytes: 64 * 1024 * 1024,
  /** A connection that sends nothing for this long is answered 421 and dropped. */
  idleTimeoutMs: 60_000,
  /** From the connection, or the previous answered message, until the next message is answered; else 421 and dropped. */
  transactionTimeoutMs: 300_000,
} as const;

export type InboundLimits = { -readonly [K in keyof typeof INBOUND_LIMIT_DEFAULTS]: number };

/** The listener's bounds with the unset ones defaulted. */
export function inboundLimits(inbound: Partial<InboundLimits> & { maxMessageBytes: number }): InboundLimits {
  return {
    maxConnections: inbound.maxConnections ?? INBOUND_LIMIT_DEFAULTS.maxConnections,
    maxInFlightBytes: inbound.maxInFlightBytes ?? Math.max(INBOUND_LIMIT_DEFAULTS.maxInFlightBytes, inbound.maxMessageBytes),
    idleTimeoutMs: inbound.idleTimeoutMs ?? INBOUND_LIMIT_DEFAULTS.idleTimeoutMs,
    transactionTimeoutMs: inbound.transactionTimeoutMs ?? INBOUND_LIMIT_DEFAULTS.transactionTimeoutMs,
  };
}

/** True for a `database` that chooses PostgreSQL: a `postgres://` or `postgresql://` URL. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

/** Mailbox leases run out this long after a node's last heartbeat; see daemon/mailbox-leases.ts. */
export const DEFAULT_LEASE_MS = 15_000;

/** The calendar name that needs no entry under `calendars`: every hour counts. */
export const ROUND_THE_CLOCK = '24x7';

// Leaf schemas carry their own short message; messages that start with
// "expected" get the offending value appended when problems are formatted.

const text = () => z.string().min(1, { error: 'must not be empty' });

function intBetween(min: number, max: number) {
  const error = `expected an integer between ${min} and ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
}

const port = () => intBetween(1, 65535);

function positiveInt() {
  const error = 'expected a positive integer';
  return z.int({ error }).min(1, { error });
}

function countInt() {
  const error = 'expected an integer of 0 or more';
  return z.int({ error }).min(0, { error });
}

const email = () => z.email({ pattern: z.regexes.html5Email, error: 'expected an email address' });

/**
 * Turns the input into the value the daemon runs with, by `parse`; when it
 * throws, its message is the problem at this path. The value is made here,
 * once: no consumer reads the text again, so a value check-config passes
 * cannot fail later.
 */
function parsedBy<In, Out>(parse: (input: In) => Out, message: (err: Error) => string = (err) => err.message) {
  return (input: In, ctx: z.RefinementCtx): Out => {
    // A part already refused (an unknown key beside the fields) is not reported again through the whole.
    if (ctx.issues.length > 0) return z.NEVER;
    try {
      return parse(input);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: message(err as Error), input });
      return z.NEVER;
    }
  };
}

/** A Duration (core/duration.ts): its milliseconds, printed as written. */
const duration = () =>
  z
    .string()
    .regex(DURATION_PATTERN, { error: 'expected a duration like "30m" or "1h 30m"', abort: true })
    .transform(parsedBy(Duration.parse));

/** A Percent (core/duration.ts): its share, printed as written. */
const percent = () =>
  z
    .string()
    .regex(PERCENT_PATTERN, { error: 'expected a percentage like "80%"', abort: true })
    .transform(parsedBy(Percent.parse));

const timeZone = () =>
  z.string().refine((zone) => IANAZone.isValidZone(zone), { error: 'expected an IANA time zone like "Europe/Berlin" or "UTC"' });

function isFromAddress(value: string): boolean {
  const match = /^(?:[^<>]*<([^<>]+)>|([^<>\s]+))$/.exec(value.trim());
  const address = match?.[1] ?? match?.[2];
  return address !== undefined && z.regexes.html5Email.test(address.trim());
}

function isHttpUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '';
}

/** An IPv4 or IPv6 address, optionally with a /prefix length: what a reverse proxy connects from. */
function isAddressOrCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

// `true` used to trust every peer, so anyone reaching the port directly
// could choose the address the rate limits count. It is refused rather than
// narrowed silently: a proxy on another host would then be counted as one
// client, and every customer behind it would share one limit.
function trustProxySchema() {
  return z.union(
    [
      z.literal(false),
      z.array(z.string().refine(isAddressOrCidr, { error: 'expected an IP address or CIDR like "10.0.0.0/8"' })).min(1),
    ],
    {
      error: (issue) =>
        issue.input === true
          ? 'true would trust any peer: list the addresses of your reverse proxies instead, e.g. ["127.0.0.1", "::1"]'
          : 'expected false or a list of proxy addresses, e.g. ["127.0.0.1"]',
    },
  );
}

/** Status-page lookups (valid or not) one client may make per minute when `statusPage.lookupsPerMinute` is unset. */
export const STATUS_PAGE_LOOKUPS_PER_MINUTE = 60;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Object-level checks run even when a sibling field failed, so one pass reports every problem. */
const whenObject = { when: (payload: { value: unknown }) => isRecord(payload.value) };

function exactlyOne(keys: readonly string[]) {
  const names = keys.map((key) => `"${key}"`);
  const list = `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
  return (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    if (keys.filter((key) => value[key] !== undefined).length !== 1) {
      ctx.addIssue({ code: 'custom', message: `set exactly one of ${list}`, input: undefined });
    }
  };
}

const smtpAuthSchema = z
  .strictObject({ user: text(), pass: text().optional(), passFile: text().optional() })
  .superRefine(exactlyOne(['pass', 'passFile']), whenObject);

const imapAuthSchema = z
  .strictObject({
    user: text(),
    pass: text().optional(),
    passFile: text().optional(),
    accessTokenCommand: z
      .array(text())
      .min(1, { error: 'expected the command and its arguments, e.g. ["/usr/local/bin/get-token", "--user", "x"]' })
      .optional(),
  })
  .superRefine(exactlyOne(['pass', 'passFile', 'accessTokenCommand']), whenObject);

const transportSchema = z.enum(['smtp', 'file']);
const fromSchema = () => z.string().refine(isFromAddress, { error: 'expected an address or "Name <address>"' });

/**
 * Applied where the pool is built rather than by the schema, so the parsed
 * config (and `check-config --json`) shows only what the operator wrote here.
 */
export const SMTP_POOL_DEFAULTS = { maxConnections: 5, maxMessages: 100 } as const;

const smtpSchema = z
  .strictObject({
    host: text().optional(),
    port: port().default(587),
    /** Implicit TLS (usually port 465); false means STARTTLS when offered. */
    secure: z.boolean().default(false),
    requireTLS: z.boolean().default(false),
    tlsRejectUnauthorized: z.boolean().default(true),
    auth: smtpAuthSchema.optional(),
    from: fromSchema(),
    sendTimeoutMs: positiveInt().default(60_000),
    /** Connections kept open to the server; the outbox sends this many mails at once. Default: SMTP_POOL_DEFAULTS. */
    maxConnections: intBetween(1, 100).optional(),
    /** Mails sent over one connection before it is replaced with a fresh one. Default: SMTP_POOL_DEFAULTS. */
    maxMessages: positiveInt().optional(),
    transport: transportSchema.default('smtp'),
    /** With transport "file", outbound mail is written here as .eml files instead of sent. */
    fileDir: text().optional(),
  })
  .superRefine((smtp, ctx) => {
    if (smtp.transport === 'smtp' && smtp.host === undefined) {
      ctx.addIssue({ code: 'custom', path: ['host'], message: 'required', input: undefined });
    }
    if (smtp.transport === 'file' && smtp.fileDir === undefined) {
      ctx.addIssue({ code: 'custom', path: ['fileDir'], message: 'required when transport is "file"', input: undefined });
    }
  }, whenObject);

/** A mailbox's partial override: no defaults here, so unset fields fall through to the top-level smtp. */
const smtpOverrideSchema = z
  .strictObject({
    host: text(),
    port: port(),
    secure: z.boolean(),
    requireTLS: z.boolean(),
    tlsRejectUnauthorized: z.boolean(),
    auth: smtpAuthSchema,
    from: fromSchema(),
    sendTimeoutMs: positiveInt(),
    maxConnections: intBetween(1, 100),
    maxMessages: positiveInt(),
    transport: transportSchema,
    fileDir: text(),
  })
  .partial();

const imapSchema = z.strictObject({
  host: text(),
  port: port().default(993),
  secure: z.boolean().default(true),
  tlsRejectUnauthorized: z.boolean().default(true),
  auth: imapAuthSchema,
  idle: z.boolean().default(true),
  /** COMPRESS=DEFLATE (RFC 4978) when the server offers it; see createImapClient for why it is off unless asked for. */
  compress: z.boolean().default(false),
  pollIntervalMs: positiveInt().default(60_000),
  batchSize: positiveInt().default(50),
  operationTimeoutMs: positiveInt().default(60_000),
  maxLiteralSize: positiveInt().optional(),
});

const mailboxSchema = z.strictObject({
  name: z.string().regex(MAILBOX_NAME_PATTERN, {
    error: 'expected lower-case letters, digits, "-" or "_", starting with a letter or digit',
  }),
  // Lower-cased because parsed recipient addresses are compared lower-cased.
  address: email().toLowerCase(),
  aliases: z.array(email().toLowerCase()).default(() => []),
  referencePrefix: z.string().regex(REFERENCE_PREFIX_PATTERN, {
    error: 'expected 2 to 10 upper-case letters or digits starting with a letter, like "ACME"',
  }),
  language: z.string().regex(LANGUAGE_PATTERN, { error: 'expected a language tag like "en" or "de"' }).default('en'),
  /** Time zone the mailbox's mail shows dates and times in; UTC when unset. */
  timezone: timeZone().optional(),
  staffAddress: email().optional(),
  /** The queue a new ticket of this mailbox joins when no routing rule sets one. */
  defaultQueue: text().optional(),
  /** Absent for a mailbox fed only by `ingest` or LMTP. */
  imap: imapSchema.optional(),
  folder: text().default('INBOX'),
  processedAction: z.enum(['move', 'flag']).default('move'),
  processedFolder: text().default('Processed'),
  quarantineFolder: text().default('Quarantine'),
  reopenWindowDays: countInt().default(14),
  smtp: smtpOverrideSchema.optional(),
});

const hours = () => z.string().regex(HOURS_PATTERN, { error: 'expected hours like "09:00-17:00" or "09:00-12:00,13:00-17:00"' });

// The shape is checked field by field, then the calendar is built: what only
// the whole calendar shows (overlapping ranges, a week with no opening) is a
// problem under its name, and the SLA engine takes the built one.
const calendarSchema = z
  .strictObject({
    timezone: timeZone(),
    hours: z.strictObject({
      mon: hours().optional(),
      tue: hours().optional(),
      wed: hours().optional(),
      thu: hours().optional(),
      fri: hours().optional(),
      sat: hours().optional(),
      sun: hours().optional(),
    }),
    holidays: z.array(z.iso.date({ error: 'expected a date like "2025-12-25"' })).default(() => []),
  })
  .transform(parsedBy(BusinessCalendar.from, (err) => err.message.replace(/^invalid calendar: /, '')));

// A calendar under the reserved name is refused by name, without building it.
const calendarName = () =>
  text().refine((name) => name !== ROUND_THE_CLOCK, {
    error: `reserved name: "${ROUND_THE_CLOCK}" always means round the clock`,
  });

const slaPolicySchema = z.strictObject({
  name: text(),
  match: z.strictObject({
    mailbox: text().optional(),
    priority: z.enum(['low', 'normal', 'high', 'urgent']).optional(),
  }),
  firstResponse: duration(),
  resolution: duration(),
  /** A key of `calendars`, or "24x7". */
  calendar: text(),
  customerNotices: z
    .array(z.strictObject({ at: percent(), repeatEvery: duration().optional(), max: positiveInt().default(1) }))
    .default(() => []),
  staffWarnings: z.array(percent()).prefault(() => ['80%', '100%']),
  staffAddress: email().optional(),
});

// A routing pattern is a case-insensitive regular expression; one that does
// not compile is refused here rather than when the first mail arrives.
const pattern = () =>
  z
    .string()
    .min(1, { error: 'must not be empty' })
    .superRefine((source, ctx) => {
      try {
        new RegExp(source, 'iu');
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `not a regular expression: ${(err as Error).message}`, input: source });
      }
    });

const queueSchema = z.strictObject({
  /** Shown to the customer ("handed to the NAME team") and used in rules, commands and reports. */
  name: z.string().trim().min(1, { error: 'must not be empty' }).max(60, { error: 'at most 60 characters' }),
  /** Who works the queue: their mail is obeyed as staff mail, and they are told of its tickets unless `notify` is set. */
  staff: z.array(email().toLowerCase()).default(() => []),
  /** One address (a group or list) told of the queue's new tickets and handoffs instead of each of `staff`. */
  notify: email().toLowerCase().optional(),
  /** SLA policy of the queue's tickets (a name under sla.policies); else the policies' own match rules. */
  sla: text().optional(),
});

const routingRuleSchema = z.strictObject({
  name: text(),
  match: z
    .strictObject({
      mailbox: pattern().optional(),
      to: pattern().optional(),
      fromDomain: pattern().optional(),
      subject: pattern().optional(),
      body: pattern().optional(),
      header: z.record(z.string().regex(/^[A-Za-z0-9-]+$/, { error: 'expected a header name' }), pattern()).optional(),
    })
    .prefault({}),
  set: z.strictObject({
    queue: text().optional(),
    priority: z.enum(['low', 'normal', 'high', 'urgent']).optional(),
    tags: z
      .array(z.string().regex(/^[\p{L}\p{N}][\p{L}\p{N}_.:-]*$/u, { error: 'expected a tag like "warranty" or "hw:printer"' }))
      .optional(),
  }),
});

// Sized for the busiest legitimate hour: a desk catching up on a weekend's
// backlog of a few thousand customers (many at the same large provider)
// acknowledges them all, while a flood of forged mail to many addresses
// stops at this many replies an hour.
const DEFAULT_AUTO_REPLIES_PER_HOUR = 5_000;

const DEFAULT_RETRY_SCHEDULE = ['1m', '5m', '15m', '1h', '2h', '4h', '8h', '12h', '24h', '24h', '24h'];

export const configSchema = z
  .strictObject({
    /** A SQLite file, or a `postgres://` URL for a database several nodes share. */
    database: text().default('./data/ticketd.sqlite'),
    /** Defaults to the directory of `database`; required with PostgreSQL. */
    dataDir: text().optional(),
    /** Only with a PostgreSQL `database`. */
    postgres: z
      .strictObject({
        /** The password when the URL has none: a file, or `credential:NAME` for a systemd credential. */
        passFile: text().optional(),
        /** Connections each node keeps open at most. */
        poolSize: positiveInt().default(10),
      })
      .optional(),
    /** Unset: the host name and DEFAULT_LEASE_MS. */
    cluster: z
      .strictObject({
        /** Unique among the nodes sharing a database; defaults to the host name. */
        nodeName: text().optional(),
        /** A dead node's mailboxes pass to the others about this long after its last heartbeat. */
        leaseMs: intBetween(1_000, 300_000).optional(),
      })
      .optional(),
    publicUrl: z
      .string()
      .refine(isHttpUrl, { error: 'must be an absolute http(s) URL' })
      .transform((url) => url.replace(/\/+$/, '')),
    /** Defaults to the package's shipped templates/ folder. */
    templatesDir: text().optional(),
    log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info') }).prefault({}),
    http: z
      .strictObject({
        host: text().default('127.0.0.1'),
        port: port().default(8080),
        enabled: z.boolean().default(true),
        trustProxy: trustProxySchema().default(false),
        // The JSON API under /api/v1 (bearer tokens from `ticketd tokens create`): off unless asked for.
        api: z.strictObject({ enabled: z.boolean().default(false) }).optional(),
      })
      .prefault({}),
    inbound: z
      .strictObject({
        host: text().default('127.0.0.1'),
        port: port(),
        protocol: z.enum(['lmtp', 'smtp']).default('lmtp'),
        mailbox: text().optional(),
        maxMessageBytes: positiveInt().default(26_214_400),
        // Resource bounds; unset ones take INBOUND_LIMIT_DEFAULTS (see inboundLimits).
        maxConnections: positiveInt().optional(),
        maxInFlightBytes: positiveInt().optional(),
        idleTimeoutMs: positiveInt().optional(),
        transactionTimeoutMs: positiveInt().optional(),
      })
      .optional(),
    smtp: smtpSchema,
    outbox: z
      .strictObject({
        retrySchedule: z.array(duration()).prefault(() => [...DEFAULT_RETRY_SCHEDULE]),
        pollIntervalMs: positiveInt().default(2_000),
        batchSize: positiveInt().default(20),
        /**
         * Mails at most accepted by the SMTP server but not yet recorded as
         * sent, per node: what a crash sends twice. Higher lets the ends of
         * several mails overlap, for a relay slow to answer a message's end.
         */
        maxInDoubt: intBetween(1, 100).default(1),
      })
      .prefault({}),
    limits: z
      .strictObject({
        maxMessageBytes: positiveInt().default(26_214_400),
        maxAttachmentBytes: positiveInt().default(26_214_400),
        acksPerSenderPerHour: countInt().default(5),
        ticketsPerSenderPerHour: countInt().default(10),
        autoRepliesPerHour: countInt().default(DEFAULT_AUTO_REPLIES_PER_HOUR),
      })
      .prefault({}),
    authentication: z
      .strictObject({
        // '' is allowed: Microsoft 365 stamps its results without an authserv-id.
        trustedAuthservIds: z.array(z.string().trim().toLowerCase()).default(() => []),
      })
      .prefault({}),
    mailboxes: z.array(mailboxSchema).min(1, { error: 'at least one mailbox is required' }),
    statusPage: z
      .strictObject({
        linkExpiryDaysAfterClose: countInt().default(30),
        failedLookupsPerMinute: positiveInt().default(20),
        /** Unset: STATUS_PAGE_LOOKUPS_PER_MINUTE. */
        lookupsPerMinute: positiveInt().optional(),
      })
      .prefault({}),
    calendars: z.record(calendarName(), calendarSchema).prefault({}),
    sla: z.strictObject({ policies: z.array(slaPolicySchema).default(() => []) }).prefault({}),
    // Absent rather than empty when not configured: a config without them parses as it did before queues.
    queues: z.array(queueSchema).optional(),
    routing: z.array(routingRuleSchema).optional(),
  })
  .superRefine(crossCheck, whenObject);

type ParsedConfig = z.output<typeof configSchema>;
type Issue = { code: string; path?: PropertyKey[] };

/**
 * Checks that relate one section to another. They run alongside field errors
 * but only read values that no earlier issue touches, so a broken field is
 * reported once rather than echoed by every check that depends on it.
 */
function crossCheck(cfg: ParsedConfig, ctx: z.RefinementCtx<ParsedConfig>): void {
  const issues = ctx.issues as Issue[];
  const trusted = (path: PropertyKey[]): boolean =>
    !issues.some(
      (issue) =>
        issue.code !== 'unrecognized_keys' &&
        (issue.path ?? []).length <= path.length &&
        (issue.path ?? []).every((segment, i) => segment === path[i]),
    );
  const report = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message, input: undefined });

  if (trusted(['database']) && isPostgresUrl(cfg.database)) {
    // attachments and the status-link key are files: every node needs the same ones
    if (cfg.dataDir === undefined)
      report(['dataDir'], 'is required when database is a PostgreSQL URL (a folder every node shares)');
  } else if (trusted(['database']) && cfg.postgres !== undefined) {
    report(['postgres'], 'only applies when database is a postgres:// URL');
  }

  const mailboxes = trusted(['mailboxes']) ? cfg.mailboxes : [];
  const namesTrusted = mailboxes.every((_, i) => trusted(['mailboxes', i, 'name']));
  const mailboxNames = new Set<string>();
  mailboxes.forEach((mailbox, i) => {
    if (!trusted(['mailboxes', i, 'name'])) return;
    if (mailboxNames.has(mailbox.name)) report(['mailboxes', i, 'name'], `duplicate mailbox name "${mailbox.name}"`);
    mailboxNames.add(mailbox.name);
  });

  // Each own address must lead to exactly one mailbox, or LMTP delivery and
  // loop detection could not tell them apart.
  const addressOwner = new Map<string, number>();
  mailboxes.forEach((mailbox, i) => {
    const own: [PropertyKey[], string][] = [];
    if (trusted(['mailboxes', i, 'address'])) own.push([['mailboxes', i, 'address'], mailbox.address]);
    if (trusted(['mailboxes', i, 'aliases'])) {
      for (const [j, alias] of mailbox.aliases.entries()) own.push([['mailboxes', i, 'aliases', j], alias]);
    }
    for (const [path, address] of own) {
      const owner = addressOwner.get(address);
      if (owner !== undefined) report(path, `address "${address}" is already used by mailboxes[${owner}]`);
      else addressOwner.set(address, i);
    }
  });

  const knownMailbox = (path: PropertyKey[], name: string | undefined) => {
    if (name !== undefined && namesTrusted && !mailboxNames.has(name)) report(path, `no mailbox named "${name}"`);
  };

  if (cfg.inbound !== undefined && trusted(['inbound', 'mailbox'])) {
    if (cfg.inbound.mailbox === undefined && mailboxes.length > 1) {
      report(['inbound', 'mailbox'], 'required when more than one mailbox is configured');
    }
    knownMailbox(['inbound', 'mailbox'], cfg.inbound.mailbox);
  }

  // A message the budget can never hold would be deferred until the MTA gives up on it.
  if (cfg.inbound !== undefined && trusted(['inbound', 'maxInFlightBytes']) && trusted(['inbound', 'maxMessageBytes'])) {
    if (cfg.inbound.maxInFlightBytes !== undefined && cfg.inbound.maxInFlightBytes < cfg.inbound.maxMessageBytes) {
      report(['inbound', 'maxInFlightBytes'], `must be at least inbound.maxMessageBytes (${cfg.inbound.maxMessageBytes})`);
    }
  }

  if (trusted(['smtp'])) {
    mailboxes.forEach((mailbox, i) => {
      if (!trusted(['mailboxes', i, 'smtp'])) return;
      const override = mailbox.smtp;
      if (override?.transport === undefined) return;
      if (override.transport === 'smtp' && (override.host ?? cfg.smtp.host) === undefined) {
        report(['mailboxes', i, 'smtp', 'host'], 'required when transport is "smtp"');
      }
      if (override.transport === 'file' && (override.fileDir ?? cfg.smtp.fileDir) === undefined) {
        report(['mailboxes', i, 'smtp', 'fileDir'], 'required when transport is "file"');
      }
    });
  }

  const calendars = trusted(['calendars']) ? cfg.calendars : undefined;

  const policies = trusted(['sla', 'policies']) ? cfg.sla.policies : [];
  const policyNames = new Set<string>();
  policies.forEach((policy, i) => {
    const at = ['sla', 'policies', i];
    if (trusted([...at, 'name'])) {
      if (policyNames.has(policy.name)) report([...at, 'name'], `duplicate policy name "${policy.name}"`);
      policyNames.add(policy.name);
    }
    if (trusted([...at, 'match', 'mailbox'])) knownMailbox([...at, 'match', 'mailbox'], policy.match.mailbox);
    if (
      calendars !== undefined &&
      trusted([...at, 'calendar']) &&
      policy.calendar !== ROUND_THE_CLOCK &&
      !Object.hasOwn(calendars, policy.calendar)
    ) {
      report([...at, 'calendar'], `no calendar named "${policy.calendar}" (define it under "calendars" or use "24x7")`);
    }
  });

  const queues = trusted(['queues']) ? (cfg.queues ?? []) : [];
  const queueNames = new Set<string>();
  const queuesTrusted = queues.every((_, i) => trusted(['queues', i, 'name']));
  queues.forEach((queue, i) => {
    if (trusted(['queues', i, 'name'])) {
      // Staff name a queue in mail commands however they type it.
      const key = queue.name.toLowerCase();
      if (queueNames.has(key)) report(['queues', i, 'name'], `duplicate queue name "${queue.name}"`);
      queueNames.add(key);
    }
    if (queue.sla !== undefined && trusted(['queues', i, 'sla']) && trusted(['sla', 'policies']) && !policyNames.has(queue.sla)) {
      report(['queues', i, 'sla'], `no SLA policy named "${queue.sla}"`);
    }
  });
  const knownQueue = (path: PropertyKey[], name: string | undefined) => {
    if (name !== undefined && queuesTrusted && !queueNames.has(name.toLowerCase()))
      report(path, `no queue named "${name}" (define it under "queues")`);
  };
  mailboxes.forEach((mailbox, i) => {
    if (trusted(['mailboxes', i, 'defaultQueue'])) knownQueue(['mailboxes', i, 'defaultQueue'], mailbox.defaultQueue);
  });
  const rules = trusted(['routing']) ? (cfg.routing ?? []) : [];
  const ruleNames = new Set<string>();
  rules.forEach((rule, i) => {
    if (trusted(['routing', i, 'name'])) {
      if (ruleNames.has(rule.name)) report(['routing', i, 'name'], `duplicate rule name "${rule.name}"`);
      ruleNames.add(rule.name);
    }
    if (trusted(['routing', i, 'set', 'queue'])) knownQueue(['routing', i, 'set', 'queue'], rule.set.queue);
  });
}
