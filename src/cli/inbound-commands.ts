import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import type { TemplateProblem } from '../compose/template-registry.js';
import type { Runtime, RuntimeOptions } from '../daemon/runtime.js';
import { formatProblem } from '../daemon/templates-check.js';
import { takeMessages } from '../pipeline/take-messages.js';
import { ingestMessages, readPipedMessage } from '../sources/pipe/ingest.js';
import type { IntakeResult, QuarantineEntry } from '../store/store.js';
import { EXIT, openCliRuntime, withRuntime, type CliContext } from './cli-context.js';
import { out, print, printErr, printTable, UsageError } from './output.js';
import { createProgress } from '../core/progress.js';

/**
 * What `ingest` loads: an MTA starts it once per message, so it compiles only
 * the acknowledgement (the one mail intake composes) and not the status page.
 * The other kinds are still checked when the daemon starts or reloads.
 */
const INGEST_RUNTIME: RuntimeOptions = { templates: { mailKinds: ['ack'], web: false } };

/** `reason` of an over-size quarantine entry, as the pipeline writes it. */
const TOO_LARGE_REASON = /^too-large: (\d+) bytes/;

interface IngestLine {
  source: string;
  outcome: IntakeResult['outcome'];
  reason: string;
  ref: string | null;
  ackQueued: boolean;
  quarantineId: number | null;
}

interface RetryLine {
  id: number;
  mailbox: string;
  /** What became of it: an intake outcome, `quarantined-again`, or `skipped`. */
  outcome: string;
  ref: string | null;
  /** The new entry when the message failed again. */
  quarantineId: number | null;
  reason: string;
}

export function registerInboundCommands(program: Command, ctx: CliContext): void {
  program
    .command('ingest')
    .description(
      'take messages from stdin (one) or files (one each), for delivery by an MTA to a command; exit 0 taken, 75 try again later',
    )
    .argument('[file...]', 'message files (.eml); without any, one message is read from stdin')
    .requiredOption('--mailbox <name>', 'the mailbox the messages were sent to')
    .option('--json', 'print the results as JSON on stdout')
    .action(async (files: string[], opts: { mailbox: string; json?: boolean }) => {
      process.exitCode = await ingest(ctx, files, opts);
    });

  const quarantine = program
    .command('quarantine')
    .description('see why messages were quarantined and feed them through the pipeline again');

  quarantine
    .command('list')
    .description('list quarantined messages')
    .option('--all', 'include entries already released')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      await withRuntime(ctx, async (rt) => {
        const entries = await rt.store.listQuarantine({ includeReleased: opts.all === true });
        if (opts.json) {
          out(entries.map(entryJson));
          return;
        }
        printTable(
          entries.map((e) => ({
            id: e.id,
            mailbox: e.mailbox,
            when: new Date(e.createdAt).toISOString(),
            size: e.size,
            reason: e.reason,
            ...(opts.all ? { released: e.releaseOutcome ?? '' } : {}),
          })),
          ['id', 'mailbox', 'when', 'size', 'reason', ...(opts.all ? (['released'] as const) : [])],
        );
      });
    });

  quarantine
    .command('show <id>')
    .description('show why a message was quarantined and its headers (the body only with --raw)')
    .option('--raw', 'print the whole stored message instead')
    .option('--json', 'print JSON')
    .action(async (idText: string, opts: { raw?: boolean; json?: boolean }) => {
      await withRuntime(ctx, async (rt) => {
        const found = await rt.store.quarantineRaw(idArg(idText));
        if (!found) throw new UsageError(`no quarantine entry #${idText}`);
        if (opts.raw) {
          if (found.entry.releaseOutcome === 'discarded')
            throw new UsageError(`quarantine entry #${found.entry.id} was discarded; its bytes were removed`);
          process.stdout.write(found.raw);
          return;
        }
        const headers = headerBlock(found.raw);
        if (opts.json) {
          out({ ...entryJson(found.entry), storedBytes: found.raw.length, headers });
          return;
        }
        const e = found.entry;
        const fields: [string, string | number][] = [
          ['id', e.id],
          ['mailbox', e.mailbox],
          ['when', new Date(e.createdAt).toISOString()],
          ['reason', e.reason],
          ['origin', describeOrigin(e)],
          ['size', found.raw.length],
        ];
        if (e.releasedAt !== null) fields.push(['released', `${new Date(e.releasedAt).toISOString()} ${e.releaseOutcome ?? ''}`]);
        for (const [k, v] of fields) print(`${k.padEnd(9)} ${v}\n`);
        print(`\n${headers}\n`);
      });
    });

  quarantine
    .command('discard <id>')
    .description(
      'drop a junk entry: it is released as discarded and its stored bytes are removed (the IMAP quarantine folder is left alone)',
    )
    .option('--json', 'print JSON')
    .action(async (idText: string, opts: { json?: boolean }) => {
      const id = idArg(idText);
      await withRuntime(ctx, async (rt) => {
        const done = await rt.store.discardQuarantine(id, rt.clock.now().getTime());
        if (!done) throw new UsageError(`no quarantine entry #${id}`);
        if (opts.json) out({ ...entryJson(done.entry), bytesRemoved: done.bytesRemoved });
        printErr(
          `quarantine entry #${id} discarded${done.bytesRemoved ? `; its ${done.entry.size} stored bytes were removed` : '; its bytes stay, a ticket message holds the same ones'}\n`,
        );
      });
    });

  quarantine
    .command('retry [id]')
    .description('feed quarantined messages through the pipeline again (after raising a limit or fixing a template)')
    .option('--all', 'every entry not yet released')
    .option('--json', 'print JSON')
    .action(async (idText: string | undefined, opts: { all?: boolean; json?: boolean }) => {
      if ((idText === undefined) === (opts.all !== true)) throw new UsageError('give one quarantine id or --all');
      await withRuntime(ctx, async (rt) => {
        let lines: RetryLine[];
        if (idText !== undefined) {
          const id = idArg(idText);
          const found = await rt.store.quarantineRaw(id);
          if (!found) throw new UsageError(`no quarantine entry #${id}`);
          if (found.entry.releasedAt !== null) {
            throw new UsageError(`quarantine entry #${id} was already released (${found.entry.releaseOutcome ?? ''})`);
          }
          lines = [await retryEntry(rt, found)];
        } else {
          const entries = await rt.store.listQuarantine();
          const progress = createProgress({ label: 'quarantine retry', total: entries.length });
          lines = [];
          try {
            for (const entry of entries) {
              // Loaded one at a time: a backlog of large messages never sits in memory at once.
              const found = await rt.store.quarantineRaw(entry.id);
              if (found) lines.push(await retryEntry(rt, found));
              progress.tick();
            }
          } finally {
            progress.done();
          }
        }
        if (opts.json) out(lines);
        else printTable(lines, ['id', 'mailbox', 'outcome', 'ref', 'quarantineId', 'reason']);
        // Scripts can tell "all released" from "some are still in quarantine".
        if (lines.some((l) => l.outcome === 'quarantined-again' || l.outcome === 'skipped')) process.exitCode = EXIT.error;
      });
    });
}

/**
 * Exit codes as sendmail's pipe delivery expects: 0 once the message is in
 * the database (whatever the outcome), 64 for a wrong call, and 75 for
 * anything else (database busy or locked, disk full, config unreadable or
 * invalid, templates broken, any other error): a deferral keeps the mail in
 * the MTA's queue until the problem is fixed, where a bounce would lose it.
 */
async function ingest(ctx: CliContext, files: string[], opts: { mailbox: string; json?: boolean }): Promise<number> {
  let rt: Runtime;
  try {
    rt = await openCliRuntime(ctx.configPath(), INGEST_RUNTIME);
  } catch (err) {
    return tempfail(err);
  }
  try {
    if (!rt.config.mailboxes.some((m) => m.name === opts.mailbox)) {
      process.stderr.write(
        `ticketd ingest: no mailbox named ${JSON.stringify(opts.mailbox)} (configured: ${rt.config.mailboxes.map((m) => m.name).join(', ')})\n`,
      );
      return EXIT.usage;
    }
    const sources = files.length > 0 ? files : ['-'];
    const messages: Buffer[] = [];
    for (const source of sources) {
      try {
        messages.push(await readPipedMessage(source === '-' ? process.stdin : createReadStream(source)));
      } catch (err) {
        // A file named on the command line that cannot be read is a wrong call; stdin failing is not.
        if (source === '-') return tempfail(err);
        process.stderr.write(
          `ticketd ingest: cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`,
        );
        return EXIT.usage;
      }
    }
    let results: IntakeResult[];
    try {
      results = await ingestMessages(rt.pipeline, opts.mailbox, messages);
    } catch (err) {
      return tempfail(err);
    }
    const lines: IngestLine[] = results.map((r, i) => ({
      source: sources[i] === '-' ? 'stdin' : sources[i]!,
      outcome: r.outcome,
      reason: r.reason,
      ref: r.ref,
      ackQueued: r.ackQueued,
      quarantineId: r.quarantineId,
    }));
    for (const l of lines) printErr(`ticketd ingest: ${l.source}: ${describeIngest(l)}\n`);
    if (opts.json) out(lines);
    return EXIT.ok;
  } finally {
    await rt.close();
  }
}

function tempfail(err: unknown): number {
  const e = err as { code?: unknown; message?: string; problems?: (string | TemplateProblem)[] };
  const code = typeof e.code === 'string' ? e.code : 'TICKETD_INGEST_FAILED';
  // A config error lists its problems as text, a template error as file and line.
  const detail = e.problems?.length
    ? e.problems.map((p) => (typeof p === 'string' ? p : formatProblem(p))).join('; ')
    : (e.message ?? String(err));
  printErr(`ticketd ingest: temporary failure, try again later: ${code}: ${detail}\n`);
  return EXIT.tempfail;
}

function describeIngest(l: IngestLine): string {
  switch (l.outcome) {
    case 'taken':
      return `taken ${l.ref}${l.ackQueued ? ' (acknowledgement queued)' : ` (no acknowledgement: ${l.reason})`}`;
    case 'quarantined':
      return `quarantined as #${l.quarantineId} (${l.reason})`;
    default:
      return `${l.outcome}${l.ref ? ` ${l.ref}` : ''} (${l.reason})`;
  }
}

/**
 * Takes one entry's stored message again. A message that fails again gets a
 * new entry with the new reason (the pipeline writes it in the same
 * transaction), and the old one is released as `quarantined-again #<new id>`:
 * each attempt keeps its own reason, and `list` shows only the latest.
 */
async function retryEntry(rt: Runtime, found: { entry: QuarantineEntry; raw: Buffer }): Promise<RetryLine> {
  const { entry } = found;
  const base = { id: entry.id, mailbox: entry.mailbox };
  const skip = (reason: string): RetryLine => ({ ...base, outcome: 'skipped', ref: null, quarantineId: null, reason });
  if (!rt.config.mailboxes.some((m) => m.name === entry.mailbox)) return skip(`mailbox ${entry.mailbox} is not configured`);
  const declared = TOO_LARGE_REASON.exec(entry.reason);
  if (declared && found.raw.length < Number(declared[1])) {
    // Only the head of the message was downloaded; taking it would make a ticket of a truncated mail.
    return skip(
      `only the first ${found.raw.length} of ${declared[1]} bytes were stored; ` +
        (entry.origin.via === 'imap'
          ? `move the message back from the mailbox's quarantine folder instead`
          : 'deliver it again instead'),
    );
  }
  const [result] = await takeMessages(rt.pipeline, [{ origin: { via: 'retry', mailbox: entry.mailbox }, raw: found.raw }]);
  const r = result!;
  const again = r.outcome === 'quarantined';
  await rt.store.markQuarantineReleased(
    entry.id,
    again ? `quarantined-again #${r.quarantineId}` : `${r.outcome}${r.ref ? ` ${r.ref}` : ''}`,
    rt.clock.now().getTime(),
  );
  return {
    ...base,
    outcome: again ? 'quarantined-again' : r.outcome,
    ref: r.ref,
    quarantineId: r.quarantineId,
    reason: r.reason,
  };
}

function idArg(text: string): number {
  const id = Number(text.replace(/^#/, ''));
  if (!Number.isSafeInteger(id) || id <= 0) throw new UsageError(`not a quarantine id: ${JSON.stringify(text)}`);
  return id;
}

/** The header block: everything up to the first empty line. */
function headerBlock(raw: Buffer): string {
  const ends = [raw.indexOf('\r\n\r\n'), raw.indexOf('\n\n')].filter((i) => i >= 0);
  const end = ends.length > 0 ? Math.min(...ends) : raw.length;
  return raw.subarray(0, end).toString('utf8').replace(/\r\n/g, '\n');
}

function describeOrigin(e: QuarantineEntry): string {
  const o = e.origin;
  return o.via === 'imap' ? `imap ${o.mailbox} uidvalidity ${o.uidValidity} uid ${o.uid}` : `${o.via} ${o.mailbox}`;
}

function entryJson(e: QuarantineEntry) {
  return {
    id: e.id,
    mailbox: e.mailbox,
    createdAt: new Date(e.createdAt).toISOString(),
    size: e.size,
    reason: e.reason,
    origin: e.origin,
    releasedAt: e.releasedAt === null ? null : new Date(e.releasedAt).toISOString(),
    releaseOutcome: e.releaseOutcome,
  };
}
