// A busy outbox redacts the status links of its sent mail in batches, a few
// transactions for many mails, not one per sent mark; and nothing it marked
// is left unredacted when it stops.

import { expect, it } from 'vitest';
import type { OutboxJob } from '../../src/outbox/outbox-claims.js';
import { fakeOutboxWorker } from '../harness/outbox-worker-fakes.js';

it('redacts a busy outbox in a few passes and what is left when it stops', async () => {
  const MAILS = 40;
  const due = Array.from(
    { length: MAILS },
    (_, i): OutboxJob => ({
      id: i + 1,
      messageRow: i + 1,
      mailbox: 'support',
      kind: 'ack',
      envelopeFrom: 'support@example.com',
      envelopeTo: [`customer${i}@example.org`],
      attempts: 0,
      raw: Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`),
      draft: null as never,
    }),
  );
  let marked = 0;
  let redacted = 0;
  const passes: number[] = [];
  const worker = fakeOutboxWorker(
    {
      claimOutbox: async (_now, limit) => due.splice(0, limit),
      markOutboxSent: async (ids) => {
        marked += ids.length;
      },
      redactSentMail: async (limit) => {
        const n = Math.min(limit, marked - redacted);
        redacted += n;
        passes.push(n);
        return n;
      },
    },
    {
      // a server that answers each mail a millisecond later, one at a time
      mailerFor: () => ({
        send: async (_envelope, _raw, options) => {
          await options?.beforeEnd?.();
          await new Promise((r) => setTimeout(r, 1));
        },
        verify: async () => {},
        close: () => {},
      }),
      maxInDoubt: () => 1,
    },
  );
  worker.start();
  await expect.poll(() => marked, { timeout: 10_000 }).toBe(MAILS);
  await worker.stop();
  expect(redacted).toBe(MAILS);
  // a pass per sent mark was 40 passes that redacted one mail each
  expect(passes.filter((n) => n > 0).length).toBeLessThanOrEqual(MAILS / 4);
});
