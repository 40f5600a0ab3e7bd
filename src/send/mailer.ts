import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type Nodemailer from 'nodemailer';
import type { SmtpConfig } from '../config/load-config.js';
import { SMTP_POOL_DEFAULTS } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { withDeadline } from '../core/deadline.js';
import { makePrivateDir, writePrivateFile } from '../core/private-files.js';

export interface Envelope {
  from: string;
  to: string[];
}

/**
 * Whether a failed send may succeed later (4xx, network) or never will (5xx).
 * `auth` marks a login the server refused: the message itself is fine and is
 * retried, but nothing goes out until an operator fixes the credentials.
 */
export type SendFailure = { permanent: boolean; code: string; message: string; auth?: boolean };

export interface SendOptions {
  /**
   * Awaited after the body and before the end of the message (SMTP's final
   * dot) is sent: until it resolves the server cannot accept the mail, so the
   * caller decides how many mails may be accepted but not yet recorded.
   */
  beforeEnd?: () => Promise<void>;
}

export interface Mailer {
  /** Resolves once the server accepted the message; rejects with a SendError. */
  send(envelope: Envelope, raw: Buffer, options?: SendOptions): Promise<void>;
  verify(): Promise<void>;
  /** Lets the sends in hand finish, then closes the connections. */
  close(): void;
}

export class SendError extends Error {
  constructor(readonly failure: SendFailure) {
    super(failure.message);
  }
  get code(): string {
    return this.failure.code;
  }
}

/**
 * Replies that refuse the login rather than the message (RFC 4954: 535
 * credentials invalid, 534 mechanism too weak, 530 authentication or TLS
 * required, 454 temporary authentication failure).
 */
const AUTH_REPLY_CODES = new Set([454, 530, 534, 535]);

/** Maps a nodemailer error onto our retry decision. */
export function classifySendError(err: unknown): SendFailure {
  const e = err as { code?: string; responseCode?: number; response?: string; message?: string };
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : null;
  const message = (e.response ?? e.message ?? String(err)).slice(0, 500);
  const code = responseCode !== null ? `SMTP_${responseCode}` : (e.code ?? 'SEND_FAILED');
  // A wrong or expired password says nothing about the message: failing the
  // queue for good would lose every mail sent while the login was broken.
  if (e.code === 'EAUTH' || (responseCode !== null && AUTH_REPLY_CODES.has(responseCode))) {
    return { permanent: false, code, message, auth: true };
  }
  return { permanent: responseCode !== null && responseCode >= 500 && responseCode < 600, code, message };
}

function deadlineFailure(ms: number): SendError {
  return new SendError({ permanent: false, code: 'SEND_DEADLINE', message: `no answer from the server within ${ms} ms` });
}

/**
 * The message as a stream that ends only once `beforeEnd` resolves:
 * nodemailer writes the final dot when its source ends, so the server has the
 * whole body but cannot accept the mail before then.
 */
function withHeldEnd(raw: Buffer, beforeEnd: () => Promise<void>): Readable {
  let stage: 'body' | 'holding' | 'ended' = 'body';
  return new Readable({
    read() {
      if (stage === 'body') {
        stage = 'holding';
        this.push(raw);
      } else if (stage === 'holding') {
        stage = 'ended';
        beforeEnd().then(
          () => this.push(null),
          (err: unknown) => this.destroy(err as Error),
        );
      }
    },
  });
}

type Transport = ReturnType<typeof Nodemailer.createTransport>;

/**
 * nodemailer and its transports are some forty modules: loaded on the first
 * send or check, so a command that only queues mail (`ingest`) never pays for them.
 */
async function loadNodemailer(): Promise<typeof Nodemailer> {
  return (await import('nodemailer')).default;
}

/**
 * SMTP delivery over a pool of kept-open connections (nodemailer's pool):
 * up to `maxConnections` mails in flight, each connection replaced after
 * `maxMessages` mails and closed after a few idle minutes. nodemailer
 * neither retries nor bounds a whole send, so both are ours: each send
 * carries an abort signal at `sendTimeoutMs`, and on abort the pool closes
 * just the connection that carried it, so one stalled server answer never
 * wedges the others.
 */
export class SmtpMailer implements Mailer {
  private pool: Promise<Transport> | null = null;
  private inFlight = 0;
  private closing = false;

  constructor(private readonly cfg: SmtpConfig) {}

  private async options(pool: boolean) {
    const auth = this.cfg.auth ? { user: this.cfg.auth.user, pass: (await resolveSecret(this.cfg.auth)).value } : undefined;
    return {
      host: this.cfg.host,
      port: this.cfg.port,
      secure: this.cfg.secure,
      requireTLS: this.cfg.requireTLS,
      tls: { rejectUnauthorized: this.cfg.tlsRejectUnauthorized },
      ...(auth ? { auth } : {}),
      connectionTimeout: Math.min(30_000, this.cfg.sendTimeoutMs),
      greetingTimeout: Math.min(30_000, this.cfg.sendTimeoutMs),
      socketTimeout: this.cfg.sendTimeoutMs,
      ...(pool
        ? {
            pool: true as const,
            maxConnections: this.cfg.maxConnections ?? SMTP_POOL_DEFAULTS.maxConnections,
            maxMessages: this.cfg.maxMessages ?? SMTP_POOL_DEFAULTS.maxMessages,
          }
        : {}),
    };
  }

  private transport(): Promise<Transport> {
    this.pool ??= Promise.all([loadNodemailer(), this.options(true)]).then(([nodemailer, o]) => nodemailer.createTransport(o));
    return this.pool;
  }

  async send(envelope: Envelope, raw: Buffer, options: SendOptions = {}): Promise<void> {
    // A plain timer rather than AbortSignal.timeout(), which builds an error object for every send.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.cfg.sendTimeoutMs);
    const signal = deadline.signal;
    this.inFlight++;
    try {
      const transport = await this.transport();
      const message = options.beforeEnd ? withHeldEnd(raw, options.beforeEnd) : raw;
      await transport.sendMail({ envelope: { from: envelope.from, to: envelope.to }, raw: message, signal });
    } catch (err) {
      if (signal.aborted) throw deadlineFailure(this.cfg.sendTimeoutMs);
      const failure = classifySendError(err);
      // Connections log in once; after a refused login the next send opens a
      // new pool that reads the secret again, so a fixed password file is
      // picked up without a reload.
      if (failure.auth) this.dropPool();
      throw new SendError(failure);
    } finally {
      clearTimeout(timer);
      this.inFlight--;
      if (this.closing && this.inFlight === 0) this.dropPool();
    }
  }

  /** One connection of its own, so a check never waits behind queued mail. */
  async verify(): Promise<void> {
    const transport = (await loadNodemailer()).createTransport(await this.options(false));
    try {
      await withDeadline(transport.verify(), this.cfg.sendTimeoutMs, () => {
        transport.close();
        throw deadlineFailure(this.cfg.sendTimeoutMs);
      });
    } catch (err) {
      throw err instanceof SendError ? err : new SendError(classifySendError(err));
    } finally {
      transport.close();
    }
  }

  close(): void {
    this.closing = true;
    if (this.inFlight === 0) this.dropPool();
  }

  private dropPool(): void {
    const pool = this.pool;
    this.pool = null;
    // Idle connections close at once; one in the middle of a mail finishes it first.
    void pool?.then(
      (t) => t.close(),
      () => undefined,
    );
  }
}

/** Writes each message as an .eml file instead of sending it (demo and dry runs). */
export class FileMailer implements Mailer {
  private seq = 0;
  constructor(private readonly dir: string) {}

  async send(envelope: Envelope, raw: Buffer, options: SendOptions = {}): Promise<void> {
    await options.beforeEnd?.();
    await makePrivateDir(this.dir);
    const name = `${Date.now()}-${process.pid}-${++this.seq}-${envelope.to[0]?.replace(/[^\w.@-]/g, '_') ?? 'none'}.eml`;
    // Written under a temporary name and renamed, so a reader never sees half a message.
    const tmp = join(this.dir, `.${name}.tmp`);
    await writePrivateFile(tmp, raw);
    await rename(tmp, join(this.dir, name));
  }

  async verify(): Promise<void> {
    await makePrivateDir(this.dir);
  }

  close(): void {}
}

export function createMailer(cfg: SmtpConfig): Mailer {
  return cfg.transport === 'file' ? new FileMailer(cfg.fileDir!) : new SmtpMailer(cfg);
}
