import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import nodemailer from 'nodemailer';
import { simpleParser } from 'mailparser';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/logger.js';
import { ListenError } from '../core/listen-error.js';
import { startDaemon, type Daemon } from '../daemon/daemon.js';
import { printTable } from './output.js';

const SUPPORT = 'support@demo.example';

interface DemoOptions {
  dir: string;
  httpPort: string;
  lmtpPort: string;
  exit?: boolean;
}

/** The demo's own config: embedded SQLite, LMTP in, .eml files out, status page on localhost. */
function demoConfig(o: DemoOptions) {
  return {
    database: './ticketd.sqlite',
    publicUrl: `http://127.0.0.1:${o.httpPort}`,
    http: { host: '127.0.0.1', port: Number(o.httpPort) },
    inbound: { host: '127.0.0.1', port: Number(o.lmtpPort), protocol: 'lmtp', mailbox: 'support' },
    smtp: { transport: 'file', fileDir: './outbox', from: 'Demo Support <support@demo.example>' },
    outbox: { pollIntervalMs: 500 },
    log: { level: 'warn' },
    mailboxes: [{ name: 'support', address: SUPPORT, referencePrefix: 'DEMO' }],
  };
}

function sample(o: {
  from: string;
  subject: string;
  id: string;
  body: string;
  inReplyTo?: string;
  headers?: Record<string, string>;
}) {
  return {
    from: o.from,
    to: SUPPORT,
    subject: o.subject,
    text: o.body,
    messageId: `<${o.id}>`,
    ...(o.inReplyTo ? { inReplyTo: `<${o.inReplyTo}>`, references: [`<${o.inReplyTo}>`] } : {}),
    ...(o.headers ? { headers: o.headers } : {}),
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== null) return found;
    if (Date.now() > until) throw new Error(`demo: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Acknowledgements written so far, keyed by the Message-ID they answer. */
async function acksByRequest(
  outbox: string,
): Promise<Map<string, { file: string; messageId: string; link: string; subject: string }>> {
  const acks = new Map<string, { file: string; messageId: string; link: string; subject: string }>();
  if (!existsSync(outbox)) return acks;
  for (const name of readdirSync(outbox).filter((f) => f.endsWith('.eml'))) {
    const file = join(outbox, name);
    const mail = await simpleParser(readFileSync(file));
    const link = /https?:\/\/\S+\/t\/[A-Za-z0-9_-]+/.exec(mail.text ?? '')?.[0] ?? '';
    if (mail.inReplyTo) acks.set(mail.inReplyTo, { file, messageId: mail.messageId ?? '', link, subject: mail.subject ?? '' });
  }
  return acks;
}

/** The demo's options that move each port, by the config key a ListenError names. */
const PORT_OPTIONS: Record<string, string> = { 'http.port': '--http-port', 'inbound.port': '--lmtp-port' };

/** Starts the daemon; a taken port ends the demo with the option that picks another one, not a stack trace. */
async function startOrExplain(configPath: string, logger: ReturnType<typeof createLogger>, o: DemoOptions): Promise<Daemon> {
  try {
    return await startDaemon({ configPath, logger, clock: systemClock });
  } catch (err) {
    const option = err instanceof ListenError ? PORT_OPTIONS[err.setting] : undefined;
    if (!(err instanceof ListenError) || option === undefined) throw err;
    const port = err.setting === 'http.port' ? Number(o.httpPort) : Number(o.lmtpPort);
    const what = err.setting === 'http.port' ? 'the status page' : 'the LMTP listener';
    const why = err.reason === 'EADDRINUSE' ? 'another program is using it' : err.message;
    process.stderr.write(
      `demo: port ${port} for ${what} cannot be used: ${why}.\n` +
        `Pick another one: npm run demo -- ${option} ${port + 1}   (or: node dist/src/cli/main.js demo ${option} ${port + 1})\n`,
    );
    process.exit(1);
  }
}

/** Where the demo's data is and what to try with it. */
function nextSteps(dir: string, configPath: string, ref: string): string {
  const cli = `node ${relative(process.cwd(), process.argv[1] ?? 'dist/src/cli/main.js') || 'dist/src/cli/main.js'}`;
  const config = relative(process.cwd(), configPath) || configPath;
  return [
    '',
    `The demo's data folder is ${dir}: its database (ticketd.sqlite), config.json and the mail it sent (outbox/).`,
    'Three commands to try next (in another terminal while the demo runs):',
    `  ${cli} --config ${config} tickets list`,
    `  ${cli} --config ${config} tickets show ${ref}`,
    `  ${cli} --config ${config} tickets reply ${ref} --message "We sent the invoice again."`,
    'Then read the README for running it on your own mailboxes.',
  ].join('\n');
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run ticketd on embedded defaults with sample mail: no mail server needed')
    .option('--dir <path>', 'where the demo keeps its database, config and outgoing mail', './data/demo')
    .option('--http-port <port>', 'status page port', '8080')
    .option('--lmtp-port <port>', 'LMTP port the samples are delivered to', '2424')
    .option('--exit', 'exit after printing instead of running until Ctrl-C')
    .action(async (o: DemoOptions) => {
      const dir = resolve(o.dir);
      mkdirSync(dir, { recursive: true });
      const configPath = join(dir, 'config.json');
      writeFileSync(configPath, JSON.stringify(demoConfig(o), null, 2));
      const logger = createLogger({ level: 'warn', dest: process.stderr });
      const daemon = await startOrExplain(configPath, logger, o);
      const lmtp = nodemailer.createTransport({
        host: '127.0.0.1',
        port: Number(o.lmtpPort),
        lmtp: true,
        secure: false,
        ignoreTLS: true,
      });
      const outbox = join(dir, 'outbox');
      const say = (s: string) => process.stdout.write(`${s}\n`);

      say(`ticketd demo: database ${join(dir, 'ticketd.sqlite')}, outgoing mail in ${outbox}`);
      say('Delivering sample mail over LMTP: a new problem, a reply to our acknowledgement, an out-of-office.');
      await lmtp.sendMail(
        sample({
          from: 'Jane Doe <jane@customer.example>',
          subject: 'The invoice PDF will not open',
          id: 'demo-1@customer.example',
          body: 'Hello,\n\nthe invoice you sent yesterday does not open on my laptop. Could you send it again?\n\nJane',
        }),
      );
      await lmtp.sendMail(
        sample({
          from: 'Omar Haddad <omar@other.example>',
          subject: 'Password reset link expired',
          id: 'demo-2@other.example',
          body: 'The reset link says it expired. I clicked it within a minute.',
        }),
      );
      const ack = await waitFor(
        'the acknowledgement',
        async () => (await acksByRequest(outbox)).get('<demo-1@customer.example>') ?? null,
      );
      await lmtp.sendMail(
        sample({
          from: 'Jane Doe <jane@customer.example>',
          subject: `Re: ${ack.subject}`,
          id: 'demo-3@customer.example',
          inReplyTo: ack.messageId.replace(/[<>]/g, ''),
          body: 'It is invoice 2026-1142, in case that helps.\n\n> We received your message',
        }),
      );
      await lmtp.sendMail(
        sample({
          from: 'Omar Haddad <omar@other.example>',
          subject: 'Automatic reply: Password reset link expired',
          id: 'demo-4@other.example',
          inReplyTo: 'demo-2@other.example',
          headers: { 'Auto-Submitted': 'auto-replied' },
          body: 'I am out of the office until Monday.',
        }),
      );
      await waitFor('both acknowledgements', async () => ((await acksByRequest(outbox)).size >= 2 ? true : null));

      const tickets = await daemon.runtime.store.listTickets();
      say('\nTickets:');
      printTable(tickets, ['ref', 'status', 'requester', 'messageCount', 'subject']);
      say('\nAcknowledgements written (open them in any mail program) and their status links:');
      for (const a of (await acksByRequest(outbox)).values()) say(`  ${a.file}\n    ${a.link}`);
      lmtp.close();

      say(
        nextSteps(
          dir,
          configPath,
          tickets.find((t) => t.requester === 'jane@customer.example')?.ref ?? tickets[0]?.ref ?? 'DEMO-XXXXXX',
        ),
      );
      if (o.exit) {
        await daemon.stop();
        return;
      }
      say(`\nStatus pages are served on http://127.0.0.1:${o.httpPort}; LMTP listens on 127.0.0.1:${o.lmtpPort}. Ctrl-C stops.`);
      const stop = () => void daemon.stop().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
