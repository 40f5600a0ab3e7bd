// An outbox worker over a store and mailer the test writes, for unit tests of
// the worker's own rules (what it claims, when it redacts): everything the
// test does not name is a no-op store and a mailer that must not be used.

import { systemClock } from '../../src/core/clock.js';
import { Duration } from '../../src/core/duration.js';
import { silentLogger } from '../../src/core/logger.js';
import type { OutboxClaims } from '../../src/outbox/outbox-claims.js';
import { OutboxWorker, type OutboxWorkerOptions } from '../../src/outbox/outbox-worker.js';
import { RetrySchedule } from '../../src/outbox/retry-schedule.js';

export function fakeOutboxWorker(
  store: Partial<OutboxClaims>,
  options: Partial<Omit<OutboxWorkerOptions, 'store'>> = {},
): OutboxWorker {
  return new OutboxWorker({
    store: {
      claimOutbox: async () => [],
      saveOutboundRaw: async () => {},
      markOutboxSent: async () => {},
      redactSentMail: async () => 0,
      releaseOutbox: async () => {},
      markOutboxRetry: async () => {},
      markOutboxFailed: async () => {},
      ...store,
    },
    mailerFor: () => {
      throw new Error('nothing is sent');
    },
    schedule: new RetrySchedule([Duration.parse('1m')]),
    logger: silentLogger(),
    clock: systemClock,
    pollIntervalMs: 60_000,
    batchSize: 10,
    concurrency: () => 2,
    leaseMs: 120_000,
    ...options,
  });
}
