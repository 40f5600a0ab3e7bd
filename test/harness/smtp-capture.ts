import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

const HOST = '127.0.0.1';

export type SmtpFailureCode = 421 | 450 | 451 | 550 | 554;

export interface SmtpFailureMode {
  code: SmtpFailureCode;
  message?: string;
  /** Where the rejection happens: after the message body (default) or for every RCPT TO. */
  at?: 'data' | 'rcpt';
}

export interface CapturedMessage {
  /** `from` is '' for the null sender `<>`. */
  envelope: { from: string; to: string[] };
  /** Username the client authenticated as, if it did. */
  authUser?: string;
  raw: Buffer;
  /** subject, headers (Map), text, html, messageId, inReplyTo, references, ... */
  parsed: ParsedMail;
}

export interface SmtpCaptureOptions {
  /** When set, AUTH is required and only these credentials are accepted (535 otherwise). Without it any AUTH, or none, is accepted. */
  auth?: { user: string; pass: string };
}

export interface SmtpCapture {
  host: string;
  /** Fixed for the lifetime of the capture, also across close()/restart(). */
  port: number;
  /** Live list of accepted messages in arrival order; a message is in it before its 250 reply is sent. */
  readonly messages: readonly CapturedMessage[];
  /** Resolves with a snapshot once at least `count` messages were captured; rejects listing what arrived on timeout. */
  waitFor(count: number, timeoutMs?: number): Promise<CapturedMessage[]>;
  /** null accepts mail again. 421 also drops the connection, like a real server going away. */
  setFailureMode(mode: SmtpFailureMode | null): void;
  /** Refuses every login with this reply (535: credentials invalid, 454: temporary), whatever the credentials; null accepts them again. */
  setAuthFailure(code: 454 | 535 | null): void;
  /** While on, the server reads each message but never answers the end of DATA, like a hung or overloaded server; such messages are not captured. */
  setStallData(on: boolean): void;
  /** Messages left unanswered by setStallData. */
  readonly stalled: number;
  /** Answers the end of each message after this long (0: at once), like a server that writes its queue file first. */
  setAnswerDelay(ms: number): void;
  /** Called as each message's end arrives, before it is answered. */
  onMessageEnd(listener: (() => void) | null): void;
  /** The most message ends that waited for an answer at one time (since the start or the last clear()). */
  readonly mostAwaitingAnswer: number;
  /** Connections accepted since the start (or the last clear()): a pooling client opens few. */
  readonly connections: number;
  clear(): void;
  /** Stops listening and drops open connections (with a 421), keeping captured messages and the port number. */
  close(): Promise<void>;
  /** Listens again on the same port after close(). */
  restart(): Promise<void>;
  /** Final teardown; same effect as close(). */
  stop(): Promise<void>;
}

const DEFAULT_FAILURE_TEXT: Record<SmtpFailureCode, string> = {
  421: 'Service not available, closing transmission channel',
  450: 'Requested mail action not taken: mailbox unavailable',
  451: 'Requested action aborted: local error in processing',
  550: 'Requested action not taken: mailbox unavailable',
  554: 'Transaction failed',
};

interface Waiter {
  count: number;
  resolve: (messages: CapturedMessage[]) => void;
}

export async function startSmtpCapture(opts: SmtpCaptureOptions = {}): Promise<SmtpCapture> {
  const messages: CapturedMessage[] = [];
  const waiters = new Set<Waiter>();
  let failure: SmtpFailureMode | null = null;
  let authFailure: 454 | 535 | null = null;
  let stallData = false;
  let connections = 0;
  let stalled = 0;
  let answerDelayMs = 0;
  let endListener: (() => void) | null = null;
  let awaitingAnswer = 0;
  let mostAwaitingAnswer = 0;

  const failureError = (mode: SmtpFailureMode): Error =>
    Object.assign(new Error(mode.message ?? DEFAULT_FAILURE_TEXT[mode.code]), { responseCode: mode.code });

  const record = (message: CapturedMessage): void => {
    messages.push(message);
    for (const waiter of waiters) {
      if (messages.length >= waiter.count) {
        waiters.delete(waiter);
        waiter.resolve([...messages]);
      }
    }
  };

  const serverOptions: SMTPServerOptions = {
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: opts.auth === undefined,
    allowInsecureAuth: true,
    logger: false,
    // close() should take the server down promptly, not after the default 30 s grace period
    closeTimeout: 200,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      if (authFailure !== null) {
        const text = authFailure === 535 ? 'Authentication credentials invalid' : 'Temporary authentication failure';
        callback(Object.assign(new Error(text), { responseCode: authFailure }));
        return;
      }
      const expected = opts.auth;
      if (expected !== undefined && (auth.username !== expected.user || auth.password !== expected.pass)) {
        callback(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
        return;
      }
      callback(null, { user: auth.username });
    },
    onRcptTo(_address, _session, callback) {
      if (failure?.at === 'rcpt') {
        callback(failureError(failure));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.once('error', (err) => callback(err));
      stream.once('end', () => {
        endListener?.();
        awaitingAnswer++;
        mostAwaitingAnswer = Math.max(mostAwaitingAnswer, awaitingAnswer);
        if (answerDelayMs > 0) setTimeout(answer, answerDelayMs);
        else answer();
      });
      const answered = (err: Error | null, text?: string) => {
        awaitingAnswer--;
        callback(err, text);
      };
      const answer = () => {
        // The callback is never called: the client waits for an answer that does not come.
        if (stallData) {
          stalled++;
          return;
        }
        if (failure !== null && failure.at !== 'rcpt') {
          answered(failureError(failure));
          return;
        }
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (parsed) => {
            const mailFrom = session.envelope.mailFrom;
            const captured: CapturedMessage = {
              envelope: {
                from: mailFrom === false ? '' : mailFrom.address,
                to: session.envelope.rcptTo.map((r) => r.address),
              },
              raw,
              parsed,
            };
            if (typeof session.user === 'string') captured.authUser = session.user;
            record(captured);
            answered(null, `Captured as #${messages.length}`);
          },
          (err: Error) => answered(err),
        );
      };
    },
  };

  let server = new SMTPServer(serverOptions);
  const port = await listen(server, 0);
  let listening = true;

  const close = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    host: HOST,
    port,
    messages,

    waitFor(count, timeoutMs = 10_000) {
      if (messages.length >= count) return Promise.resolve([...messages]);
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          count,
          resolve: (snapshot) => {
            clearTimeout(timer);
            resolve(snapshot);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const seen = messages.map(
            (m, i) =>
              `  #${i + 1} from=<${m.envelope.from}> to=<${m.envelope.to.join(', ')}> subject=${JSON.stringify(m.parsed.subject ?? '')}`,
          );
          reject(
            new Error(
              `SMTP capture on port ${port}: expected at least ${count} message(s) within ${timeoutMs} ms, got ${messages.length}` +
                (seen.length > 0 ? `:\n${seen.join('\n')}` : ''),
            ),
          );
        }, timeoutMs);
        waiters.add(waiter);
      });
    },

    setFailureMode(mode) {
      failure = mode;
    },

    setAuthFailure(code) {
      authFailure = code;
    },

    setStallData(on) {
      stallData = on;
    },

    get connections() {
      return connections;
    },

    get stalled() {
      return stalled;
    },

    setAnswerDelay(ms) {
      answerDelayMs = ms;
    },

    onMessageEnd(listener) {
      endListener = listener;
    },

    get mostAwaitingAnswer() {
      return mostAwaitingAnswer;
    },

    clear() {
      messages.length = 0;
      connections = 0;
      stalled = 0;
      awaitingAnswer = 0;
      mostAwaitingAnswer = 0;
    },

    close,

    async restart() {
      if (listening) throw new Error(`SMTP capture on port ${port} is already listening`);
      server = new SMTPServer(serverOptions);
      await listen(server, port);
      listening = true;
    },

    stop: close,
  };
}

function listen(server: SMTPServer, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.removeListener('error', reject);
      // connection-level errors (a client resetting the socket) are emitted here; they are not test failures
      server.on('error', () => undefined);
      const address = server.server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error(`unexpected SMTP listen address: ${String(address)}`));
        return;
      }
      resolve(address.port);
    });
  });
}
