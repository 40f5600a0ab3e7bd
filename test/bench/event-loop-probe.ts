// Preloaded into the daemon by the benchmark (`node --import`), never by
// ticketd itself: records how late the event loop ran its callbacks over the
// daemon's life and writes the histogram when the process exits.

import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.TICKETD_BENCH_EVENT_LOOP_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  process.once('exit', () => {
    histogram.disable();
    const ms = (ns: number) => Math.round(ns / 1e5) / 10;
    writeFileSync(
      file,
      JSON.stringify({
        p50: ms(histogram.percentile(50)),
        p99: ms(histogram.percentile(99)),
        max: ms(histogram.max),
        mean: ms(histogram.mean),
      }),
    );
  });
}
