import type { Command } from 'commander';
import type { SlaTicketStatus } from '../sla/sla-status.js';
import type { TickReport } from '../sla/sla-tick.js';
import { refArg, withRuntime, type CliContext } from './cli-context.js';
import { out, print, printTable, UsageError } from './output.js';

/**
 * How far `--now` may be from the clock and still count as the present. A
 * pass at any other instant would date real mail then, so it only reports.
 */
const PRESENT_TOLERANCE_MS = 60_000;

/** `ticketd sla status` and `ticketd sla tick`. */
export function registerSlaCommands(program: Command, ctx: CliContext): void {
  const sla = program.command('sla').description('SLA targets, deadlines and delay notices');

  sla
    .command('status [ref]')
    .description('targets, time used and left, next due and breaches: of one ticket, or of every open, pending or on-hold one')
    .option('--json', 'print JSON')
    .action(async (refText: string | undefined, opts: { json?: boolean }) => {
      await withRuntime(ctx, async (runtime) => {
        const now = runtime.clock.now().getTime();
        let list: SlaTicketStatus[];
        if (refText === undefined) {
          list = await runtime.sla.status(null, now);
        } else {
          const ref = refArg(refText);
          const ticket = await runtime.store.ticketByRef(ref);
          if (!ticket) throw new UsageError(`no ticket with reference ${ref}`);
          list = await runtime.sla.status(ticket, now);
        }
        if (opts.json) out(refText === undefined ? list : list[0]);
        else printStatus(list);
      });
    });

  sla
    .command('tick')
    .description('run one SLA evaluation pass at an instant and print what it queued')
    .option(
      '--now <iso>',
      'the instant to evaluate at, e.g. 2026-03-02T15:00:00Z (default: now); any other instant than the present is a dry run',
    )
    .option('--dry-run', 'evaluate and print, but record and queue nothing')
    .option('--send', 'with --now at another instant: record and queue the mails for real, dated at that instant')
    .option('--json', 'print JSON')
    .action(async (opts: { now?: string; dryRun?: boolean; send?: boolean; json?: boolean }) => {
      const at = opts.now === undefined ? null : Date.parse(opts.now);
      if (at !== null && Number.isNaN(at)) {
        throw new UsageError(`--now: not an ISO time: ${JSON.stringify(opts.now)} (expected e.g. 2026-03-02T15:00:00Z)`);
      }
      if (opts.send && opts.dryRun) throw new UsageError('--send and --dry-run exclude each other');
      await withRuntime(ctx, async (runtime) => {
        const present = runtime.clock.now().getTime();
        const now = at ?? present;
        const elsewhere = Math.abs(now - present) > PRESENT_TOLERANCE_MS;
        const dryRun = opts.dryRun === true || (elsewhere && opts.send !== true);
        if (dryRun && !opts.dryRun) {
          process.stderr.write(
            `dry run: ${new Date(now).toISOString()} is not the present; nothing is recorded or queued (add --send to queue these mails)\n`,
          );
        }
        // A pass handles one batch; run until nothing due at `now` is left.
        const passes: TickReport[] = [await runtime.sla.tick(now, { dryRun })];
        while (passes.at(-1)!.more && !dryRun) passes.push(await runtime.sla.tick(now));
        const report = merge(passes);
        if (opts.json) out(report);
        else printTick(report);
      });
    });
}

function merge(passes: TickReport[]): TickReport {
  const [first] = passes as [TickReport, ...TickReport[]];
  return {
    ...first,
    tickets: passes.reduce((sum, p) => sum + p.tickets, 0),
    queued: passes.flatMap((p) => p.queued),
    skipped: passes.flatMap((p) => p.skipped),
    breached: passes.flatMap((p) => p.breached),
    errors: passes.flatMap((p) => p.errors),
    more: passes.at(-1)!.more,
  };
}

function printStatus(list: SlaTicketStatus[]): void {
  printTable(
    list.map((s) => ({
      ref: s.ref,
      status: s.status,
      policy: s.policy ?? '',
      firstResponse: s.targets ? targetCell(s.targets['first-response']) : '',
      firstResponseDue: s.firstResponseDue ?? '',
      resolution: s.targets ? targetCell(s.targets.resolution) : '',
      resolutionDue: s.resolutionDue ?? '',
      breached: s.breached.join(','),
      notices: s.noticesSent,
      nextDue: s.nextDue ?? '',
    })),
    [
      'ref',
      'status',
      'policy',
      'firstResponse',
      'firstResponseDue',
      'resolution',
      'resolutionDue',
      'breached',
      'notices',
      'nextDue',
    ],
  );
}

function targetCell(t: NonNullable<SlaTicketStatus['targets']>['resolution']): string {
  if (t.metAt !== null) return `met (${t.used} of ${t.target})`;
  return `${t.used} used, ${t.left} left${t.running ? '' : ' (paused)'}`;
}

function printTick(r: TickReport): void {
  const w = (line: string) => print(`${line}\n`);
  w(
    `${r.dryRun ? 'dry run ' : ''}at ${r.now}: ${r.tickets} ticket(s) due, ${r.queued.length} mail(s) ${r.dryRun ? 'would be queued' : 'queued'}`,
  );
  for (const q of r.queued) {
    const extra = q.kind === 'delay-notice' ? ` notice #${q.noticeNumber} (estimate ${q.estimate} from ${q.estimateSource})` : '';
    w(`  ${(r.dryRun ? 'would' : 'queued').padEnd(8)} ${q.ref}  ${q.kind}  ${q.target} ${q.threshold} -> ${q.to}${extra}`);
  }
  for (const b of r.breached) w(`  breached ${b.ref}  ${b.target} (policy ${b.policy})`);
  for (const s of r.skipped) w(`  ${s.outcome.padEnd(8)} ${s.ref}  ${s.kind}  ${s.target} ${s.threshold}: ${s.reason}`);
  for (const e of r.errors) w(`  error    ${e.ref}: ${e.error}`);
}
