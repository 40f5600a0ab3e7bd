// Config of the resource bounds: the LMTP listener's limits, valid-lookup
// rate limit of the status page, and the proxies the web server trusts.

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { configProblems } from '../harness/config-problems.js';
import { inboundLimits, INBOUND_LIMIT_DEFAULTS } from '../../src/config/schema.js';

type Json = Record<string, any>;

function minimal(over: (c: Json) => void = () => undefined): Json {
  const c: Json = {
    publicUrl: 'https://help.example.com/',
    smtp: { host: 'smtp.example.com', from: 'Support <support@example.com>' },
    mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
  };
  over(c);
  return c;
}

describe('inbound limits', () => {
  it('default to bounded values, and the byte budget is never below one message', () => {
    const cfg = parseConfig(
      minimal((c) => (c.inbound = { port: 2424 })),
      '/etc/ticketd',
    );
    expect(inboundLimits(cfg.inbound!)).toEqual({
      maxConnections: 32,
      maxInFlightBytes: 64 * 1024 * 1024,
      idleTimeoutMs: 60_000,
      transactionTimeoutMs: 300_000,
    });
    expect(inboundLimits({ maxMessageBytes: 100_000_000 }).maxInFlightBytes).toBe(100_000_000);
    expect(INBOUND_LIMIT_DEFAULTS.maxInFlightBytes).toBeGreaterThanOrEqual(cfg.inbound!.maxMessageBytes);
  });

  it('take configured values', () => {
    const inbound = {
      port: 2424,
      maxConnections: 4,
      maxInFlightBytes: 30_000_000,
      idleTimeoutMs: 5_000,
      transactionTimeoutMs: 20_000,
    };
    const cfg = parseConfig(
      minimal((c) => (c.inbound = inbound)),
      '/etc/ticketd',
    );
    expect(inboundLimits(cfg.inbound!)).toEqual({
      maxConnections: 4,
      maxInFlightBytes: 30_000_000,
      idleTimeoutMs: 5_000,
      transactionTimeoutMs: 20_000,
    });
  });

  it('refuse a byte budget that could never hold a message of the allowed size', () => {
    expect(
      configProblems(minimal((c) => (c.inbound = { port: 2424, maxMessageBytes: 2_000_000, maxInFlightBytes: 1_000_000 }))),
    ).toEqual(['inbound.maxInFlightBytes: must be at least inbound.maxMessageBytes (2000000)']);
    expect(configProblems(minimal((c) => (c.inbound = { port: 2424, maxConnections: 0 })))).toEqual([
      'inbound.maxConnections: expected a positive integer, got 0',
    ]);
  });
});

describe('http.trustProxy', () => {
  it('takes the addresses and networks of the proxies', () => {
    const cfg = parseConfig(
      minimal((c) => (c.http = { trustProxy: ['127.0.0.1', '::1', '10.0.0.0/8', 'fd00::/8'] })),
      '/etc/ticketd',
    );
    expect(cfg.http.trustProxy).toEqual(['127.0.0.1', '::1', '10.0.0.0/8', 'fd00::/8']);
    expect(parseConfig(minimal(), '/etc/ticketd').http.trustProxy).toBe(false);
  });

  it('refuses true, which trusted every peer, saying what to write instead', () => {
    expect(configProblems(minimal((c) => (c.http = { trustProxy: true })))).toEqual([
      'http.trustProxy: true would trust any peer: list the addresses of your reverse proxies instead, e.g. ["127.0.0.1", "::1"]',
    ]);
  });

  it('refuses what is not an address or a network', () => {
    const problems = configProblems(
      minimal((c) => (c.http = { trustProxy: ['proxy.example.com', '10.0.0.0/33', '1.2.3.4/8/8'] })),
    );
    expect(problems).toEqual([
      'http.trustProxy[0]: expected an IP address or CIDR like "10.0.0.0/8", got "proxy.example.com"',
      'http.trustProxy[1]: expected an IP address or CIDR like "10.0.0.0/8", got "10.0.0.0/33"',
      'http.trustProxy[2]: expected an IP address or CIDR like "10.0.0.0/8", got "1.2.3.4/8/8"',
    ]);
    expect(configProblems(minimal((c) => (c.http = { trustProxy: [] })))).toHaveLength(1);
  });
});

describe('statusPage.lookupsPerMinute', () => {
  it('is optional and must be positive', () => {
    expect(
      parseConfig(
        minimal((c) => (c.statusPage = { lookupsPerMinute: 10 })),
        '/etc/ticketd',
      ).statusPage.lookupsPerMinute,
    ).toBe(10);
    expect(configProblems(minimal((c) => (c.statusPage = { lookupsPerMinute: 0 })))).toEqual([
      'statusPage.lookupsPerMinute: expected a positive integer, got 0',
    ]);
  });
});
