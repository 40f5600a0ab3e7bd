// Time from a customer's mail landing in the mailbox to the acknowledgement
// reaching the SMTP server: real Dovecot (IDLE), the real daemon, a real
// SMTP server on loopback. Not a test: run as root after `npm run build` with
// `node dist/test/bench/ack-latency-bench.js [MESSAGES]`.

import { performance } from 'node:perf_hooks';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { customerMail, startTicketdEnv, SUPPORT } from '../harness/ticketd-env.js';

const MESSAGES = Number(process.argv[2] ?? 30);

const env = await startTicketdEnv();
try {
  env.writeConfig((c) => {
    // Polling far apart: what is measured is IDLE's push, not a poll.
    c.mailboxes[0].imap.pollIntervalMs = 60_000;
    c.limits = { acksPerSenderPerHour: 1000, ticketsPerSenderPerHour: 1000 };
  });
  const daemon = await startDaemon({ configPath: env.configPath, logger: silentLogger(), clock: systemClock });
  try {
    // Let the worker connect and enter IDLE.
    await new Promise((r) => setTimeout(r, 1500));
    const latencies: number[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const t = performance.now();
      await env.dovecot.appendMessage(
        SUPPORT,
        'INBOX',
        customerMail({ subject: `Latency ${i}`, messageId: `lat-${i}@customer.example`, from: `l${i}@customer.example` }),
      );
      await env.smtp.waitFor(i + 1, 30_000);
      latencies.push(performance.now() - t);
    }
    latencies.sort((a, b) => a - b);
    const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(0);
    process.stdout.write(
      `| messages | p50 (ms) | p95 (ms) | max (ms) |\n|---------:|---------:|---------:|---------:|\n| ${String(MESSAGES).padStart(8)} | ${at(50).padStart(8)} | ${at(95).padStart(8)} | ${latencies.at(-1)!.toFixed(0).padStart(8)} |\n`,
    );
  } finally {
    await daemon.stop();
  }
} finally {
  await env.stop();
}
