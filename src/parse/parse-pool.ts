import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../core/logger.js';
import {
  DEFAULT_PARSE_TIMEOUT_MS,
  PARSE_FAILED,
  PARSE_TIMEOUT,
  parseMessage,
  type ParseOptions,
  type ParseVerdict,
} from './parse-message.js';
import type { ParseRequest } from './parse-worker.js';

/** Parses messages into verdicts; never rejects. */
export interface MessageParser {
  /** `first`: parsed before the messages already waiting (mail taken ahead of a backlog). */
  parse(raw: Buffer, opts: ParseOptions, first?: boolean): Promise<ParseVerdict>;
  close(): Promise<void>;
}

/** Parses on the calling thread: for one-shot commands, where starting a thread costs more than it saves. */
export const inThreadParser: MessageParser = {
  parse: parseMessage,
  close: async () => undefined,
};

export interface ParsePoolOptions {
  /** Worker threads at most; default: one per core but the one the event loop needs. */
  size?: number;
  logger?: Logger;
  /** The worker entry; default: parse-worker.js next to this file (see workerEntry). */
  entry?: URL;
}

/**
 * A thread that parsed a message this large is replaced once done: V8 keeps
 * the old generation a big parse grew, and a daemon that took a few 24 MB
 * mails held hundreds of MB it no longer used. Starting a thread (tens of ms)
 * is small beside such a parse.
 */
export const RECYCLE_AFTER_BYTES = 4 * 1024 * 1024;

interface Task {
  id: number;
  raw: Buffer;
  opts: ParseOptions;
  first: boolean;
  resolve: (v: ParseVerdict) => void;
}

interface Slot {
  worker: Worker;
  /** Set once the thread has loaded the parser. */
  ready: boolean;
  task: Task | null;
  timer: NodeJS.Timeout | null;
}

/**
 * The compiled worker entry. From dist/ it sits next to this module; under
 * vitest, which runs the .ts sources, Node cannot start a .ts file as a
 * thread, so the tests use the build's copy (the integration tests need a
 * fresh `npm run build` anyway).
 */
export function workerEntry(): URL {
  const here = new URL(import.meta.url);
  if (here.pathname.endsWith('.ts')) return new URL('../../dist/src/parse/parse-worker.js', here);
  return new URL('./parse-worker.js', here);
}

/**
 * A small pool of worker threads that parse messages, so mailparser and the
 * HTML-to-text conversion never hold the event loop that serves IMAP IDLE,
 * SMTP, HTTP and LMTP. A parse that runs past its deadline is stopped the
 * only way synchronous code can be: its thread is terminated (and replaced
 * when work is waiting); the verdict is then `parse-timeout`.
 */
export class ParsePool implements MessageParser {
  private readonly size: number;
  private readonly log: Logger | undefined;
  private readonly entry: URL;
  private readonly slots = new Set<Slot>();
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;

  constructor(o: ParsePoolOptions = {}) {
    this.size = Math.max(1, o.size ?? availableParallelism() - 1);
    this.log = o.logger;
    this.entry = o.entry ?? workerEntry();
  }

  parse(raw: Buffer, opts: ParseOptions, first = false): Promise<ParseVerdict> {
    if (this.closed) return Promise.resolve({ ok: false, reason: `${PARSE_FAILED}: parser closed` });
    return new Promise((resolve) => {
      const task = { id: this.nextId++, raw, opts, first, resolve };
      // Behind the other urgent ones, so those keep their order too.
      const at = first ? this.queue.findIndex((t) => !t.first) : -1;
      this.queue.splice(at === -1 ? this.queue.length : at, 0, task);
      this.pump();
    });
  }

  /** Starts every thread now, so the first message does not wait for one to load. */
  warm(): void {
    while (!this.closed && this.slots.size < this.size) this.spawn();
  }

  /** Terminates every thread; parses in flight end as `parse-failed`. */
  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.queue.splice(0)) task.resolve({ ok: false, reason: `${PARSE_FAILED}: parser closed` });
    const slots = [...this.slots];
    this.slots.clear();
    for (const slot of slots) this.finish(slot, { ok: false, reason: `${PARSE_FAILED}: parser closed` });
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    let starting = 0;
    for (const slot of this.slots) {
      if (!slot.ready) starting += 1;
      else if (slot.task === null && this.queue.length > 0) this.assign(slot, this.queue.shift()!);
    }
    // Threads start on demand, up to the pool size; one still starting takes work once ready.
    for (; this.slots.size < this.size && this.queue.length > starting; starting++) this.spawn();
  }

  private spawn(): void {
    const worker = new Worker(this.entry, {
      // A parse allocates briefly and keeps nothing: a small young generation
      // keeps the thread's memory down. A message that needs more than the old
      // generation allows fails its parse (and is quarantined), not the daemon.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 512 },
    });
    const slot: Slot = { worker, ready: false, task: null, timer: null };
    worker.on('message', (m: { ready: true } | { id: number; verdict: ParseVerdict }) => {
      if ('ready' in m) slot.ready = true;
      else if (slot.task?.id === m.id) {
        const bytes = slot.task.raw.length;
        this.finish(slot, m.verdict);
        if (bytes >= RECYCLE_AFTER_BYTES) {
          this.log?.info({ code: 'PARSE_WORKER_REPLACED', bytes }, 'a parse thread is replaced after a large message');
          this.slots.delete(slot);
          void slot.worker.terminate();
        }
      }
      this.pump();
      // An idle thread must not keep the process alive; a starting or busy
      // one must, or a one-shot command could exit awaiting its verdict.
      if (slot.task === null) slot.worker.unref();
    });
    worker.on('error', (err) => {
      this.log?.error({ code: 'PARSE_WORKER_FAILED', error: err.message }, 'a parse worker failed; it is replaced');
      const verdict: ParseVerdict = { ok: false, reason: `${PARSE_FAILED}: ${err.message}` };
      // A thread that could not even load will not load on the next try either.
      if (!slot.ready) for (const task of this.queue.splice(0)) task.resolve(verdict);
      this.retire(slot, verdict);
    });
    worker.on('exit', () => this.retire(slot, { ok: false, reason: `${PARSE_FAILED}: parse worker exited` }));
    this.slots.add(slot);
  }

  private assign(slot: Slot, task: Task): void {
    slot.task = task;
    slot.worker.ref();
    const timeoutMs = task.opts.timeoutMs ?? DEFAULT_PARSE_TIMEOUT_MS;
    slot.timer = setTimeout(() => {
      this.log?.warn({ code: 'PARSE_WORKER_KILLED', timeoutMs }, 'a parse ran past its deadline; its worker is terminated');
      this.slots.delete(slot);
      // Answered only once the thread is gone, so nothing it was writing
      // lands after the caller cleaned up.
      const stopped = slot.worker.terminate();
      slot.timer = null;
      slot.task = null;
      const answer = (): void => {
        task.resolve({ ok: false, reason: PARSE_TIMEOUT });
        this.pump();
      };
      stopped.then(answer, answer);
    }, timeoutMs);
    // A message from imapflow is a view into the buffer of a whole FETCH
    // response, which a structured clone would copy entire: the thread gets
    // its own copy of just the message, moved rather than cloned.
    const raw = new Uint8Array(task.raw);
    const request: ParseRequest = { id: task.id, raw, opts: task.opts };
    slot.worker.postMessage(request, [raw.buffer]);
  }

  private finish(slot: Slot, verdict: ParseVerdict): void {
    const task = slot.task;
    if (slot.timer !== null) clearTimeout(slot.timer);
    slot.timer = null;
    slot.task = null;
    task?.resolve(verdict);
  }

  /** A thread that died on its own: its task fails, and the next task gets a fresh thread. */
  private retire(slot: Slot, verdict: ParseVerdict): void {
    if (!this.slots.delete(slot)) return;
    this.finish(slot, verdict);
    this.pump();
  }
}
