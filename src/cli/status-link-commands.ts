import type { Command } from 'commander';
import { refArg, withRuntime, type CliContext } from './cli-context.js';
import { UsageError } from './output.js';

/** `ticketd tickets revoke-links REF`. */
export function registerStatusLinkCommands(tickets: Command, ctx: CliContext): void {
  tickets
    .command('revoke-links <ref>')
    .description('revoke every status-page link of a ticket; the next mail to each recipient carries a fresh one')
    .action(async (refText: string) => {
      await withRuntime(ctx, async (runtime) => {
        const ref = refArg(refText);
        const done = await runtime.statusPages.revokeLinks(ref, runtime.clock.now().getTime());
        if (!done) throw new UsageError(`no ticket with reference ${ref}`);
        process.stderr.write(
          `${done.ticket.ref}: revoked ${done.revoked} status link${done.revoked === 1 ? '' : 's'}; the next mail to each recipient carries a new one\n`,
        );
      });
    });
}
