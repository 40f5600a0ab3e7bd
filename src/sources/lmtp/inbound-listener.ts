// An LMTP (or plain SMTP) server on loopback that an MTA delivers to. It is
// the final delivery agent: the MTA keeps a message until we answer 250, and
// we answer 250 only after the message is committed, so a crash before the
// reply makes the MTA deliver again and the Message-ID dedup makes that safe.

import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { InboundConfig } from '../../config/load-config.js';
import { inboundLimits } from '../../config/schema.js';
import type { Logger } from '../../core/logger.js';
import { ListenError } from '../../core/listen-error.js';
import { takeMessages, type Pipeline } from '../../pipeline/take-messages.js';
import type { IntakeResult } from '../../store/store.js';

export const INBOUND_LISTEN_FAILED = 'TICKETD_INBOUND_LISTEN_FAILED';

export class InboundListenError extends ListenError {
  constructor(reason: string, where: string) {
    super(INBOUND_LISTEN_FAILED, 'inbound.port', reason, where);
  }
}

/** A mailbox as the listener sees it: the addresses that deliver to it. */
export interface InboundMailbox {
  name: string;
  address: string;
  aliases: readonly string[];
}

export interface InboundListenerOptions {
  config: InboundConfig;
  pipeline: Pipeline;
  /** Read at every RCPT, so an alias added by a reload is accepted without a restart. */
  mailboxes: () => readonly InboundMailbox[];
  logger: Logger;
  /** How long close() lets a transfer in progress finish before dropping the connection (the MTA then retries). */
  closeTimeoutMs?: number;
}

export interface InboundListener {
  /** The bound port (the configured one, or the kernel's choice for port 0). */
  port: number;
  /** Stops accepting, lets the message in hand commit and be answered, then drops idle connections. */
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

/**
 * The message bytes all transfers in progress hold together. A transfer
 * reserves what it declared with SIZE= up front and grows its reservation as
 * data arrives; what does not fit is refused rather than buffered, so many
 * parallel deliveries cost at most the budget, not the sum of their sizes.
 */
class ByteBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  /** Grows a reservation from `held` to `wanted` bytes; false (nothing changed) when that does not fit. */
  grow(held: number, wanted: number): boolean {
    if (wanted <= held) return true;
    if (this.used + wanted - held > this.limit) return false;
    this.used += wanted - held;
    return true;
  }

  release(held: number): void {
    this.used -= held;
  }

  get inUse(): number {
    return this.used;
  }
}

/** The size an MTA declared with `MAIL FROM:<…> SIZE=n` (RFC 1870), 0 when none. */
function declaredSize(session: SMTPServerSession): number {
  const args =
    session.envelope.mailFrom === false
      ? undefined
      : (session.envelope.mailFrom.args as Record<string, string> | false | undefined);
  const size = args ? Number(args.SIZE) : 0;
  return Number.isSafeInteger(size) && size > 0 ? size : 0;
}

export async function startInboundListener(o: InboundListenerOptions): Promise<InboundListener> {
  const { config, pipeline } = o;
  const log = o.logger.child({ listener: config.protocol });
  const lmtp = config.protocol === 'lmtp';
  const limits = inboundLimits(config);
  /** The mailbox each accepted recipient was mapped to at RCPT time. */
  const recipientMailbox = new WeakMap<SMTPServerAddress, string>();
  const inFlight = new Set<Promise<void>>();
  const budget = new ByteBudget(limits.maxInFlightBytes);
  /** Per connection, the deadline of the transaction it is in or about to start. */
  const deadlines = new Map<string, NodeJS.Timeout>();
  let closing: Promise<void> | null = null;

  // A trickling client keeps the idle timer from firing; this one runs from
  // the connection or the previous answered message, however steadily bytes keep arriving.
  const armDeadline = (sessionId: string) => {
    clearTimeout(deadlines.get(sessionId));
    deadlines.delete(sessionId);
    // A transfer can be answered after its connection went away; nothing to guard then.
    if (![...server.connections].some((c) => c.id === sessionId)) return;
    const timer = setTimeout(() => {
      deadlines.delete(sessionId);
      const connection = [...server.connections].find((c) => c.id === sessionId);
      if (!connection) return;
      log.warn(
        { code: 'INBOUND_TIMEOUT', session: sessionId, limitMs: limits.transactionTimeoutMs },
        'inbound transaction took too long; connection dropped',
      );
      connection.send(421, 'transaction took too long, closing connection');
      connection.close();
    }, limits.transactionTimeoutMs);
    timer.unref();
    deadlines.set(sessionId, timer);
  };

  const mailboxFor = (address: string): string | null => {
    const wanted = address.toLowerCase();
    const hit = o.mailboxes().find((m) => m.address === wanted || m.aliases.includes(wanted));
    return hit?.name ?? null;
  };

  const envelopeSender = (session: SMTPServerSession) =>
    session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;

  /** `delivered` is the message as received, with the Return-Path line already in front. */
  const take = async (delivered: Buffer, session: SMTPServerSession): Promise<string | string[]> => {
    const rcpts = session.envelope.rcptTo;
    // Each accepted recipient was mapped at RCPT; `inbound.mailbox` is only the last resort.
    const byRecipient = rcpts.map((r) => recipientMailbox.get(r) ?? config.mailbox);
    // Several recipients of one mailbox (an address and its alias) make one ticket, not two.
    const mailboxes = [...new Set(byRecipient)];
    const sender = envelopeSender(session);
    const results = await takeMessages(
      pipeline,
      mailboxes.map((mailbox) => ({ origin: { via: 'lmtp' as const, mailbox }, raw: delivered })),
    );
    const byMailbox = new Map(mailboxes.map((m, i) => [m, results[i]!]));
    log.info(
      {
        code: 'INBOUND_ACCEPTED',
        session: session.id,
        from: sender,
        rcpt: rcpts.map((r) => r.address),
        size: delivered.length,
        results: results.map((r) => ({ mailbox: r.origin.mailbox, action: r.outcome, ref: r.ref })),
      },
      'inbound message committed',
    );
    const reply = (r: IntakeResult) => `${r.outcome}${r.ref ? ` ${r.ref}` : ''}`;
    if (!lmtp) return results.map(reply).join(', ');
    return byRecipient.map((m) => reply(byMailbox.get(m)!));
  };

  const server = new SMTPServer({
    lmtp,
    secure: false,
    // Loopback only, from the local MTA: no AUTH, and no STARTTLS to negotiate.
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    hideSTARTTLS: true,
    // Enhanced status codes (4.3.0, 5.1.1, ...) let the MTA log and bounce with the precise reason.
    hideENHANCEDSTATUSCODES: false,
    size: config.maxMessageBytes,
    rejectOversized: true,
    logger: false,
    banner: 'ticketd',
    closeTimeout: o.closeTimeoutMs ?? 10_000,
    socketTimeout: limits.idleTimeoutMs,
    // Loopback: the peer is the local MTA, a reverse lookup tells nothing.
    disableReverseLookup: true,
    onConnect(session, callback) {
      // The new connection is already counted.
      if (server.connections.size > limits.maxConnections) {
        log.warn(
          { code: 'INBOUND_BUSY', session: session.id, limit: limits.maxConnections },
          'too many inbound connections; answered 421',
        );
        callback(smtpError(421, 'too many connections, try again later'));
        return;
      }
      armDeadline(session.id);
      callback();
    },
    onClose(session) {
      clearTimeout(deadlines.get(session.id));
      deadlines.delete(session.id);
    },
    onRcptTo(address, _session, callback) {
      const mailbox = mailboxFor(address.address);
      if (mailbox === null) {
        log.info({ code: 'INBOUND_RCPT_REFUSED', rcpt: address.address }, 'recipient is not one of our mailboxes');
        callback(smtpError(550, `<${address.address}>: no such mailbox here`));
        return;
      }
      recipientMailbox.set(address, mailbox);
      callback();
    },
    onData(stream: SMTPServerDataStream, session, callback) {
      // As the final delivery agent we record the envelope sender (RFC 5321 4.4);
      // classification reads it to recognise bounces sent from the null sender.
      // It goes first in the list, so the message is copied once, not twice.
      const chunks: Buffer[] = [Buffer.from(`Return-Path: <${envelopeSender(session)}>\r\n`)];
      let kept = 0;
      // What this transfer holds of the budget; declared sizes are reserved up front.
      let held = 0;
      let overBudget = false;
      let settle!: () => void;
      const transaction = new Promise<void>((resolve) => (settle = resolve));
      inFlight.add(transaction);
      let answered = false;
      const finish = (err: Error | null, message?: string | string[]) => {
        if (answered) return;
        answered = true;
        budget.release(held);
        held = 0;
        inFlight.delete(transaction);
        settle();
        armDeadline(session.id);
        callback(err, message);
      };
      const refuseForBudget = () => {
        overBudget = true;
        budget.release(held);
        held = 0;
        chunks.length = 0;
        log.warn(
          { code: 'INBOUND_BUSY', session: session.id, inFlightBytes: budget.inUse, limit: limits.maxInFlightBytes },
          'inbound byte budget exhausted; message answered 451',
        );
      };
      const declared = Math.min(declaredSize(session), config.maxMessageBytes);
      if (budget.grow(0, declared)) held = declared;
      else refuseForBudget();
      stream.on('data', (chunk: Buffer) => {
        kept += chunk.length;
        // Past the cap or the budget the rest is only drained; the server answers 552 itself.
        if (overBudget || kept > config.maxMessageBytes) return;
        if (!budget.grow(held, kept)) return refuseForBudget();
        held = Math.max(held, kept);
        chunks.push(chunk);
      });
      stream.on('error', (err) => {
        // The client went away mid-message; nothing was taken and nobody hears the answer.
        log.info({ code: 'INBOUND_ABORTED', session: session.id, error: err.message }, 'inbound transfer aborted');
        finish(smtpError(451, 'message not received in full'));
      });
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          log.info(
            { code: 'INBOUND_TOO_LARGE', session: session.id, size: stream.byteLength, max: config.maxMessageBytes },
            'inbound message over the size limit',
          );
          finish(smtpError(552, `message exceeds the maximum size of ${config.maxMessageBytes} bytes`));
          return;
        }
        if (overBudget) {
          finish(smtpError(451, 'too much mail in progress, try again later'));
          return;
        }
        take(Buffer.concat(chunks), session).then(
          (reply) => finish(null, reply),
          (err: unknown) => {
            const e = err as { code?: string; message?: string };
            log.warn(
              { code: 'INBOUND_TEMPFAIL', session: session.id, error: e.message ?? String(err), cause: e.code },
              'inbound message not committed; the MTA will retry',
            );
            finish(smtpError(451, 'temporary failure, try again later'));
          },
        );
      });
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(new InboundListenError(err.code ?? err.message, `${config.host}:${config.port}`));
    server.once('error', onError);
    server.listen(config.port, config.host, () => {
      server.off('error', onError);
      const address = server.server.address();
      resolve(typeof address === 'object' && address ? address.port : config.port);
    });
  });
  server.on('error', (err: Error) => log.error({ code: 'INBOUND_SERVER_ERROR', error: err.message }, 'inbound listener error'));
  log.info({ code: 'INBOUND_LISTENING', host: config.host, port, protocol: config.protocol }, 'inbound listener ready');

  return {
    port,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const timer of deadlines.values()) clearTimeout(timer);
        deadlines.clear();
        // Commands after close() get a 421; only a DATA already under way is worth waiting for.
        await Promise.race([Promise.all([...inFlight]), closed]);
        for (const connection of server.connections) {
          connection.send(421, 'ticketd shutting down');
          connection.close();
        }
        await closed;
        log.info({ code: 'INBOUND_CLOSED' }, 'inbound listener closed');
      })();
      return closing;
    },
  };
}
