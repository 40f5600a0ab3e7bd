import { type Command, Option } from 'commander';
import { API_TOKEN_SCOPES, type ApiTokenScope } from '../core/api-tokens.js';
import type { ApiTokenInfo } from '../store/api-token-store.js';
import { withRuntime, type CliContext } from './cli-context.js';
import { out, printErr, printTable, UsageError } from './output.js';

/** Names are what `tokens list` and `revoke` go by, and what a log line or an audit names: short and plain. */
const TOKEN_NAME = /^[A-Za-z0-9][\w.@-]{0,59}$/;

/** `tokens create|list|revoke`: the bearer tokens of the JSON API. */
export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const tokens = program.command('tokens').description('bearer tokens of the JSON API (stored hashed; the token is shown once)');

  tokens
    .command('create')
    .description('make a token and print it once on stdout: it is not stored and cannot be shown again')
    .requiredOption('--name <name>', 'what the token is for, e.g. crm or dashboard (unique among tokens in force)')
    .addOption(
      new Option('--scope <scope>', 'read: GET only; write: also notes, replies, assign, handoff, resolve')
        .choices(API_TOKEN_SCOPES as unknown as string[])
        .makeOptionMandatory(),
    )
    .option('--json', 'print {name, scope, token, createdAt} as JSON')
    .action(async (opts: { name: string; scope: ApiTokenScope; json?: boolean }) => {
      if (!TOKEN_NAME.test(opts.name))
        throw new UsageError('--name: up to 60 letters, digits and . _ @ -, starting with a letter or digit');
      await withRuntime(ctx, async (rt) => {
        const { token, info } = await rt.apiTokens.create(opts.name, opts.scope, rt.clock.now().getTime());
        if (opts.json) out({ ...tokenJson(info), token });
        else {
          process.stdout.write(`${token}\n`);
          printErr(`token ${info.name} (${info.scope}) created; keep it now, it is not shown again\n`);
        }
      });
    });

  tokens
    .command('list')
    .description('list the tokens in force (names and scopes; never a secret)')
    .option('--all', 'revoked tokens too')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      await withRuntime(ctx, async (rt) => {
        const list = (await rt.apiTokens.list({ all: opts.all === true })).map(tokenJson);
        if (opts.json) out(list);
        else printTable(list, ['name', 'scope', 'createdAt', 'revokedAt']);
      });
    });

  tokens
    .command('revoke <name>')
    .description('revoke a token at once: every request with it is refused from now on')
    .action(async (name: string) => {
      await withRuntime(ctx, async (rt) => {
        await rt.apiTokens.revoke(name, rt.clock.now().getTime());
        printErr(`token ${name} revoked\n`);
      });
    });
}

function tokenJson(t: ApiTokenInfo) {
  return {
    name: t.name,
    scope: t.scope,
    createdAt: new Date(t.createdAt).toISOString(),
    revokedAt: t.revokedAt === null ? null : new Date(t.revokedAt).toISOString(),
  };
}
