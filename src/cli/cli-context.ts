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
  openRuntime(): Runtime;
}

export function cliContext(program: Command): CliContext {
  const configPath = () => program.opts<{ config: string }>().config;
  return {
    configPath,
    openRuntime: () => openCliRuntime(configPath()),
  };
}

/** A runtime as one-shot commands open it, with logs on stderr; `opts` narrows what it loads. */
export function openCliRuntime(configPath: string, opts: RuntimeOptions = {}): Runtime {
  return new Runtime(loadConfig(configPath), createLogger({ level: 'warn', dest: process.stderr }), systemClock, opts);
}

/** Runs `fn` with a runtime and always closes it. */
export async function withRuntime<T>(ctx: CliContext, fn: (rt: Runtime) => Promise<T> | T): Promise<T> {
  const rt = ctx.openRuntime();
  try {
    return await fn(rt);
  } finally {
    rt.close();
  }
}

export function refArg(text: string): string {
  const ref = parseReference(text);
  if (!ref) throw new UsageError(`not a ticket reference: ${JSON.stringify(text)} (expected e.g. ACME-7K3QH9)`);
  return ref;
}
