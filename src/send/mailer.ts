import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { SmtpConfig } from '../config/load-config.js';
import { resolveSecret } from '../config/secrets.js';
import { makePrivateDir, writePrivateFile } from '../core/private-files.js';

export interface Envelope {
  from: string;
  to: string[];
}

/** Whether a failed send may succeed later (4xx, network) or never will (5xx). */
export type SendFailure = { permanent: boolean; code: string; message: string };

export interface Mailer {
  /** Resolves once the server accepted the message; rejects with a SendError. */
  send(envelope: Envelope, raw: Buffer): Promise<void>;
  verify(): Promise<void>;
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

/** Maps a nodemailer error onto our retry decision. */
export function classifySendError(err: unknown): SendFailure {
  const e = err as { code?: string; responseCode?: number; response?: string; message?: string };
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : null;
  const message = (e.response ?? e.message ?? String(err)).slice(0, 500);
  if (responseCode !== null && responseCode >= 500 && responseCode < 600) {
    return { permanent: true, code: `SMTP_${responseCode}`, message };
  }
  if (responseCode !== null) return { permanent: false, code: `SMTP_${responseCode}`, message };
  return { permanent: false, code: e.code ?? 'SEND_FAILED', message };
}

function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new SendError({ permanent: false, code: 'SEND_DEADLINE', message: `no answer from the server within ${ms} ms` }));
    }, ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** SMTP delivery; nodemailer neither retries nor bounds a whole send, so both are ours. */
export class SmtpMailer implements Mailer {
  constructor(private readonly cfg: SmtpConfig) {}

  private async transport() {
    const auth = this.cfg.auth ? { user: this.cfg.auth.user, pass: (await resolveSecret(this.cfg.auth)).value } : undefined;
    return nodemailer.createTransport({
      host: this.cfg.host,
      port: this.cfg.port,
      secure: this.cfg.secure,
      requireTLS: this.cfg.requireTLS,
      tls: { rejectUnauthorized: this.cfg.tlsRejectUnauthorized },
      ...(auth ? { auth } : {}),
      connectionTimeout: Math.min(30_000, this.cfg.sendTimeoutMs),
      greetingTimeout: Math.min(30_000, this.cfg.sendTimeoutMs),
      socketTimeout: this.cfg.sendTimeoutMs,
    });
  }

  async send(envelope: Envelope, raw: Buffer): Promise<void> {
    const transport = await this.transport();
    try {
      await withDeadline(transport.sendMail({ envelope: { from: envelope.from, to: envelope.to }, raw }), this.cfg.sendTimeoutMs, () => transport.close());
    } catch (err) {
      throw err instanceof SendError ? err : new SendError(classifySendError(err));
    } finally {
      transport.close();
    }
  }

  async verify(): Promise<void> {
    const transport = await this.transport();
    try {
      await withDeadline(transport.verify(), this.cfg.sendTimeoutMs, () => transport.close());
    } catch (err) {
      throw err instanceof SendError ? err : new SendError(classifySendError(err));
    } finally {
      transport.close();
    }
  }

  close(): void {}
}

/** Writes each message as an .eml file instead of sending it (demo and dry runs). */
export class FileMailer implements Mailer {
  private seq = 0;
  constructor(private readonly dir: string) {}

  async send(envelope: Envelope, raw: Buffer): Promise<void> {
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
