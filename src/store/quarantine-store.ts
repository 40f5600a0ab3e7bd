// Messages the pipeline could not take (unparseable, a stage that threw),
// kept with their raw bytes until staff release or discard them.

import type { MessageOrigin } from '../core/types.js';
import type { SqlEngine } from './sql-engine.js';
import type { QuarantineEntry, QuarantineStore } from './store.js';

export class SqlQuarantineStore implements QuarantineStore {
  constructor(private readonly engine: SqlEngine) {}

  async listQuarantine(opts: { includeReleased?: boolean } = {}): Promise<QuarantineEntry[]> {
    return (await this.engine.all<RawQuarantine>('list-quarantine', { all: opts.includeReleased ? 1 : 0 })).map(toQuarantine);
  }

  async quarantineRaw(id: number): Promise<{ entry: QuarantineEntry; raw: Buffer } | null> {
    const row = await this.engine.get<RawQuarantine & { raw: Buffer }>('quarantine-by-id', [id]);
    return row ? { entry: toQuarantine(row), raw: row.raw } : null;
  }

  async markQuarantineReleased(id: number, outcome: string, now: number): Promise<void> {
    await this.engine.run('release-quarantine', [now, outcome, id]);
  }
}

interface RawQuarantine {
  id: number;
  mailbox: string;
  origin: string;
  reason: string;
  createdAt: number;
  releasedAt: number | null;
  releaseOutcome: string | null;
  size: number;
}

function toQuarantine(r: RawQuarantine): QuarantineEntry {
  return {
    id: r.id,
    mailbox: r.mailbox,
    origin: JSON.parse(r.origin) as MessageOrigin,
    reason: r.reason,
    createdAt: r.createdAt,
    releasedAt: r.releasedAt,
    releaseOutcome: r.releaseOutcome,
    size: r.size,
  };
}
