// The daemon's signal listeners exist from the moment `ticketd start` runs,
// not from when the daemon has started: a SIGHUP sent as soon as the daemon
// says it runs once found no listener and ended the process.

import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { startWithSignals, type SignalledDaemon } from '../../src/daemon/process-signals.js';

function setup() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ dest: { write: (s: string) => void lines.push(JSON.parse(s)) } });
  const signals = new EventEmitter();
  const calls: string[] = [];
  const daemon: SignalledDaemon = {
    reload: () => {
      calls.push('reload');
      return true;
    },
    stop: async () => void calls.push('stop'),
  };
  let start!: (d: SignalledDaemon) => void;
  let fail!: (e: Error) => void;
  let exits = 0;
  let listenersAtStart = -1;
  const started = startWithSignals({
    signals,
    logger,
    start: () => {
      listenersAtStart = signals.listenerCount('SIGHUP');
      return new Promise<SignalledDaemon>((res, rej) => {
        start = res;
        fail = rej;
      });
    },
    exit: () => void exits++,
  });
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { lines, signals, calls, daemon, start, fail, started, exits: () => exits, settle, listenersAtStart };
}

describe('signals', () => {
  it('listens before the daemon has started: a SIGHUP then is logged and applied once it runs', async () => {
    const t = setup();
    expect(t.listenersAtStart).toBe(1);
    t.signals.emit('SIGHUP');
    expect(t.lines.map((l) => [l.code, l.signal])).toEqual([['SIGNAL', 'SIGHUP']]);
    await t.settle();
    expect(t.calls).toEqual([]);
    t.start(t.daemon);
    await t.settle();
    expect(t.calls).toEqual(['reload']);
    t.signals.emit('SIGHUP');
    await t.settle();
    expect(t.calls).toEqual(['reload', 'reload']);
  });

  it('a SIGTERM during start-up stops the daemon once it runs, then exits', async () => {
    const t = setup();
    t.signals.emit('SIGTERM');
    await t.settle();
    expect(t.exits()).toBe(0);
    t.start(t.daemon);
    await t.settle();
    expect(t.calls).toEqual(['stop']);
    expect(t.exits()).toBe(1);
  });

  it('does nothing more when the start fails: its caller reports why', async () => {
    const t = setup();
    t.signals.emit('SIGINT');
    t.signals.emit('SIGHUP');
    t.fail(new Error('port taken'));
    await expect(t.started).rejects.toThrow('port taken');
    await t.settle();
    expect(t.calls).toEqual([]);
    expect(t.exits()).toBe(0);
  });
});
