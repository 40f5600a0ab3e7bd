// An in-process installation with no servers: SQLite in a temp dir, mail
// sent into files there (`outgoing/`), one mailbox without a mail source. For
// tests that feed the pipeline and look at the store, the outbox or the files.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load-config.js';
import type { Clock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Runtime } from '../../src/daemon/runtime.js';

export interface FileRuntime {
  /** Holds `data/ticketd.sqlite` and `outgoing/`. */
  dir: string;
  runtime: Runtime;
  /** Closes the runtime and removes the dir. */
  close(): Promise<void>;
}

export async function openFileRuntime(clock: Clock, dirPrefix = 'ticketd-file-'): Promise<FileRuntime> {
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const config = parseConfig(
      {
        database: './data/ticketd.sqlite',
        publicUrl: 'https://help.example.com',
        smtp: { from: 'support@example.com', transport: 'file', fileDir: './outgoing' },
        mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
      },
      dir,
    );
    const runtime = await Runtime.open(config, silentLogger(), clock);
    return {
      dir,
      runtime,
      async close() {
        await runtime.close();
        remove();
      },
    };
  } catch (err) {
    remove();
    throw err;
  }
}
