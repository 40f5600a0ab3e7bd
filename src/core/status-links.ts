import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { makePrivateDirSync } from './private-files.js';

/**
 * The status page's address for a token, under the site's `publicUrl`: one
 * form in the acknowledgement, SLA mail, staff notices and the command line.
 */
export function statusUrlFor(site: { publicUrl: string }, token: string): string {
  return `${site.publicUrl}/t/${token}`;
}

/**
 * Status-page link tokens. A token is HMAC-SHA256(site key, nonce) over a
 * random 128-bit nonce: unguessable, unrelated to the reference, and the same
 * for every mail to one recipient of one ticket. The database keeps the nonce
 * and the token's SHA-256, so a copy of the database alone cannot produce a
 * working link.
 */
export class StatusLinks {
  private constructor(private readonly key: Buffer) {}

  static fromKey(key: Buffer): StatusLinks {
    if (key.length < 32) throw new Error('status link key must be at least 32 bytes');
    return new StatusLinks(key);
  }

  /** Reads the site key, creating it (mode 0600) on first start. */
  static loadOrCreate(path: string): StatusLinks {
    if (!existsSync(path)) {
      makePrivateDirSync(dirname(path));
      writeFileSync(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    }
    chmodSync(path, 0o600);
    return StatusLinks.fromKey(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64'));
  }

  newNonce(): string {
    return randomBytes(16).toString('hex');
  }

  token(nonce: string): string {
    return createHmac('sha256', this.key).update(nonce).digest('base64url');
  }

  /**
   * The secret the status page's form tokens (CSRF) are made with: derived
   * from the site key, so it needs no file of its own and changes with it.
   */
  formSecret(): string {
    return createHmac('sha256', this.key).update('status-page form tokens').digest('base64url');
  }

  static hash(token: string): string {
    return createHash('sha256').update(token).digest('hex');
  }

  /** Tokens have a fixed shape; anything else is refused before any lookup. */
  static wellFormed(token: string): boolean {
    return /^[A-Za-z0-9_-]{43}$/.test(token);
  }

  static sameHash(a: string, b: string): boolean {
    const x = Buffer.from(a, 'hex');
    const y = Buffer.from(b, 'hex');
    return x.length === y.length && timingSafeEqual(x, y);
  }
}
