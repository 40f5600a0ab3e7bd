// Under the common umask 022, everything ticketd writes must still be
// readable by its own user only: the database and its -wal/-shm, the
// attachments and their folders, outgoing .eml files, the status-link key
// and backups.

import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { fixedClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { backupDatabase } from '../../src/daemon/backup.js';
import { Runtime } from '../../src/daemon/runtime.js';
import { OutboxWorker } from '../../src/outbox/outbox-worker.js';
import { Duration } from '../../src/core/duration.js';
import { RetrySchedule } from '../../src/outbox/retry-schedule.js';
import { takeMessages } from '../../src/pipeline/take-messages.js';

let dir: string;
let previousUmask: number;

beforeAll(() => {
  previousUmask = process.umask(0o022);
  dir = mkdtempSync(join(tmpdir(), 'ticketd-private-'));
});
afterAll(() => {
  process.umask(previousUmask);
  rmSync(dir, { recursive: true, force: true });
});

/** Every path under `root` with its permission bits. */
function modes(root: string): [string, number][] {
  return readdirSync(root, { recursive: true, withFileTypes: true }).map((e) => {
    const path = join(e.parentPath, e.name);
    return [path.slice(root.length + 1) + (e.isDirectory() ? '/' : ''), statSync(path).mode & 0o777];
  });
}

function mail(): Buffer {
  return Buffer.from(
    [
      'From: Jane <jane@customer.example>',
      'To: support@example.com',
      'Subject: Private please',
      'Message-ID: <private1@customer.example>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'My contract is attached.',
      '--b',
      'Content-Type: application/pdf; name="contract.pdf"',
      'Content-Disposition: attachment; filename="contract.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('%PDF-1.4 secret').toString('base64'),
      '--b--',
      '',
    ].join('\r\n'),
  );
}

describe('files and folders under umask 022', () => {
  it('are created 0600 and 0700: database, -wal, -shm, attachments, .eml, status-link key, backup', async () => {
    const root = join(dir, 'install');
    // The operator's folder, made before ticketd runs.
    mkdirSync(root);
    const config = parseConfig(
      {
        database: './var/data/ticketd.sqlite',
        publicUrl: 'https://help.example.com',
        smtp: { from: 'support@example.com', transport: 'file', fileDir: './var/outgoing' },
        mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
      },
      root,
    );
    const clock = fixedClock(new Date());
    const runtime = await Runtime.open(config, silentLogger(), clock);
    try {
      const [result] = await takeMessages(runtime.pipeline, [{ origin: { via: 'pipe', mailbox: 'support' }, raw: mail() }]);
      expect(result?.outcome).toBe('taken');
      const outbox = new OutboxWorker({
        store: runtime.store,
        mailerFor: (m) => runtime.mailerFor(m),
        schedule: new RetrySchedule([Duration.parse('1m')]),
        logger: silentLogger(),
        clock,
        pollIntervalMs: 200,
        batchSize: 10,
        concurrency: () => 4,
        leaseMs: 30_000,
      });
      await outbox.runOnce();
      await backupDatabase(config.database, join(root, 'var', 'backups-here.sqlite'));

      const found = modes(join(root, 'var'));
      const names = found.map(([p]) => p);
      // Everything the test means to check is there.
      expect(names).toEqual(
        expect.arrayContaining([
          'data/',
          'data/ticketd.sqlite',
          'data/ticketd.sqlite-wal',
          'data/ticketd.sqlite-shm',
          'data/status-link.key',
          'data/attachments/',
          'outgoing/',
          'backups-here.sqlite',
        ]),
      );
      expect(names.some((p) => p.endsWith('-contract.pdf'))).toBe(true);
      expect(names.some((p) => p.startsWith('outgoing/') && p.endsWith('.eml'))).toBe(true);
      const open = found.filter(([, mode]) => (mode & 0o077) !== 0).map(([p, mode]) => `${p} ${mode.toString(8)}`);
      expect(open).toEqual([]);
      for (const [p, mode] of found) expect(mode, p).toBe(p.endsWith('/') ? 0o700 : 0o600);
      // The folder above ours is the operator's: left as it was.
      expect(statSync(root).mode & 0o777).toBe(0o755);
    } finally {
      await runtime.close();
    }
  });

  it('tightens a database an older version left world-readable, with its -wal and -shm', async () => {
    const root = join(dir, 'old');
    const config = parseConfig(
      {
        database: './ticketd.sqlite',
        publicUrl: 'https://help.example.com',
        smtp: { from: 'support@example.com', transport: 'file', fileDir: './outgoing' },
        mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
      },
      root,
    );
    const first = await Runtime.open(config, silentLogger(), fixedClock(new Date()));
    for (const f of ['ticketd.sqlite', 'ticketd.sqlite-wal', 'ticketd.sqlite-shm']) chmodSync(join(root, f), 0o644);
    const second = await Runtime.open(config, silentLogger(), fixedClock(new Date()));
    try {
      for (const f of ['ticketd.sqlite', 'ticketd.sqlite-wal', 'ticketd.sqlite-shm'])
        expect(statSync(join(root, f)).mode & 0o777, f).toBe(0o600);
    } finally {
      await second.close();
      await first.close();
    }
  });
});
