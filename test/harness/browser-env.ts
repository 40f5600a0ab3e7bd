// The installation the browser tests drive: the daemon started in-process on
// a ticketd test environment with its web server on a free loopback port,
// and a headless Chromium to open the pages it serves.

import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { launchChromium } from './chromium.js';
import { freePort } from './free-port.js';
import { startTicketdEnv, type TicketdEnv } from './ticketd-env.js';

export interface BrowserEnv {
  env: TicketdEnv;
  daemon: Daemon;
  context: BrowserContext;
  /** Where the web server answers, and what the daemon puts in the links it mails. */
  publicUrl: string;
  /** Closes the browser, stops the daemon, then the environment. */
  stop(): Promise<void>;
}

/** `patch` changes the config on top of the web server's settings, before the daemon starts. */
export async function startBrowserEnv(patch?: (cfg: Record<string, any>) => void): Promise<BrowserEnv> {
  const env = await startTicketdEnv();
  let daemon: Daemon | undefined;
  let context: BrowserContext | undefined;
  const stop = async () => {
    await context?.close();
    await daemon?.stop();
    await env.stop();
  };
  try {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    env.writeConfig((c) => {
      c.publicUrl = publicUrl;
      c.http = { host: '127.0.0.1', port, enabled: true };
      patch?.(c);
    });
    daemon = await startDaemon({ configPath: env.configPath, logger: silentLogger(), clock: systemClock });
    context = await launchChromium(join(env.dir, 'chromium-profile'));
    return { env, daemon, context, publicUrl, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
