import type { BounceInfo } from './types.js';

export type DeliveryRecipient = BounceInfo['recipients'][number];

/**
 * Only a failed action or a permanent (5.x.x) status means the address does
 * not work. Classify reads reports with it; the store decides with it which
 * recipients a report may suppress.
 */
export function isDeliveryFailure(recipient: DeliveryRecipient): boolean {
  return recipient.action === 'failed' || recipient.status.startsWith('5.');
}
