import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { routeMessage, type RouteVerdict } from '../classify/route.js';
import { loadConfig, type Config } from '../config/load-config.js';
import type { ParsedMessage } from '../core/types.js';
import { parseMessage } from '../parse/parse-message.js';
import { routingInput } from '../pipeline/intake-policy.js';
import type { CliContext } from './cli-context.js';
import { out, print, UsageError } from './output.js';

export function registerRoutingCommands(program: Command, ctx: CliContext): void {
  const rules = program.command('rules').description('try the routing rules');
  rules
    .command('test <file>')
    .description(
      'show which routing rule a message would match and why, and the queue, priority and tags it would get; changes nothing',
    )
    .option('--mailbox <name>', 'the mailbox it arrives at (default: the one whose address it was sent to, or the only one)')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { mailbox?: string; json?: boolean }) => {
      // Reads the config and the file only: no database is opened.
      const config = loadConfig(ctx.configPath());
      let raw: Buffer;
      try {
        raw = await readFile(file);
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const msg = await parsed(raw);
      const mailbox = opts.mailbox ?? arrivalMailbox(config, msg);
      if (!config.mailboxes.some((m) => m.name === mailbox)) throw new UsageError(`no mailbox named ${JSON.stringify(mailbox)}`);
      const { input, rules: list } = routingInput(config, mailbox);
      const verdict = routeMessage(msg, input, list);
      if (opts.json) out({ mailbox, ...verdict });
      else print(describe(mailbox, verdict));
    });
}

async function parsed(raw: Buffer): Promise<ParsedMessage> {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-rules-'));
  try {
    const verdict = await parseMessage(raw, { attachmentsDir: dir, maxAttachmentBytes: 0 });
    if (!verdict.ok) throw new UsageError(`cannot parse the message: ${verdict.reason}`);
    return verdict.message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The mailbox whose address (or alias) the message names as a recipient; the only one when there is one. */
function arrivalMailbox(config: Config, msg: ParsedMessage): string {
  if (config.mailboxes.length === 1) return config.mailboxes[0]!.name;
  const rcpts = new Set([...msg.to, ...msg.cc].map((a) => a.address));
  const found = config.mailboxes.find((m) => [m.address, ...m.aliases].some((a) => rcpts.has(a)));
  if (!found) throw new UsageError('the message names none of the mailboxes as a recipient: give --mailbox');
  return found.name;
}

function describe(mailbox: string, v: RouteVerdict): string {
  const lines: string[] = [];
  const result = `queue ${v.queue ?? '(none)'}, priority ${v.priority ?? 'unchanged'}, tags ${v.tags.length ? v.tags.join(' ') : '(none)'}`;
  lines.push(
    v.rule === null
      ? `no rule matched (mailbox ${mailbox}): ${result}`
      : `rule "${v.rule}" matched (mailbox ${mailbox}): ${result}`,
  );
  for (const t of v.trace) {
    lines.push(`  ${t.matched ? 'match' : 'no   '}  ${t.rule}`);
    if (t.conditions.length === 0) lines.push('           (no conditions: matches every message)');
    for (const c of t.conditions) {
      lines.push(
        `           ${c.matched ? 'yes' : 'no '} ${c.field} /${c.pattern}/i ${c.matched ? 'found' : 'in'} ${JSON.stringify(c.found)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
