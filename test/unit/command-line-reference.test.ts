// docs/command-line.md is the command line's reference: its table names every
// command and, in the command's own entry, every long option it takes. The
// commands and options are read from the commander program itself, as
// `ticketd --help` shows them, so a new option cannot go undocumented.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { program, registerCommands } from '../../src/cli/program.js';
import { packageRoot } from '../../src/config/package-root.js';

const doc = readFileSync(join(packageRoot(), 'docs/command-line.md'), 'utf8');

/** Every command that runs something, as its words: `['tickets', 'list']`. */
function leaves(cmd: Command, path: string[] = []): { path: string[]; command: Command }[] {
  if (cmd.commands.length === 0) return [{ path, command: cmd }];
  return cmd.commands.flatMap((c) => leaves(c, [...path, c.name()]));
}

/**
 * The text documenting each command: the backticked entries of the table's
 * first column, `quarantine list [--all]`, and after it `show ID [--raw]`
 * (a subcommand named alone belongs to the command named before it).
 */
function documentedUsage(): Map<string, string> {
  const usage = new Map<string, string>();
  for (const line of doc.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const first = line.split(/(?<!\\)\|/)[1] ?? '';
    let parent: Command | undefined;
    for (const m of first.matchAll(/`([^`]+)`/g)) {
      const text = m[1]!.replace(/\\\|/g, '|');
      const words = text.split(' ');
      const top = program.commands.find((c) => c.name() === words[0]);
      let path: string[] | undefined;
      if (top) {
        parent = top;
        const sub = top.commands.find((c) => c.name() === words[1]);
        path = sub ? [words[0]!, words[1]!] : [words[0]!];
      } else if (parent?.commands.some((c) => c.name() === words[0])) {
        path = [parent.name(), words[0]!];
      }
      if (path) usage.set(path.join(' '), `${usage.get(path.join(' ')) ?? ''} ${text}`);
    }
  }
  return usage;
}

describe('command line reference', () => {
  beforeAll(async () => {
    await registerCommands(undefined);
  });

  it('reads the whole program', () => {
    expect(leaves(program).length).toBeGreaterThan(30);
  });

  it('documents every command, each with every long option it takes', () => {
    const usage = documentedUsage();
    const missing: string[] = [];
    for (const { path, command } of leaves(program)) {
      const text = usage.get(path.join(' '));
      if (text === undefined) {
        missing.push(`${path.join(' ')}: no entry`);
        continue;
      }
      for (const option of command.options)
        if (option.long && !new RegExp(`${option.long}(?![\\w-])`).test(text)) missing.push(`${path.join(' ')} ${option.long}`);
    }
    expect(missing).toEqual([]);
  });

  it("documents the program's own options", () => {
    const long = program.options.map((o) => o.long).filter((l) => l !== undefined);
    expect(long.length).toBeGreaterThan(0);
    expect(long.filter((l) => !doc.includes(`\`${l}`))).toEqual([]);
  });
});
