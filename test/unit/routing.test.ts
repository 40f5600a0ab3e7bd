import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { routeMessage, type RouteRule } from '../../src/classify/route.js';
import { ConfigError, parseConfig } from '../../src/config/load-config.js';
import type { ParsedMessage } from '../../src/core/types.js';
import { parseMessage } from '../../src/parse/parse-message.js';

const dir = mkdtempSync(join(tmpdir(), 'ticketd-routing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function mail(
  o: { from?: string; to?: string; cc?: string; subject?: string; body?: string; headers?: string[] } = {},
): Promise<ParsedMessage> {
  const raw = [
    `From: ${o.from ?? 'jane@customer.example'}`,
    `To: ${o.to ?? 'support@example.com'}`,
    ...(o.cc ? [`Cc: ${o.cc}`] : []),
    `Subject: ${o.subject ?? 'Hello'}`,
    'Message-ID: <r1@customer.example>',
    ...(o.headers ?? []),
    'Content-Type: text/plain; charset=utf-8',
    '',
    o.body ?? 'Some text.',
    '',
  ].join('\r\n');
  const verdict = await parseMessage(Buffer.from(raw), { attachmentsDir: dir, maxAttachmentBytes: 1024 });
  if (!verdict.ok) throw new Error(verdict.reason);
  return verdict.message;
}

const at = { mailbox: 'support', defaultQueue: 'Front desk' };

describe('routing rules', () => {
  const rules: RouteRule[] = [
    { name: 'vip', match: { fromDomain: '^bigcorp\\.example$' }, set: { priority: 'urgent', tags: ['vip'] } },
    {
      name: 'warranty',
      match: { subject: 'warranty|garantie', body: 'serial' },
      set: { queue: 'Hardware', tags: ['warranty', 'warranty'] },
    },
    { name: 'delivery', match: { to: '^shipping@' }, set: { queue: 'Warehouse' } },
    { name: 'eu-desk', match: { mailbox: '^eu$' }, set: { queue: 'EU' } },
    { name: 'ticketing-system', match: { header: { 'X-Origin': '^shop-[0-9]+$' } }, set: { queue: 'Shop', priority: 'high' } },
  ];

  it('takes the first rule whose every condition holds, in order', async () => {
    // Both vip and warranty would hold: the earlier one decides.
    const v = routeMessage(await mail({ from: 'boss@BigCorp.example', subject: 'Warranty claim', body: 'serial 1' }), at, rules);
    expect(v).toMatchObject({ rule: 'vip', queue: 'Front desk', priority: 'urgent', tags: ['vip'] });
    expect(v.trace.map((t) => t.rule)).toEqual(['vip']);
  });

  it('needs every condition of a rule, and says which one failed', async () => {
    const v = routeMessage(await mail({ subject: 'Warranty claim', body: 'no number here' }), at, rules);
    expect(v.rule).toBeNull();
    const warranty = v.trace.find((t) => t.rule === 'warranty')!;
    expect(warranty.conditions).toEqual([
      { field: 'subject', pattern: 'warranty|garantie', matched: true, found: 'Warranty' },
      { field: 'body', pattern: 'serial', matched: false, found: 'no number here' },
    ]);
  });

  it('matches subject and body case-insensitively and dedupes tags', async () => {
    const v = routeMessage(await mail({ subject: 'GARANTIE', body: 'Serial: 4711' }), at, rules);
    expect(v).toMatchObject({ rule: 'warranty', queue: 'Hardware', tags: ['warranty'] });
  });

  it('matches a recipient in To, Cc or the MTA stamp', async () => {
    expect(routeMessage(await mail({ to: 'Shipping@example.com' }), at, rules).rule).toBe('delivery');
    expect(routeMessage(await mail({ cc: 'shipping@example.com' }), at, rules).rule).toBe('delivery');
    expect(routeMessage(await mail({ headers: ['Delivered-To: <shipping@example.com>'] }), at, rules).rule).toBe('delivery');
  });

  it('matches the mailbox and header values', async () => {
    expect(routeMessage(await mail(), { mailbox: 'eu', defaultQueue: null }, rules)).toMatchObject({
      rule: 'eu-desk',
      queue: 'EU',
    });
    const shop = routeMessage(await mail({ headers: ['X-Origin: shop-42'] }), at, rules);
    expect(shop).toMatchObject({ rule: 'ticketing-system', queue: 'Shop', priority: 'high' });
    expect(routeMessage(await mail({ headers: ['X-Origin: shop-x'] }), at, rules).rule).toBeNull();
  });

  it('sends what no rule matched to the mailbox default queue', async () => {
    const v = routeMessage(await mail(), at, rules);
    expect(v).toMatchObject({ rule: null, queue: 'Front desk', priority: null, tags: [] });
    expect(v.trace).toHaveLength(rules.length);
  });

  it('a rule without conditions matches everything', async () => {
    expect(routeMessage(await mail(), at, [{ name: 'all', match: {}, set: { tags: ['triage'] } }])).toMatchObject({
      rule: 'all',
      queue: 'Front desk',
      tags: ['triage'],
    });
  });
});

describe('queues and routing in the configuration', () => {
  const base = {
    publicUrl: 'https://help.example.com',
    smtp: { host: 'localhost', from: 'support@example.com' },
    mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME', defaultQueue: 'Front desk' }],
  };
  const problems = (extra: Record<string, unknown>): string[] => {
    try {
      parseConfig({ ...base, ...extra }, '/etc/ticketd');
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it('accepts queues, rules and a default queue that name each other', () => {
    expect(
      problems({
        queues: [
          { name: 'Front desk', staff: ['Sam@example.com'] },
          { name: 'Hardware', notify: 'hw@example.com' },
        ],
        routing: [
          {
            name: 'hw',
            match: { subject: 'printer', header: { 'X-Prio': '^1$' } },
            set: { queue: 'hardware', tags: ['hw:printer'] },
          },
        ],
      }),
    ).toEqual([]);
  });

  it('refuses unknown queues, SLA policies, duplicate names and broken patterns, each by its path', () => {
    const found = problems({
      queues: [{ name: 'Hardware', sla: 'gold' }, { name: 'hardware' }],
      routing: [
        { name: 'a', match: { subject: '(unclosed' }, set: { queue: 'Nowhere' } },
        { name: 'a', match: {}, set: { priority: 'asap' } },
      ],
    });
    const paths = found.map((p) => p.split(':')[0]);
    expect(paths).toEqual(
      expect.arrayContaining([
        'queues[0].sla',
        'queues[1].name',
        'mailboxes[0].defaultQueue',
        'routing[0].match.subject',
        'routing[0].set.queue',
        'routing[1].name',
        'routing[1].set.priority',
      ]),
    );
  });
});
