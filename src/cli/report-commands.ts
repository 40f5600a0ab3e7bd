import type { Command } from 'commander';
import type { QueueReport, ServiceReport, Share } from '../sla/service-report.js';
import { withRuntime, type CliContext } from './cli-context.js';
import { out, print, printTable, UsageError } from './output.js';

const HOUR_MS = 3_600_000;
/** A date (midnight UTC) or a date and time with its offset. */
const SINCE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

/** `ticketd report`: where service breaks down, per queue. */
export function registerReportCommand(program: Command, ctx: CliContext): void {
  program
    .command('report')
    .description(
      'per queue: tickets opened and resolved, time to first response and to resolution (business hours), SLA breaches, handoffs, reopens, ratings, answers used',
    )
    .option('--since <date>', 'only from this date (YYYY-MM-DD, midnight UTC, or an ISO date and time with offset)')
    .option('--queue <name>', 'only this queue')
    .option('--json', 'print JSON (times in business milliseconds, with the rating comments)')
    .option('--csv', 'print CSV, one row per queue and one for all (times in business hours)')
    .action(async (opts: { since?: string; queue?: string; json?: boolean; csv?: boolean }) => {
      if (opts.json && opts.csv) throw new UsageError('give --json or --csv, not both');
      const since = opts.since === undefined ? null : sinceArg(opts.since);
      await withRuntime(ctx, async (rt) => {
        const queue = opts.queue === undefined ? null : rt.queueNamed(opts.queue);
        const report = await rt.sla.report({ since, queue }, rt.clock.now().getTime());
        if (opts.json) out(report);
        else if (opts.csv) process.stdout.write(reportCsv(report));
        else printReport(report);
      });
    });
}

function sinceArg(text: string): number {
  const at = SINCE.test(text) ? Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text) : Number.NaN;
  if (Number.isNaN(at)) throw new UsageError(`--since: not a date: ${JSON.stringify(text)} (e.g. 2026-11-01)`);
  return at;
}

const rows = (r: ServiceReport): [string, QueueReport][] => [
  ...r.queues.map((q): [string, QueueReport] => [q.queue ?? '(none)', q]),
  ['(all)', r.total],
];
const hours = (ms: number | null) => (ms === null ? '' : (ms / HOUR_MS).toFixed(2));
const ratio = (x: number | null, digits = 3) => (x === null ? '' : x.toFixed(digits));
const pairs = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, n]) => `${k}:${n}`)
    .join(' ');
const shareText = (s: Share) => (s.share === null ? '-' : `${s.count}/${s.of} ${(s.share * 100).toFixed(0)}%`);

function printReport(r: ServiceReport): void {
  print(
    `Tickets opened ${r.since ? `since ${r.since}` : 'at any time'}, until ${r.until}; times in business hours (h) of each ticket's SLA calendar.\n\n`,
  );
  printTable(
    rows(r).map(([name, q]) => ({
      queue: name,
      opened: q.opened,
      resolved: q.resolved,
      'first reply h (median/p90)': q.firstResponse.count
        ? `${hours(q.firstResponse.medianMs)} / ${hours(q.firstResponse.p90Ms)}`
        : '-',
      'resolution h (median/p90)': q.resolution.count ? `${hours(q.resolution.medianMs)} / ${hours(q.resolution.p90Ms)}` : '-',
      'late reply': shareText(q.breached.firstResponse),
      'late resolution': shareText(q.breached.resolution),
      'handoffs/ticket': q.handoffs.mean === null ? '-' : q.handoffs.mean.toFixed(2),
      reopened: shareText(q.reopened),
      rating: q.ratings.average === null ? '-' : `${q.ratings.average.toFixed(2)} (${q.ratings.count})`,
    })),
    [
      'queue',
      'opened',
      'resolved',
      'first reply h (median/p90)',
      'resolution h (median/p90)',
      'late reply',
      'late resolution',
      'handoffs/ticket',
      'reopened',
      'rating',
    ],
  );
  // The figures that do not fit a column, per queue as in --json and --csv; the comments of `(all)` are those of the queues.
  print(`\nHandoffs per ticket (handoffs: tickets) and answers used:\n`);
  printTable(
    rows(r).map(([name, q]) => ({
      queue: name,
      handoffs: pairs(q.handoffs.distribution) || '-',
      'answers used': pairs(q.answersUsed) || '-',
    })),
    ['queue', 'handoffs', 'answers used'],
  );
  const commented = rows(r).filter(([name, q]) => name !== '(all)' && q.ratings.comments.length > 0);
  const lines = commented.flatMap(([name, q]) => [
    `  ${name}`,
    ...q.ratings.comments.map((c) => `    ${c.ref} ${c.score}/5 ${c.at}: ${c.comment.replace(/\s+/g, ' ')}`),
  ]);
  if (lines.length > 0) print(`\nComments:\n${lines.join('\n')}\n`);
}

const CSV_COLUMNS = [
  'queue',
  'opened',
  'resolved',
  'first_response_count',
  'first_response_median_h',
  'first_response_p90_h',
  'resolution_count',
  'resolution_median_h',
  'resolution_p90_h',
  'first_response_breached',
  'first_response_breached_share',
  'resolution_breached',
  'resolution_breached_share',
  'sla_tickets',
  'handoffs',
  'handoffs_mean',
  'handoff_distribution',
  'reopened',
  'reopen_rate',
  'ratings',
  'rating_average',
  'answers_used',
] as const;

/** RFC 4180 text: one header line, a row per queue and `(all)`; the rating comments are in --json only. */
function reportCsv(r: ServiceReport): string {
  const cell = (v: string | number) => {
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const line = (name: string, q: QueueReport) =>
    [
      name,
      q.opened,
      q.resolved,
      q.firstResponse.count,
      hours(q.firstResponse.medianMs),
      hours(q.firstResponse.p90Ms),
      q.resolution.count,
      hours(q.resolution.medianMs),
      hours(q.resolution.p90Ms),
      q.breached.firstResponse.count,
      ratio(q.breached.firstResponse.share),
      q.breached.resolution.count,
      ratio(q.breached.resolution.share),
      q.breached.firstResponse.of,
      q.handoffs.total,
      ratio(q.handoffs.mean),
      pairs(q.handoffs.distribution),
      q.reopened.count,
      ratio(q.reopened.share),
      q.ratings.count,
      ratio(q.ratings.average),
      pairs(q.answersUsed),
    ]
      .map(cell)
      .join(',');
  return `${[CSV_COLUMNS.join(','), ...rows(r).map(([name, q]) => line(name, q))].join('\r\n')}\r\n`;
}
