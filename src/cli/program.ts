// The ticketd command line: every command and option, built without running
// anything, so the help, the docs test and main.ts see the same program.

import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig, loadRunnableConfig } from '../config/load-config.js';
import { packageRoot } from '../config/package-root.js';
import { redactConfig } from '../config/secrets.js';
import { TICKET_STATUSES, type TicketStatus } from '../core/types.js';
import { loadTemplates } from '../daemon/templates-check.js';
import { applyMigrations } from '../store/migrate.js';
import { openEngine } from '../store/open-store.js';
import { cliContext, EXIT, refArg, withRuntime } from './cli-context.js';
import { out, print, printErr, printTable, UsageError } from './output.js';
import { readTextInput, type TextSource } from './text-input.js';
import { ticketJson } from '../store/ticket-json.js';
import { ticketText } from './ticket-view.js';

// Modules beyond what every command shares (config, store, templates) load
// on demand: an MTA runs `ticketd ingest` once per message, and it should not
// pay for the daemon's IMAP, HTTP and metrics code it never runs.

export const program = new Command('ticketd')
  .description('Email-to-ticket daemon: every support mail becomes a ticket, acknowledged at once.')
  .version(packageVersion(), '-V, --version', 'print the version and exit')
  .option('-c, --config <path>', 'configuration file', './config.json')
  .showHelpAfterError()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  // Commander would exit 1 on a wrong call; fail() in main.ts turns its error into 64.
  // Set before any command is added, so every subcommand inherits it.
  .exitOverride();

const ctx = cliContext(program);
const configPath = ctx.configPath;

program
  .command('start')
  .description('run the daemon: watch the mailboxes, send from the outbox (SIGTERM stops cleanly, SIGHUP reloads)')
  .action(async () => {
    const [{ startDaemon }, { createLogger }, { systemClock }, { startWithSignals }] = await Promise.all([
      import('../daemon/daemon.js'),
      import('../core/logger.js'),
      import('../core/clock.js'),
      import('../daemon/process-signals.js'),
    ]);
    const config = loadRunnableConfig(configPath());
    const logger = createLogger({ level: config.log.level });
    // Anything that escapes every worker's own handling is a bug: say so in
    // the log and exit, so the service manager restarts from the database.
    const crash = (err: unknown) => {
      logger.fatal(
        { code: 'DAEMON_CRASHED', error: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack },
        'unexpected error, exiting',
      );
      process.exit(EXIT.error);
    };
    process.on('uncaughtException', crash);
    process.on('unhandledRejection', crash);
    // Listening before the daemon starts: a SIGHUP sent the moment it says
    // it runs must not find the default action (ending the process).
    await startWithSignals({
      signals: process,
      logger,
      start: () => startDaemon({ configPath: configPath(), logger, clock: systemClock }),
      exit: () => process.exit(EXIT.ok),
    });
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .action(async () => {
    const config = loadConfig(configPath());
    const engine = await openEngine(config.database, { migrate: 'none', postgres: config.postgres });
    try {
      const { from, to } = await applyMigrations(engine);
      await engine.checkQueries();
      process.stderr.write(from === to ? `database is at version ${to}\n` : `migrated database from version ${from} to ${to}\n`);
    } finally {
      await engine.close();
    }
  });

program
  .command('check-config')
  .description('validate the configuration and templates as start would, changing nothing on disk; prints one line per problem')
  .option('--json', 'print the effective configuration (secrets redacted)')
  .action((opts: { json?: boolean }) => {
    // Reads only: no database, data folder or link key is created, and no
    // database is migrated (an operator runs this before an upgrade, often
    // as root, and must be able to run it anywhere).
    const config = loadRunnableConfig(configPath());
    loadTemplates(config);
    if (opts.json) out(redactConfig(config));
    else process.stderr.write(`configuration OK: ${config.mailboxes.length} mailbox(es), templates OK\n`);
  });

const tickets = program.command('tickets').description('look at and act on tickets');

tickets
  .command('list')
  .description('list tickets')
  .addOption(new Option('--status <status>', 'only tickets with this status').choices(TICKET_STATUSES as string[]))
  .option('--mailbox <name>', 'only tickets of this mailbox')
  .option('--queue <name>', 'only tickets of this queue (any case)')
  .option('--json', 'print JSON')
  .action(async (opts: { status?: TicketStatus; mailbox?: string; queue?: string; json?: boolean }) => {
    await withRuntime(ctx, async (runtime) => {
      const list = await runtime.store.listTickets({
        ...(opts.status ? { status: opts.status } : {}),
        ...(opts.mailbox ? { mailbox: opts.mailbox } : {}),
        ...(opts.queue ? { queue: opts.queue } : {}),
      });
      if (opts.json) out(list);
      else
        printTable(list, ['ref', 'status', 'mailbox', 'queue', 'requester', 'createdAt', 'messageCount', 'linkedTo', 'subject']);
    });
  });

tickets
  .command('show <ref>')
  .description('show one ticket: its fields, then the conversation oldest first with every text, internal notes marked')
  .option('--json', 'print JSON')
  .action(async (refText: string, opts: { json?: boolean }) => {
    await withRuntime(ctx, async (runtime) => {
      const ref = refArg(refText);
      const detail = await runtime.store.ticketDetail(ref);
      if (!detail) throw new UsageError(`no ticket with reference ${ref}`);
      if (opts.json) out(ticketJson(detail));
      else print(ticketText(detail));
    });
  });

tickets
  .command('reply <ref>')
  .description(
    'send an agent reply to the requester (threaded, counts as a response); the text from --message, --file or stdin, then any --answer',
  )
  .option('-m, --message <text>', 'the reply text')
  .option('-f, --file <path>', 'read the reply from a file (- for stdin)')
  .option('-a, --answer <name>', 'add the vetted answer NAME of templates/answers/ after the text (repeatable)', collect, [])
  .option('--by <name>', 'who uses the answers, as the report counts them', staffName())
  .action(async (refText: string, opts: TextSource & { answer: string[]; by: string }) => {
    const ref = refArg(refText);
    const text = await replyText(opts);
    await withRuntime(ctx, async (runtime) => {
      const ticket = await runtime.addAgentReply(ref, text, runtime.clock.now().getTime(), {
        answers: opts.answer,
        by: opts.by,
      });
      printErr(`reply to ${ticket.ref} queued for ${ticket.replyTo}${answersNote(opts.answer)}\n`);
    });
  });

tickets
  .command('note <ref>')
  .description('add an internal note for staff (never sent or shown to the customer); the text from --message, --file or stdin')
  .option('-m, --message <text>', 'the note')
  .option('-f, --file <path>', 'read the note from a file (- for stdin)')
  .option('--by <name>', 'who writes it', staffName())
  .action(async (refText: string, opts: TextSource & { by: string }) => {
    const ref = refArg(refText);
    const text = await readTextInput(opts, 'note');
    await withRuntime(ctx, async (runtime) => {
      const t = await runtime.addNote(ref, text, opts.by, runtime.clock.now().getTime());
      printErr(`note added to ${t.ref}\n`);
    });
  });

tickets
  .command('resolve <ref>')
  .description(
    'resolve a ticket; the requester gets one mail inviting a rating: the last reply --message, --file or --answer gives, else a short resolution mail',
  )
  .option('-m, --message <text>', 'the reply sent with it')
  .option('-f, --file <path>', 'read that reply from a file (- for stdin)')
  .option('-a, --answer <name>', 'add the vetted answer NAME of templates/answers/ to that reply (repeatable)', collect, [])
  .option('--by <name>', 'who uses the answers, as the report counts them', staffName())
  .action(async (refText: string, opts: TextSource & { answer: string[]; by: string }) => {
    const ref = refArg(refText);
    // Only read when asked for: a resolve without words is common, and stdin may be a script's.
    const text = opts.message !== undefined || opts.file !== undefined || opts.answer.length > 0 ? await replyText(opts) : null;
    await withRuntime(ctx, async (runtime) => {
      const t = await runtime.resolve(ref, text, runtime.clock.now().getTime(), { answers: opts.answer, by: opts.by });
      printErr(`${t.ref} is now resolved; ${text !== null ? 'reply' : 'resolution mail'} queued for ${t.replyTo}\n`);
    });
  });

tickets
  .command('status <ref> <status>')
  .description(
    `set a ticket's status (${TICKET_STATUSES.join(', ')}); the same status again is refused; resolved sends the customer the resolution mail, as tickets resolve does`,
  )
  .option('--reason <text>', 'public reason shown to the customer when on-hold (kept when not given; "" clears it)')
  .action(async (refText: string, status: string, opts: { reason?: string }) => {
    if (!(TICKET_STATUSES as string[]).includes(status)) {
      throw new UsageError(`unknown status ${JSON.stringify(status)}; use one of ${TICKET_STATUSES.join(', ')}`);
    }
    if (opts.reason !== undefined && status !== 'on-hold')
      throw new UsageError('--reason is the on-hold reason; it goes only with on-hold');
    const reason = opts.reason === undefined ? undefined : opts.reason.trim() || null;
    await withRuntime(ctx, async (runtime) => {
      const ref = refArg(refText);
      const now = runtime.clock.now().getTime();
      // Resolved this way is a resolution like any other: the customer gets the mail that invites a rating.
      const t =
        status === 'resolved'
          ? await runtime.resolve(ref, null, now)
          : await runtime.store.setStatus(ref, status as TicketStatus, { ...(reason !== undefined ? { reason } : {}), now });
      printErr(
        `${t.ref} is now ${t.status}${t.status === 'on-hold' ? (t.onHoldReason ? `: ${t.onHoldReason}` : ' (no reason shown to the customer)') : ''}\n`,
      );
    });
  });

tickets
  .command('handoff <ref>')
  .description(
    'hand a ticket to another queue or person with a note (required); the receiving side is mailed the whole story, the customer sees the queue name only',
  )
  .option('--queue <name>', 'the queue taking over')
  .option('--team <name>', 'the same as --queue (its name before queues; kept for one release)')
  .option('--to <address>', 'the person taking over (an address of staff)')
  .option('-m, --note <text>', 'what the next person needs to know (internal); else --file or stdin')
  .option('-f, --file <path>', 'read the note from a file (- for stdin)')
  .option('--by <name>', 'who hands it on', staffName())
  .action(
    async (refText: string, opts: { queue?: string; team?: string; to?: string; note?: string; file?: string; by: string }) => {
      const ref = refArg(refText);
      if (opts.queue !== undefined && opts.team !== undefined) throw new UsageError('give --queue or --team, not both');
      const queueName = (opts.queue ?? opts.team)?.trim();
      if (queueName === '') throw new UsageError('--queue must name a queue');
      if (queueName === undefined && opts.to === undefined) throw new UsageError('give --queue NAME or --to ADDRESS');
      const note = await readTextInput({ message: opts.note, file: opts.file }, 'handoff note');
      await withRuntime(ctx, async (runtime) => {
        const to = {
          ...(queueName !== undefined ? { queue: queueName } : {}),
          ...(opts.to !== undefined ? { owner: opts.to } : {}),
        };
        const r = await runtime.handoff(ref, to, note, opts.by, runtime.clock.now().getTime());
        const taker = r.ticket.owner ? `${r.ticket.owner} (${r.ticket.queue ?? 'no queue'})` : (r.ticket.queue ?? '');
        printErr(
          `${r.ticket.ref} handed to ${taker}${r.notices ? `; ${r.notices} notice(s) queued` : '; nobody to notify (no staff or notify address for it)'}\n`,
        );
      });
    },
  );

tickets
  .command('assign <ref> <owner>')
  .description(
    'give a ticket to one person of its queue (an address), or "none" to give it back to the queue; taking it from someone else is a handoff and needs --note',
  )
  .option('-m, --note <text>', 'why (required when someone else owned it)')
  .option('--by <name>', 'who assigns it', staffName())
  .action(async (refText: string, ownerText: string, opts: { note?: string; by: string }) => {
    const ref = refArg(refText);
    await withRuntime(ctx, async (runtime) => {
      const owner = ownerText === 'none' ? null : ownerText;
      const r = await runtime.assignOwner(ref, owner, opts.note?.trim() || null, opts.by, runtime.clock.now().getTime());
      printErr(
        `${r.ticket.ref} is ${r.ticket.owner ? `owned by ${r.ticket.owner}` : `with ${r.ticket.queue ?? 'no queue'}, unowned`}${r.handoff ? ' (handoff recorded)' : ''}\n`,
      );
    });
  });

// Command modules of the other areas (status page, SLA, operations), in the
// order help lists them. Only the module of the command being run is
// loaded; help, an unknown command or none at all loads every one.
const COMMAND_MODULES: { commands: readonly string[]; register: () => Promise<void> }[] = [
  { commands: ['sla'], register: async () => (await import('./sla-commands.js')).registerSlaCommands(program, ctx) },
  {
    commands: ['systemd-unit', 'doctor', 'backup', 'templates'],
    register: async () => (await import('./ops-commands.js')).registerOpsCommands(program, ctx),
  },
  {
    commands: ['ingest', 'quarantine'],
    register: async () => (await import('./inbound-commands.js')).registerInboundCommands(program, ctx),
  },
  { commands: ['outbox'], register: async () => (await import('./outbox-commands.js')).registerOutboxCommands(program, ctx) },
  { commands: ['rules'], register: async () => (await import('./routing-commands.js')).registerRoutingCommands(program, ctx) },
  { commands: ['report'], register: async () => (await import('./report-commands.js')).registerReportCommand(program, ctx) },
  { commands: ['tokens'], register: async () => (await import('./token-commands.js')).registerTokenCommands(program, ctx) },
  { commands: ['demo'], register: async () => (await import('./demo.js')).registerDemoCommand(program) },
  {
    commands: ['tickets'],
    register: async () => (await import('./status-link-commands.js')).registerStatusLinkCommands(tickets, ctx),
  },
];

/** Commander's way to take an option more than once. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * A reply's own text. With an answer and neither --message nor --file there
 * is none, and stdin is left alone: the answer alone is a whole reply.
 */
async function replyText(opts: TextSource & { answer: string[] }): Promise<string> {
  if (opts.answer.length > 0 && opts.message === undefined && opts.file === undefined) return '';
  return readTextInput(opts, 'reply');
}

function answersNote(answers: readonly string[]): string {
  return answers.length > 0 ? ` with answer ${answers.map((a) => a.toLowerCase()).join(', ')}` : '';
}

/** Who a note or handoff is recorded as written by, unless `--by` says: the login running the command. */
function staffName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'cli';
  }
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
/**
 * Adds the commands of the modules that `word` belongs to, or of every
 * module when it names none of them and no command main.ts defines (help,
 * an unknown command, none at all).
 */
export async function registerCommands(word: string | undefined): Promise<void> {
  const own = COMMAND_MODULES.filter((m) => word !== undefined && m.commands.includes(word));
  const core = program.commands.some((c) => c.name() === word);
  for (const m of own.length > 0 || core ? own : COMMAND_MODULES) await m.register();
}
