import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

// Bearer tokens of the JSON API: 32 random bytes, base64url, behind a prefix
// that lets a secret scanner (and a person) recognise a leaked one. Only the
// SHA-256 is stored: a token is as strong as a 256-bit key, so a slow
// password hash would add nothing but CPU per request.

export const API_TOKEN_PREFIX = 'tkd_';
export const API_TOKEN_SCOPES = ['read', 'write'] as const;
export type ApiTokenScope = (typeof API_TOKEN_SCOPES)[number];

const TOKEN_SHAPE = /^tkd_[A-Za-z0-9_-]{43}$/;

export function newApiToken(): string {
  return API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function apiTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Tokens have a fixed shape; anything else is refused without a lookup. */
export function apiTokenWellFormed(token: string): boolean {
  return TOKEN_SHAPE.test(token);
}

/** Compares two hex hashes in constant time. */
export function sameApiTokenHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether a token of `scope` may do what `needs` asks: write includes read. */
export function scopeAllows(scope: ApiTokenScope, needs: ApiTokenScope): boolean {
  return scope === 'write' || needs === 'read';
}
