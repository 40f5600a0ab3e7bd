// Every claim the outbox worker makes names the node's incarnation, so a
// row claimed by a node that was killed is due again as soon as the node's
// heartbeat has run out (or at once when it restarts), not after the whole
// claim lease. The claim of new mail ahead of a backlog (wakeFirst) is one.

import { expect, it } from 'vitest';
import { fakeOutboxWorker } from '../harness/outbox-worker-fakes.js';

it('names the claimant in the claim ahead of the queue as in every other', async () => {
  const claims: { limit: number; fresh: number | undefined; claimant: string | null | undefined }[] = [];
  const worker = fakeOutboxWorker(
    {
      claimOutbox: async (_now, limit, _leaseMs, fresh, claimant) => {
        claims.push({ limit, fresh, claimant });
        return [];
      },
    },
    { claimant: 'node-a:incarnation-1' },
  );
  worker.start();
  await expect.poll(() => claims.length).toBeGreaterThan(0);
  worker.wakeFirst(1);
  await expect.poll(() => claims.some((c) => c.limit === 1 && c.fresh === 1)).toBe(true);
  await worker.stop();
  expect(claims.filter((c) => c.claimant !== 'node-a:incarnation-1')).toEqual([]);
});
