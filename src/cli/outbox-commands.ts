import type { Command } from 'commander';
import type { OutboxEntry } from '../store/store.js';
import { withRuntime, type CliContext } from './cli-context.js';
import { out, printTable, UsageError } from './output.js';

/** `outbox list` and `outbox retry`: see what waits to go out and send failed mail again. */
export function registerOutboxCommands(program: Command, ctx: CliContext): void {
  const outbox = program.command('outbox').description('see queued and failed outgoing mail and send failed mail again');

  outbox
    .command('list')
    .description('list outgoing mail not sent yet (pending and failed)')
    .option('--failed', 'only mail that failed for good')
    .option('--json', 'print JSON')
    .action(async (opts: { failed?: boolean; json?: boolean }) => {
      await withRuntime(ctx, async (rt) => {
        const entries = await rt.store.listOutbox({ failedOnly: opts.failed === true });
        if (opts.json) {
          out(entries.map(entryJson));
          return;
        }
        printTable(
          entries.map((e) => ({
            id: e.id,
            status: e.status,
            kind: e.kind,
            ref: e.ref,
            to: e.envelopeTo.join(', '),
            attempts: e.attempts,
            next: e.status === 'pending' ? new Date(e.nextAttemptAt).toISOString() : '',
            lastError: e.lastError,
          })),
          ['id', 'status', 'kind', 'ref', 'to', 'attempts', 'next', 'lastError'],
        );
      });
    });

  outbox
    .command('retry [id]')
    .description('send failed mail again at once, with the retry schedule started afresh (after fixing the cause)')
    .option('--failed', 'every failed mail')
    .option('--json', 'print JSON')
    .action(async (idText: string | undefined, opts: { failed?: boolean; json?: boolean }) => {
      if ((idText === undefined) === (opts.failed !== true)) throw new UsageError('give one outbox id or --failed');
      await withRuntime(ctx, async (rt) => {
        const now = rt.clock.now().getTime();
        let ids: number[];
        if (idText !== undefined) {
          const id = idArg(idText);
          const [entry] = await rt.store.listOutbox({ id });
          if (!entry) throw new UsageError(`no outbox entry #${id}`);
          if (entry.status !== 'failed') {
            throw new UsageError(
              entry.status === 'sent'
                ? `outbox entry #${id} was sent at ${new Date(entry.sentAt ?? 0).toISOString()}`
                : `outbox entry #${id} is still queued; next attempt at ${new Date(entry.nextAttemptAt).toISOString()}`,
            );
          }
          ids = await rt.store.requeueOutbox({ id }, now);
        } else {
          ids = await rt.store.requeueOutbox('failed', now);
        }
        if (opts.json) out({ requeued: ids });
        // The running daemon picks them up at its next outbox poll.
        else
          process.stderr.write(
            ids.length === 0
              ? 'no failed mail to retry\n'
              : `requeued ${ids.length} mail(s) for an immediate attempt: ${ids.map((i) => `#${i}`).join(' ')}\n`,
          );
      });
    });
}

function idArg(text: string): number {
  const id = Number(text.replace(/^#/, ''));
  if (!Number.isSafeInteger(id) || id <= 0) throw new UsageError(`not an outbox id: ${JSON.stringify(text)}`);
  return id;
}

function entryJson(e: OutboxEntry) {
  return {
    id: e.id,
    status: e.status,
    mailbox: e.mailbox,
    kind: e.kind,
    ref: e.ref,
    to: e.envelopeTo,
    subject: e.subject,
    attempts: e.attempts,
    nextAttemptAt: e.status === 'pending' ? new Date(e.nextAttemptAt).toISOString() : null,
    lastError: e.lastError,
    createdAt: new Date(e.createdAt).toISOString(),
  };
}
