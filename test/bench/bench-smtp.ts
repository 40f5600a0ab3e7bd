// The benchmark's capturing SMTP server. The harness's capture server parses
// every message with mailparser before it answers 250; at hundreds of
// acknowledgements a second that parse would take a core from the daemon on
// a 2-core machine and delay every reply, so this one reads only the header
// the benchmark matches on and notes when each message arrived.

import { performance } from 'node:perf_hooks';
import { SMTPServer } from 'smtp-server';

export interface Arrival {
  /** performance.now() when the message's DATA ended. */
  at: number;
  /** Message-ID (without brackets) the acknowledgement answers, from In-Reply-To. */
  inReplyTo: string | null;
}

export interface BenchSmtp {
  port: number;
  arrivals: Arrival[];
  /** Resolves once `count` messages arrived, or false after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

const IN_REPLY_TO = /^In-Reply-To:[ \t]*<([^>\r\n]+)>/im;

export async function startBenchSmtp(): Promise<BenchSmtp> {
  const arrivals: Arrival[] = [];
  const waiters = new Set<{ count: number; resolve: (ok: boolean) => void }>();
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    closeTimeout: 200,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.once('error', callback);
      stream.once('end', () => {
        const raw = Buffer.concat(chunks);
        const headerEnd = raw.indexOf('\r\n\r\n');
        const head = raw.subarray(0, headerEnd < 0 ? raw.length : headerEnd).toString('latin1');
        arrivals.push({ at: performance.now(), inReplyTo: IN_REPLY_TO.exec(head)?.[1] ?? null });
        for (const w of waiters) {
          if (arrivals.length >= w.count) {
            waiters.delete(w);
            w.resolve(true);
          }
        }
        callback(null, 'Captured');
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      // a client resetting its socket is not the benchmark's failure
      server.on('error', () => undefined);
      const address = server.server.address();
      if (address === null || typeof address === 'string') reject(new Error('SMTP capture has no port'));
      else resolve(address.port);
    });
  });
  return {
    port,
    arrivals,
    waitFor(count, timeoutMs) {
      if (arrivals.length >= count) return Promise.resolve(true);
      return new Promise((resolve) => {
        const waiter = {
          count,
          resolve: (ok: boolean) => {
            clearTimeout(timer);
            resolve(ok);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          resolve(false);
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
