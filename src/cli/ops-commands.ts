import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { loadConfig, smtpFor, type Config, type MailboxConfig } from '../config/load-config.js';
import { newMessageId, ratingLinksOf, senderOf } from '../compose/compose-mail.js';
import type { RenderedMail, TemplateRegistry } from '../compose/template-registry.js';
import { TEMPLATE_KINDS, isTemplateKind, sampleVars, type TemplateKind, type TemplateVars } from '../compose/template-schema.js';
import { backupDatabase } from '../daemon/backup.js';
import { formatCheck, runDoctor } from '../daemon/doctor.js';
import type { Runtime } from '../daemon/runtime.js';
import { formatProblem, loadTemplates } from '../daemon/templates-check.js';
import { checkTemplates } from '../daemon/templates-check.js';
import { hiddenFromService, installedPaths, renderSystemdUnit } from '../daemon/systemd-unit.js';
import { statusUrlFor } from '../core/status-links.js';
import { composeMime } from '../send/compose-mime.js';
import { createMailer } from '../send/mailer.js';
import type { TicketRow } from '../store/store.js';
import { EXIT, refArg, withRuntime, type CliContext } from './cli-context.js';
import { UsageError } from './output.js';

/** systemd-unit, doctor, backup and templates check|preview|send-test. */
export function registerOpsCommands(program: Command, ctx: CliContext): void {
  program
    .command('systemd-unit')
    .description(
      'print a hardened systemd service unit for this installation, starting with --config (default /etc/ticketd/config.json)',
    )
    .action(() => {
      const given = program.getOptionValueSource('config') === 'cli';
      const paths = installedPaths(given ? ctx.configPath() : undefined);
      process.stdout.write(renderSystemdUnit(paths));
      if (!existsSync(paths.cli)) process.stderr.write(`warning: ${paths.cli} does not exist yet: run npm run build\n`);
      for (const p of hiddenFromService(paths)) {
        process.stderr.write(
          `warning: ${p} is under a home folder, which ProtectHome=yes hides from the service: install node, ticketd and its config system-wide\n`,
        );
      }
    });

  program
    .command('doctor')
    .description(
      'check config, database, templates, every IMAP and SMTP server, and the http and inbound ports; one line per check',
    )
    .action(async () => {
      let failed = false;
      for await (const check of runDoctor(ctx.configPath())) {
        failed ||= !check.ok;
        process.stdout.write(`${formatCheck(check)}\n`);
      }
      if (failed) process.exitCode = EXIT.error;
    });

  program
    .command('backup <file>')
    .description('write a consistent copy of the database while the daemon runs (SQLite online backup)')
    .option('--force', 'replace FILE if it exists')
    .action(async (file: string, opts: { force?: boolean }) => {
      const config = loadConfig(ctx.configPath());
      const r = await backupDatabase(config.database, file, { force: opts.force === true });
      process.stderr.write(
        `backup written to ${r.file}: ${r.bytes} bytes, schema version ${r.schemaVersion}, ${r.tickets} ticket(s), integrity ok\n`,
      );
    });

  const templates = program.command('templates').description('check and try out the mail templates');

  templates
    .command('check')
    .description(
      'load every template (mail, the answers library, and the status page when http is enabled) and render it with sample data; prints file:line: problem on errors',
    )
    .action(() => {
      const config = loadConfig(ctx.configPath());
      const checked = checkTemplates(config);
      if (!checked.ok) {
        for (const p of checked.problems) process.stdout.write(`${formatProblem(p)}\n`);
        process.stderr.write(`${checked.problems.length} problem(s) in ${config.templatesDir}\n`);
        process.exitCode = EXIT.error;
        return;
      }
      for (const f of checked.templates.files) process.stdout.write(`OK ${f}\n`);
      process.stderr.write(`${checked.templates.files.length} template file(s) OK in ${config.templatesDir}\n`);
    });

  templates
    .command('preview <kind>')
    .description(`print a rendered mail (${TEMPLATE_KINDS.join(', ')}) with sample data or a real ticket's`)
    .option('--mailbox <name>', "the mailbox whose templates and address to use (default: the ticket's, else the first)")
    .option('--lang <tag>', "reader's language (default: the ticket's, else the mailbox's)")
    .option('--ticket <ref>', "fill in this ticket's data instead of samples")
    .action(async (kindText: string, opts: { mailbox?: string; lang?: string; ticket?: string }) => {
      const kind = kindArg(kindText);
      if (opts.ticket === undefined) {
        const config = loadConfig(ctx.configPath());
        const mailbox = mailboxArg(config, opts.mailbox);
        printMail(renderSample(loadTemplates(config).mail, kind, config, mailbox, opts.lang));
        return;
      }
      const ref = refArg(opts.ticket);
      await withRuntime(ctx, async (runtime) => {
        const ticket = await runtime.store.ticketByRef(ref);
        if (!ticket) throw new UsageError(`no ticket with reference ${ref}`);
        const mailbox = mailboxArg(runtime.config, opts.mailbox ?? ticket.mailbox);
        const vars = { ...sampleValues(kind, runtime.config, mailbox), ...(await ticketValues(runtime, ticket, mailbox)) };
        const lang = opts.lang ?? ticket.language ?? mailbox.language;
        printMail(
          runtime.templates.render(kind, onlyVariablesOf(kind, vars), {
            mailbox: mailbox.name,
            lang,
            timeZone: mailbox.timezone,
          }),
        );
      });
    });

  templates
    .command('send-test <kind>')
    .description('send a mail rendered with sample data through the configured SMTP server')
    .requiredOption('--to <address>', 'recipient')
    .option('--mailbox <name>', 'the mailbox to send as (default: the first)')
    .option('--lang <tag>', "reader's language (default: the mailbox's)")
    .action(async (kindText: string, opts: { to: string; mailbox?: string; lang?: string }) => {
      const kind = kindArg(kindText);
      if (!z.email().safeParse(opts.to).success) throw new UsageError(`not an email address: ${JSON.stringify(opts.to)}`);
      const config = loadConfig(ctx.configPath());
      const mailbox = mailboxArg(config, opts.mailbox);
      const mail = renderSample(loadTemplates(config).mail, kind, config, mailbox, opts.lang);
      const from = senderOf(config, mailbox);
      const raw = await composeMime(
        {
          kind,
          from,
          to: [{ address: opts.to, name: '' }],
          ...mail,
          messageId: newMessageId(mailbox),
          inReplyTo: null,
          references: [],
          // Marked automatic so auto-responders stay quiet, and as a test so nobody takes it for a real ticket.
          headers: { 'Auto-Submitted': 'auto-generated', 'X-Ticketd-Test': kind },
        },
        new Date(),
      );
      const smtp = smtpFor(config, mailbox);
      const mailer = createMailer(smtp);
      try {
        await mailer.send({ from: from.address, to: [opts.to] }, raw);
      } finally {
        mailer.close();
      }
      const via = smtp.transport === 'file' ? `into ${smtp.fileDir}` : `via ${smtp.host}:${smtp.port}`;
      process.stderr.write(`sent ${kind} test mail to ${opts.to} ${via}: ${mail.subject}\n`);
    });
}

function kindArg(text: string): TemplateKind {
  if (!isTemplateKind(text))
    throw new UsageError(`unknown template kind ${JSON.stringify(text)}; use one of ${TEMPLATE_KINDS.join(', ')}`);
  return text;
}

function mailboxArg(config: Config, name: string | undefined): MailboxConfig {
  const mailbox = name === undefined ? config.mailboxes[0] : config.mailboxes.find((m) => m.name === name);
  if (!mailbox) {
    throw new UsageError(
      `no mailbox named ${JSON.stringify(name)}; configured: ${config.mailboxes.map((m) => m.name).join(', ')}`,
    );
  }
  return mailbox;
}

type Values = Record<string, string | number>;

// Shaped like a real reference and link, and never valid: previews issue no link.
const SAMPLE_REF_CODE = '7K3QH9';
const SAMPLE_TOKEN = 'sample-preview-link';

/**
 * The schema's samples, with what the mailbox's real mail would show: its
 * reference prefix, its address, and a link under the configured publicUrl.
 */
function sampleValues(kind: TemplateKind, config: Config, mailbox: MailboxConfig): Values {
  const link = statusUrlFor(config, SAMPLE_TOKEN);
  return {
    ...(sampleVars(kind) as Values),
    ref: `${mailbox.referencePrefix}-${SAMPLE_REF_CODE}`,
    mailboxAddress: mailbox.address,
    statusUrl: link,
    ticketUrl: link,
    ...ratingLinksOf(link),
  };
}

/** A real ticket's values; whatever a kind needs beyond these (an agent's text, a delay) stays a sample. */
async function ticketValues(runtime: Runtime, t: TicketRow, mailbox: MailboxConfig): Promise<Values> {
  // Only an existing link is shown: a preview must not issue one.
  const token = await runtime.store.activeStatusToken(t.id, t.replyTo, runtime.links);
  const statusUrl = token !== null ? statusUrlFor(runtime.config, token) : null;
  return {
    ref: t.ref,
    subject: t.subject,
    customerName: t.requesterName,
    requester: t.requesterName ? `${t.requesterName} <${t.requester}>` : t.requester,
    mailboxAddress: mailbox.address,
    queuePosition: await runtime.store.queuePosition(t),
    receivedAt: new Date(t.createdAt).toISOString(),
    firstResponseEstimate: await runtime.sla.firstResponseEstimate(t),
    ...(statusUrl !== null && { statusUrl, ticketUrl: statusUrl, ...ratingLinksOf(statusUrl) }),
  };
}

function onlyVariablesOf<K extends TemplateKind>(kind: K, values: Values): TemplateVars<K> {
  const names = Object.keys(sampleVars(kind));
  return Object.fromEntries(names.map((n) => [n, values[n]])) as TemplateVars<K>;
}

function renderSample(
  registry: TemplateRegistry,
  kind: TemplateKind,
  config: Config,
  mailbox: MailboxConfig,
  lang: string | undefined,
): RenderedMail {
  return registry.render(kind, onlyVariablesOf(kind, sampleValues(kind, config, mailbox)), {
    mailbox: mailbox.name,
    lang: lang ?? mailbox.language,
    timeZone: mailbox.timezone,
  });
}

function printMail(mail: RenderedMail): void {
  process.stdout.write(
    `Subject: ${mail.subject}\n\n----- text -----\n${mail.text.replace(/\n?$/, '\n')}----- html -----\n${mail.html.replace(/\n?$/, '\n')}`,
  );
}
