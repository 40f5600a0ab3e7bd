// The estimate a customer is given: what recent tickets of the same policy
// actually took when there are enough of them, else what the policy aims
// for. Both are business time, shifted onto the calendar from the moment
// the customer reads it, so a mail sent on Friday evening does not promise
// "4 hours" when the office opens on Monday.

import type { BusinessCalendar } from '../core/calendar.js';
import { formatDurationWords } from '../core/duration.js';

/** Fewer samples than this say more about chance than about the desk. */
export const MIN_HISTORY_SAMPLES = 5;
export const HISTORY_WINDOW_MS = 7 * 86_400_000;

export interface History {
  samples: number;
  /** Median business time of the samples; null when there are none. */
  medianMs: number | null;
}

export interface DelayEstimate {
  source: 'history' | 'target';
  /** Business time expected. */
  businessMs: number;
  /** Wall-clock time from `from` until that much business time has passed. */
  wallMs: number;
  words: string;
  samples: number;
}

export function estimateDelay(o: {
  history: History;
  targetMs: number;
  calendar: BusinessCalendar;
  from: number;
}): DelayEstimate {
  const fromHistory = o.history.samples >= MIN_HISTORY_SAMPLES && o.history.medianMs !== null;
  const businessMs = fromHistory ? (o.history.medianMs as number) : o.targetMs;
  const wallMs = o.calendar.addBusinessTime(new Date(o.from), businessMs).getTime() - o.from;
  return {
    source: fromHistory ? 'history' : 'target',
    businessMs,
    wallMs,
    words: formatDurationWords(wallMs),
    samples: o.history.samples,
  };
}

/** Median of the one or two middle values of a sorted sample (as read by the store). */
export function medianOfMiddle(middle: readonly number[]): number | null {
  if (middle.length === 0) return null;
  return Math.round(middle.reduce((sum, v) => sum + v, 0) / middle.length);
}
