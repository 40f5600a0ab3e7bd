#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/load-config.js';
import { packageRoot } from '../config/package-root.js';
import { redactConfig, unreadablePassFiles } from '../config/secrets.js';
import { TICKET_STATUSES, type TicketStatus } from '../core/types.js';
import { loadTemplates, TemplatesInvalidError } from '../daemon/templates-check.js';
import { applyMigrations } from '../store/migrate.js';
import { openEngine } from '../store/open-store.js';
import { composeAgentReply } from '../compose/compose-mail.js';
import { cliContext, EXIT, refArg, withRuntime } from './cli-context.js';
import { out, print, printErr, printTable, UsageError } from './output.js';

// Modules beyond what every command shares (config, store, templates) load
// on demand: an MTA runs `ticketd ingest` once per message, and it should not
// pay for the daemon's IMAP, HTTP and metrics code it never runs.

const program = new Command('ticketd')
  .description('Email-to-ticket daemon: every support mail becomes a ticket, acknowledged at once.')
  .version(packageVersion(), '-V, --version', 'print the version and exit')
  .option('-c, --config <path>', 'configuration file', './config.json')
  .showHelpAfterError()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  // Commander would exit 1 on a wrong call; fail() turns its error into 64.
  // Set before any command is added, so every subcommand inherits it.
  .exitOverride();

// A reader that stops early (`ticketd doctor | head -1`) closes the pipe:
// what is left unwritten is not wanted, so end without a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    throw err;
  });
}

const ctx = cliContext(program);
const configPath = ctx.configPath;

program
  .command('start')
  .description('run the daemon: watch the mailboxes, send from the outbox (SIGTERM stops cleanly, SIGHUP reloads)')
  .action(async () => {
    const [{ startDaemon }, { createLogger }, { systemClock }] = await Promise.all([
      import('../daemon/daemon.js'),
      import('../core/logger.js'),
      import('../core/clock.js'),
    ]);
    const config = loadConfig(configPath());
    const logger = createLogger({ level: config.log.level });
    const daemon = await startDaemon({ configPath: configPath(), logger, clock: systemClock });
    const stop = (signal: string) => {
      logger.info({ code: 'SIGNAL', signal }, `received ${signal}`);
      void daemon.stop().then(() => process.exit(EXIT.ok));
    };
    // Anything that escapes every worker's own handling is a bug: say so in
    // the log and exit, so the service manager restarts from the database.
    const crash = (err: unknown) => {
      logger.fatal({ code: 'DAEMON_CRASHED', error: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack }, 'unexpected error, exiting');
      process.exit(EXIT.error);
    };
    process.on('uncaughtException', crash);
    process.on('unhandledRejection', crash);
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => daemon.reload());
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .action(async () => {
    const config = loadConfig(configPath());
    const engine = await openEngine(config.database, { migrate: false, postgres: config.postgres });
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
    const config = loadConfig(configPath());
    const unreadable = unreadablePassFiles(config);
    if (unreadable.length > 0) throw new ConfigError(unreadable);
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
  .option('--json', 'print JSON')
  .action(async (opts: { status?: TicketStatus; mailbox?: string; json?: boolean }) => {
    await withRuntime(ctx, async (runtime) => {
      const list = await runtime.store.listTickets({
        ...(opts.status ? { status: opts.status } : {}),
        ...(opts.mailbox ? { mailbox: opts.mailbox } : {}),
      });
      if (opts.json) out(list);
      else printTable(list, ['ref', 'status', 'mailbox', 'team', 'requester', 'createdAt', 'messageCount', 'linkedTo', 'subject']);
    });
  });

tickets
  .command('show <ref>')
  .description('show one ticket with its messages')
  .option('--json', 'print JSON')
  .action(async (refText: string, opts: { json?: boolean }) => {
    await withRuntime(ctx, async (runtime) => {
      const ref = refArg(refText);
      const detail = await runtime.store.ticketDetail(ref);
      if (!detail) throw new UsageError(`no ticket with reference ${ref}`);
      const { events, ...rest } = detail;
      const messages = rest.messages.map(({ direction, kind, from, to, subject, messageId, date }) => ({
        direction,
        kind,
        from,
        to,
        subject,
        messageId,
        date,
      }));
      if (opts.json) {
        out({ ...rest, messages });
        return;
      }
      const { messages: _m, ...head } = rest;
      for (const [k, v] of Object.entries(head)) print(`${k.padEnd(13)} ${v ?? ''}\n`);
      process.stdout.write('\n');
      printTable(messages, ['date', 'direction', 'kind', 'from', 'subject']);
      if (events.length) {
        process.stdout.write('\n');
        // Written out in full: an internal note is what the next team reads.
        for (const e of events) {
          const detail = Object.entries(e.detail).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
          print(`${new Date(e.at).toISOString()}  ${e.type.padEnd(16)} ${(e.public ? 'public' : 'internal').padEnd(9)} ${detail.join(' ')}\n`);
        }
      }
    });
  });

tickets
  .command('reply <ref>')
  .description('send an agent reply to the requester (threaded, counts as a response)')
  .requiredOption('-m, --message <text>', 'the reply text')
  .action(async (refText: string, opts: { message: string }) => {
    await withRuntime(ctx, async (runtime) => {
      const ref = refArg(refText);
      const ticket = await runtime.store.addAgentReply(
        ref,
        (t, statusUrl, thread) =>
          composeAgentReply({ config: runtime.config, mailbox: runtime.mailbox(t.mailbox), templates: runtime.templates }, t, opts.message, statusUrl, thread),
        await runtime.pipeline.policy(),
        runtime.clock.now().getTime(),
      );
      printErr(`reply to ${ticket.ref} queued for ${ticket.replyTo}\n`);
    });
  });

tickets
  .command('status <ref> <status>')
  .description(`set a ticket's status (${TICKET_STATUSES.join(', ')})`)
  .option('--reason <text>', 'public reason shown to the customer when on-hold')
  .action(async (refText: string, status: string, opts: { reason?: string }) => {
    if (!(TICKET_STATUSES as string[]).includes(status)) {
      throw new UsageError(`unknown status ${JSON.stringify(status)}; use one of ${TICKET_STATUSES.join(', ')}`);
    }
    await withRuntime(ctx, async (runtime) => {
      const t = await runtime.store.setStatus(refArg(refText), status as TicketStatus, {
        reason: opts.reason ?? null,
        now: runtime.clock.now().getTime(),
      });
      process.stderr.write(`${t.ref} is now ${t.status}\n`);
    });
  });

tickets
  .command('handoff <ref>')
  .description('hand a ticket to another team; the customer sees the team, the team reads the note')
  .requiredOption('--team <name>', 'the team taking over')
  .option('--note <text>', 'what the team needs to know (internal, never shown to the customer)')
  .action(async (refText: string, opts: { team: string; note?: string }) => {
    const team = opts.team.trim();
    if (!team) throw new UsageError('--team must name a team');
    await withRuntime(ctx, async (runtime) => {
      const t = await runtime.store.handoff(refArg(refText), team, opts.note?.trim() || null, runtime.clock.now().getTime());
      printErr(`${t.ref} handed to ${team}\n`);
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
  { commands: ['ingest', 'quarantine'], register: async () => (await import('./inbound-commands.js')).registerInboundCommands(program, ctx) },
  { commands: ['outbox'], register: async () => (await import('./outbox-commands.js')).registerOutboxCommands(program, ctx) },
  { commands: ['demo'], register: async () => (await import('./demo.js')).registerDemoCommand(program) },
  { commands: ['tickets'], register: async () => (await import('./status-link-commands.js')).registerStatusLinkCommands(tickets, ctx) },
];

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The command word of argv: the first argument that is neither an option nor the value of `--config`. */
function commandWord(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-c' || arg === '--config') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

function fail(err: unknown): never {
  if (err instanceof CommanderError) {
    // Commander has printed the message (and help, when asked for) already.
    process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  if (err instanceof ConfigError) {
    for (const p of err.problems) process.stderr.write(`config: ${p}\n`);
    process.exit(EXIT.config);
  }
  if (err instanceof TemplatesInvalidError) {
    printErr(`${err.message}\n`);
    process.exit(EXIT.config);
  }
  if (err instanceof UsageError) {
    printErr(`ticketd: ${err.message}\n`);
    process.exit(EXIT.usage);
  }
  const e = err as { code?: string; message?: string };
  printErr(`ticketd: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
  process.exit(EXIT.error);
}

async function run(): Promise<void> {
  const word = commandWord(process.argv.slice(2));
  const own = COMMAND_MODULES.filter((m) => word !== undefined && m.commands.includes(word));
  const core = program.commands.some((c) => c.name() === word);
  for (const m of own.length > 0 || core ? own : COMMAND_MODULES) await m.register();
  await program.parseAsync(process.argv);
}

run().catch(fail);
