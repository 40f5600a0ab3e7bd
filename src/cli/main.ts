#!/usr/bin/env node
import { CommanderError } from 'commander';
import { ConfigError } from '../config/load-config.js';
import { TemplatesInvalidError } from '../daemon/templates-check.js';
import { EXIT } from './cli-context.js';
import { printErr, UsageError } from './output.js';
import { NOT_STAFF, QUEUE_UNKNOWN } from '../store/ticket-errors.js';
import { API_TOKEN_NOT_FOUND } from '../store/api-token-store.js';
import { ANSWER_UNKNOWN } from '../compose/answer-library.js';
import { program, registerCommands } from './program.js';

// A reader that stops early (`ticketd doctor | head -1`) closes the pipe:
// what is left unwritten is not wanted, so end without a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    throw err;
  });
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

/** Refusals of what a command named rather than of the ticket's state: exit 64, like any wrong call. */
const WRONG_CALL_CODES = new Set(['TICKETD_TICKET_NOT_FOUND', QUEUE_UNKNOWN, NOT_STAFF, API_TOKEN_NOT_FOUND]);

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
  if (e.code === ANSWER_UNKNOWN) {
    // Named wrongly on the command line: nothing was sent.
    printErr(`ticketd: ${e.code}: ${e.message}; nothing was sent\n`);
    process.exit(EXIT.usage);
  }
  if (e.code !== undefined && WRONG_CALL_CODES.has(e.code)) {
    // An unknown reference, queue or person is a wrong call, whichever command met it.
    printErr(`ticketd: ${e.message}\n`);
    process.exit(EXIT.usage);
  }
  printErr(`ticketd: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
  process.exit(EXIT.error);
}

async function run(): Promise<void> {
  await registerCommands(commandWord(process.argv.slice(2)));
  await program.parseAsync(process.argv);
}

run().catch(fail);
