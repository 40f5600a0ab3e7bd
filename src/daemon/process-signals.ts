import type { Logger } from '../core/logger.js';

/** What a running daemon offers the signals. */
export interface SignalledDaemon {
  reload(): boolean;
  stop(): Promise<void>;
}

/** The part of `process` this needs: listeners only, so a test can send the signals. */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', listener: () => void): unknown;
}

/**
 * Listens for SIGTERM, SIGINT and SIGHUP, then starts the daemon. Until a
 * listener exists a SIGHUP ends the process (its default action), and a service
 * manager or an operator may send one as soon as the process is there: a
 * reload asked for during start-up is applied once the daemon runs (the config
 * may have changed after start-up read it), a stop asked for then stops it as
 * soon as it runs. Returns the start: when it fails, whoever awaits it reports
 * why, and the signals do nothing more.
 */
export function startWithSignals<D extends SignalledDaemon>(o: {
  signals: SignalSource;
  logger: Logger;
  start: () => Promise<D>;
  exit: () => void;
}): Promise<D> {
  // Assigned below, before any signal can be handled: listeners run from the event loop.
  let started: Promise<D>;
  const running = () => started.catch(() => null);
  const stop = (signal: 'SIGTERM' | 'SIGINT') => {
    o.logger.info({ code: 'SIGNAL', signal }, `received ${signal}`);
    void running().then(async (daemon) => {
      if (daemon === null) return;
      await daemon.stop();
      o.exit();
    });
  };
  o.signals.on('SIGTERM', () => stop('SIGTERM'));
  o.signals.on('SIGINT', () => stop('SIGINT'));
  o.signals.on('SIGHUP', () => {
    o.logger.info({ code: 'SIGNAL', signal: 'SIGHUP' }, 'received SIGHUP: reloading the configuration and templates');
    void running().then((daemon) => daemon?.reload());
  });
  started = o.start();
  return started;
}
