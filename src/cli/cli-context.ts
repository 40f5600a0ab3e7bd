import type { Command } from 'commander';
import { loadConfig } from '../config/load-config.js';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/logger.js';
import { Runtime, type RuntimeOptions } from '../daemon/runtime.js';
import { parseReference } from '../thread/reference.js';
import { UsageError } from './output.js';

/** Exit codes: sendmail's sysexits where one fits, so scripts and MTAs can tell them apart. */
export const EXIT = { ok: 0, error: 1, usage: 64, tempfail: 75, config: 78 } as const;

/** What every command module gets from the program. */
export interface CliContext {
  configPath(): string;
  /** A runtime for one-shot commands: logs go to stderr so stdout carries only data. Close it when done. */
  openRuntime(): Promise<Runtime>;
}

export function cliContext(program: Command): CliContext {
  const configPath = () => program.opts<{ config: string }>().config;
  return {
    configPath,
    openRuntime: () => openCliRuntime(configPath()),
  };
}

/**
 * A runtime as one-shot commands open it, with logs on stderr; `opts` narrows
 * what it loads. Only `start` and `migrate` upgrade a schema: this throws
 * MigrationPendingError for a database, of either engine, that still needs
 * `ticketd migrate` (a brand-new one is set up; see openEngine).
 */
export async function openCliRuntime(configPath: string, opts: RuntimeOptions = {}): Promise<Runtime> {
  const config = loadConfig(configPath);
  return Runtime.open(config, createLogger({ level: 'warn', dest: process.stderr }), systemClock, {
    ...opts,
    database: { ...opts.database, migrate: 'new' },
  });
}

/** Runs `fn` with a runtime and always closes it. */
export async function withRuntime<T>(ctx: CliContext, fn: (rt: Runtime) => Promise<T> | T): Promise<T> {
  const rt = await ctx.openRuntime();
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

export function refArg(text: string): string {
  const ref = parseReference(text);
  if (!ref) throw new UsageError(`not a ticket reference: ${JSON.stringify(text)} (expected e.g. ACME-7K3QH9)`);
  return ref;
}
