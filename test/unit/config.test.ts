import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig, smtpFor } from '../../src/config/load-config.js';
import { packageRoot } from '../../src/config/package-root.js';
import { BusinessCalendar } from '../../src/core/calendar.js';
import { Duration, Percent } from '../../src/core/duration.js';
import { redactConfig, resolveSecret, unreadablePassFiles } from '../../src/config/secrets.js';

const SECRET = 'hunter2-SECRET';
const BASE = '/etc/ticketd';

const tmp = mkdtempSync(join(tmpdir(), 'ticketd-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Json = Record<string, any>;

function minimal(): Json {
  return {
    publicUrl: 'https://help.example.com/',
    smtp: { host: 'smtp.example.com', from: 'Support <support@example.com>' },
    mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
  };
}

function withImap(cfg: Json, auth: Json = { user: 'support', pass: SECRET }): Json {
  cfg.mailboxes[0].imap = { host: 'imap.example.com', auth };
  return cfg;
}

function problemsOf(json: unknown, baseDir = BASE): string[] {
  try {
    parseConfig(json, baseDir);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('TICKETD_CONFIG_INVALID');
    return (err as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

function loadProblems(path: string): string[] {
  try {
    loadConfig(path);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

describe('parseConfig defaults', () => {
  it('fills in every default and resolves paths against the config directory', () => {
    const cfg = parseConfig(minimal(), BASE);
    expect(cfg).toEqual({
      database: '/etc/ticketd/data/ticketd.sqlite',
      dataDir: '/etc/ticketd/data',
      publicUrl: 'https://help.example.com',
      templatesDir: join(packageRoot(), 'templates'),
      log: { level: 'info' },
      http: { host: '127.0.0.1', port: 8080, enabled: true, trustProxy: false },
      smtp: {
        host: 'smtp.example.com',
        port: 587,
        secure: false,
        requireTLS: false,
        tlsRejectUnauthorized: true,
        from: 'Support <support@example.com>',
        sendTimeoutMs: 60000,
        transport: 'smtp',
      },
      outbox: {
        retrySchedule: ['1m', '5m', '15m', '1h', '2h', '4h', '8h', '12h', '24h', '24h', '24h'].map(Duration.parse),
        pollIntervalMs: 2000,
        batchSize: 20,
        maxInDoubt: 1,
      },
      limits: {
        maxMessageBytes: 26214400,
        maxAttachmentBytes: 26214400,
        acksPerSenderPerHour: 5,
        ticketsPerSenderPerHour: 10,
        autoRepliesPerHour: 5000,
      },
      authentication: { trustedAuthservIds: [] },
      mailboxes: [
        {
          name: 'support',
          address: 'support@example.com',
          aliases: [],
          referencePrefix: 'ACME',
          language: 'en',
          folder: 'INBOX',
          processedAction: 'move',
          processedFolder: 'Processed',
          quarantineFolder: 'Quarantine',
          reopenWindowDays: 14,
        },
      ],
      statusPage: { linkExpiryDaysAfterClose: 30, failedLookupsPerMinute: 20 },
      calendars: {},
      sla: { policies: [] },
    });
  });

  it('applies nested defaults for imap, inbound, calendars and SLA policies', () => {
    const json = withImap(minimal());
    json.inbound = { port: 2424 };
    json.calendars = { office: { timezone: 'Europe/Berlin', hours: { mon: '09:00-17:00' } } };
    json.sla = {
      policies: [
        {
          name: 'std',
          match: {},
          firstResponse: '4h',
          resolution: '2d',
          calendar: 'office',
          customerNotices: [{ at: '100%' }],
        },
      ],
    };
    const cfg = parseConfig(json, BASE);
    expect(cfg.mailboxes[0]!.imap).toEqual({
      host: 'imap.example.com',
      port: 993,
      secure: true,
      tlsRejectUnauthorized: true,
      auth: { user: 'support', pass: SECRET },
      idle: true,
      compress: false,
      pollIntervalMs: 60000,
      batchSize: 50,
      operationTimeoutMs: 60000,
    });
    // With a single mailbox the inbound listener needs no mailbox name.
    expect(cfg.inbound).toEqual({
      host: '127.0.0.1',
      port: 2424,
      protocol: 'lmtp',
      mailbox: 'support',
      maxMessageBytes: 26214400,
    });
    expect(cfg.calendars.office!.toJSON()).toEqual({ timezone: 'Europe/Berlin', hours: { mon: '09:00-17:00' }, holidays: [] });
    expect(cfg.sla.policies[0]!.customerNotices).toEqual([{ at: Percent.parse('100%'), max: 1 }]);
    expect(cfg.sla.policies[0]!.staffWarnings).toEqual([Percent.parse('80%'), Percent.parse('100%')]);
  });

  it('resolves relative paths and password files but leaves systemd credentials alone', () => {
    const json = withImap(minimal(), { user: 'support', passFile: 'secrets/imap.pass' });
    json.database = 'db/t.sqlite';
    json.dataDir = '/srv/ticketd';
    json.templatesDir = 'my-templates';
    json.smtp = { ...json.smtp, auth: { user: 'relay', passFile: 'credential:smtp' } };
    json.mailboxes[0].smtp = { transport: 'file', fileDir: 'outgoing' };
    const cfg = parseConfig(json, BASE);
    expect(cfg.database).toBe('/etc/ticketd/db/t.sqlite');
    expect(cfg.dataDir).toBe('/srv/ticketd');
    expect(cfg.templatesDir).toBe('/etc/ticketd/my-templates');
    expect(cfg.mailboxes[0]!.imap!.auth.passFile).toBe('/etc/ticketd/secrets/imap.pass');
    expect(cfg.smtp.auth!.passFile).toBe('credential:smtp');
    expect(cfg.mailboxes[0]!.smtp!.fileDir).toBe('/etc/ticketd/outgoing');
  });

  it('lower-cases own addresses so they compare with parsed recipients', () => {
    const json = minimal();
    json.mailboxes[0].address = 'Support@Example.COM';
    json.mailboxes[0].aliases = ['Help@Example.com'];
    const cfg = parseConfig(json, BASE);
    expect(cfg.mailboxes[0]!.address).toBe('support@example.com');
    expect(cfg.mailboxes[0]!.aliases).toEqual(['help@example.com']);
  });

  it('accepts the file transport without an SMTP host', () => {
    const json = minimal();
    json.smtp = { transport: 'file', fileDir: '/var/spool/ticketd', from: 'support@example.com' };
    expect(parseConfig(json, BASE).smtp.fileDir).toBe('/var/spool/ticketd');
  });
});

describe('values', () => {
  function slaConfig(): Json {
    const json = minimal();
    json.outbox = { retrySchedule: ['30m', '1h 30m'] };
    json.calendars = { office: { timezone: 'Europe/Berlin', hours: { mon: '09:00-17:00' } } };
    json.sla = {
      policies: [
        {
          name: 'std',
          match: {},
          firstResponse: '4h',
          resolution: '1d 4h',
          calendar: 'office',
          customerNotices: [{ at: '100%', repeatEvery: '24h', max: 2 }],
          staffWarnings: ['12.5%'],
        },
      ],
    };
    return json;
  }

  it('reads durations, percentages and calendars once, into the values the daemon runs with', () => {
    const cfg = parseConfig(slaConfig(), BASE);
    expect(cfg.outbox.retrySchedule.map((d) => d.ms)).toEqual([30 * 60_000, 90 * 60_000]);
    const policy = cfg.sla.policies[0]!;
    expect(policy.firstResponse.ms).toBe(4 * 3_600_000);
    expect(policy.resolution.ms).toBe(28 * 3_600_000);
    expect(policy.customerNotices[0]!.at.share).toBe(1);
    expect(policy.customerNotices[0]!.repeatEvery?.ms).toBe(24 * 3_600_000);
    expect(policy.staffWarnings[0]!.share).toBe(0.125);
    expect(cfg.calendars.office).toBeInstanceOf(BusinessCalendar);
    expect(cfg.calendars.office!.timezone).toBe('Europe/Berlin');
    // The defaults are values too.
    expect(parseConfig(minimal(), BASE).outbox.retrySchedule[0]!.ms).toBe(60_000);
  });

  it('prints them as the operator wrote them, in JSON and in the redacted copy', () => {
    const cfg = parseConfig(slaConfig(), BASE);
    for (const printed of [JSON.parse(JSON.stringify(cfg)), JSON.parse(JSON.stringify(redactConfig(cfg)))]) {
      expect(printed.outbox.retrySchedule).toEqual(['30m', '1h 30m']);
      expect(printed.sla.policies[0]).toMatchObject({
        firstResponse: '4h',
        resolution: '1d 4h',
        customerNotices: [{ at: '100%', repeatEvery: '24h', max: 2 }],
        staffWarnings: ['12.5%'],
      });
      expect(printed.calendars.office).toEqual({ timezone: 'Europe/Berlin', hours: { mon: '09:00-17:00' }, holidays: [] });
    }
  });
});

describe('config.example.json', () => {
  it('passes the schema', () => {
    const cfg = loadConfig(join(packageRoot(), 'config.example.json'));
    expect(cfg.mailboxes.map((m) => m.name)).toEqual(['support', 'sales']);
    expect(cfg.mailboxes[0]!.imap!.auth.passFile).toBeDefined();
    expect(cfg.mailboxes[1]!.imap!.auth.pass).toBeDefined();
    expect(cfg.calendars.office!.timezone).toBe('Europe/Berlin');
    expect(cfg.mailboxes.map((m) => m.timezone)).toEqual(['Europe/Berlin', 'Europe/Berlin']);
    expect((cfg.calendars.office!.toJSON() as { holidays: string[] }).holidays).toContain('2025-12-25');
    expect(cfg.sla.policies.map((p) => p.match.mailbox)).toEqual(['support', 'sales']);
    for (const policy of cfg.sla.policies) {
      expect(policy.customerNotices).toEqual([{ at: Percent.parse('100%'), repeatEvery: Duration.parse('24h'), max: 3 }]);
    }
  });
});

describe('mailboxes[].timezone', () => {
  it('is refused when it is not an IANA zone, with its path', () => {
    const json = minimal();
    json.mailboxes[0].timezone = 'Europe/Berln';
    expect(() => parseConfig(json, '/etc/ticketd')).toThrow(/mailboxes\[0\]\.timezone.*IANA time zone/);
  });
});

describe('smtpFor', () => {
  it('lays the mailbox override over the top-level settings', () => {
    const json = minimal();
    json.mailboxes.push({
      name: 'sales',
      address: 'sales@example.com',
      referencePrefix: 'SALES',
      smtp: { from: 'Sales <sales@example.com>', port: 465, secure: true },
    });
    json.inbound = { port: 2424, mailbox: 'sales' };
    const cfg = parseConfig(json, BASE);
    expect(smtpFor(cfg, cfg.mailboxes[0]!)).toEqual(cfg.smtp);
    expect(smtpFor(cfg, cfg.mailboxes[1]!)).toEqual({
      ...cfg.smtp,
      from: 'Sales <sales@example.com>',
      port: 465,
      secure: true,
    });
  });
});

describe('config problems', () => {
  const cases: [string, (cfg: Json) => void, string][] = [
    [
      'non-numeric IMAP port',
      (c) => {
        withImap(c);
        c.mailboxes[0].imap.port = 'abc';
      },
      'mailboxes[0].imap.port: expected an integer between 1 and 65535, got "abc"',
    ],
    ['port out of range', (c) => (c.http = { port: 70000 }), 'http.port: expected an integer between 1 and 65535, got 70000'],
    ['missing SMTP host', (c) => delete c.smtp.host, 'smtp.host: required'],
    ['missing publicUrl', (c) => delete c.publicUrl, 'publicUrl: required'],
    ['relative publicUrl', (c) => (c.publicUrl = '/help'), 'publicUrl: must be an absolute http(s) URL'],
    ['non-http publicUrl', (c) => (c.publicUrl = 'ftp://example.com'), 'publicUrl: must be an absolute http(s) URL'],
    [
      'duplicate mailbox name',
      (c) => c.mailboxes.push({ name: 'support', address: 'other@example.com', referencePrefix: 'OTH' }),
      'mailboxes[1].name: duplicate mailbox name "support"',
    ],
    [
      'address shared between mailboxes',
      (c) =>
        c.mailboxes.push({ name: 'sales', address: 'x@example.com', aliases: ['SUPPORT@example.com'], referencePrefix: 'S1' }),
      'mailboxes[1].aliases[0]: address "support@example.com" is already used by mailboxes[0]',
    ],
    ['unknown mailbox key', (c) => (c.mailboxes[0].imapp = {}), 'mailboxes[0].imapp: unknown key'],
    ['unknown top-level key', (c) => (c.databse = 'x'), 'databse: unknown key'],
    ['no mailboxes', (c) => (c.mailboxes = []), 'mailboxes: at least one mailbox is required'],
    [
      'bad mailbox name',
      (c) => (c.mailboxes[0].name = 'Support'),
      'mailboxes[0].name: expected lower-case letters, digits, "-" or "_", starting with a letter or digit, got "Support"',
    ],
    [
      'bad reference prefix',
      (c) => (c.mailboxes[0].referencePrefix = 'acme'),
      'mailboxes[0].referencePrefix: expected 2 to 10 upper-case letters or digits starting with a letter, like "ACME", got "acme"',
    ],
    [
      'bad email',
      (c) => (c.mailboxes[0].staffAddress = 'staff'),
      'mailboxes[0].staffAddress: expected an email address, got "staff"',
    ],
    ['bad from', (c) => (c.smtp.from = 'Support <>'), 'smtp.from: expected an address or "Name <address>", got "Support <>"'],
    [
      'bad enum',
      (c) => (c.log = { level: 'verbose' }),
      'log.level: expected one of "trace", "debug", "info", "warn", "error", got "verbose"',
    ],
    ['bad boolean', (c) => (c.http = { enabled: 'yes' }), 'http.enabled: expected true or false, got "yes"'],
    [
      'bad duration',
      (c) => (c.outbox = { retrySchedule: ['1m', '5 minutes'] }),
      'outbox.retrySchedule[1]: expected a duration like "30m" or "1h 30m", got "5 minutes"',
    ],
    ['wrong type for an array', (c) => (c.outbox = { retrySchedule: '1m' }), 'outbox.retrySchedule: expected an array, got "1m"'],
    [
      'no IMAP secret',
      (c) => withImap(c, { user: 'support' }),
      'mailboxes[0].imap.auth: set exactly one of "pass", "passFile" or "accessTokenCommand"',
    ],
    [
      'two IMAP secrets',
      (c) => withImap(c, { user: 'support', pass: SECRET, accessTokenCommand: ['/bin/echo', 'x'] }),
      'mailboxes[0].imap.auth: set exactly one of "pass", "passFile" or "accessTokenCommand"',
    ],
    ['file transport without a directory', (c) => (c.smtp.transport = 'file'), 'smtp.fileDir: required when transport is "file"'],
    [
      'mailbox override switching to file transport without a directory',
      (c) => (c.mailboxes[0].smtp = { transport: 'file' }),
      'mailboxes[0].smtp.fileDir: required when transport is "file"',
    ],
    [
      'inbound without mailbox while two exist',
      (c) => {
        c.mailboxes.push({ name: 'sales', address: 'sales@example.com', referencePrefix: 'SALES' });
        c.inbound = { port: 2424 };
      },
      'inbound.mailbox: required when more than one mailbox is configured',
    ],
    [
      'inbound into an unknown mailbox',
      (c) => (c.inbound = { port: 24, mailbox: 'sales' }),
      'inbound.mailbox: no mailbox named "sales"',
    ],
    [
      'bad working hours',
      (c) => (c.calendars = { office: { timezone: 'Europe/Berlin', hours: { mon: '9-17' } } }),
      'calendars.office.hours.mon: expected hours like "09:00-17:00" or "09:00-12:00,13:00-17:00", got "9-17"',
    ],
    [
      'bad holiday',
      (c) => (c.calendars = { office: { timezone: 'Europe/Berlin', hours: {}, holidays: ['25.12.2025'] } }),
      'calendars.office.holidays[0]: expected a date like "2025-12-25", got "25.12.2025"',
    ],
    [
      'unknown weekday',
      (c) => (c.calendars = { office: { timezone: 'Europe/Berlin', hours: { monday: '09:00-17:00' } } }),
      'calendars.office.hours.monday: unknown key',
    ],
    [
      'calendar named 24x7',
      (c) => (c.calendars = { '24x7': { timezone: 'UTC', hours: {} } }),
      'calendars["24x7"]: reserved name: "24x7" always means round the clock',
    ],
    [
      'policy with an unknown calendar',
      (c) => (c.sla = { policies: [policy({ calendar: 'office' })] }),
      'sla.policies[0].calendar: no calendar named "office" (define it under "calendars" or use "24x7")',
    ],
    [
      'policy for an unknown mailbox',
      (c) => (c.sla = { policies: [policy({ match: { mailbox: 'sales' } })] }),
      'sla.policies[0].match.mailbox: no mailbox named "sales"',
    ],
    [
      'bad percentage',
      (c) => (c.sla = { policies: [policy({ customerNotices: [{ at: '100' }] })] }),
      'sla.policies[0].customerNotices[0].at: expected a percentage like "80%", got "100"',
    ],
    [
      'duplicate policy name',
      (c) => (c.sla = { policies: [policy(), policy()] }),
      'sla.policies[1].name: duplicate policy name "std"',
    ],
  ];

  function policy(overrides: Json = {}): Json {
    return { name: 'std', match: {}, firstResponse: '4h', resolution: '2d', calendar: '24x7', ...overrides };
  }

  it.each(cases)('%s gives exactly one line', (_name, mutate, line) => {
    const json = minimal();
    mutate(json);
    expect(problemsOf(json)).toEqual([line]);
  });

  it('rejects a top level that is not an object', () => {
    expect(problemsOf([])).toEqual(['(top level): expected an object, got an array']);
  });

  it('reports every problem at once, one line each', () => {
    const json = withImap(minimal());
    json.mailboxes[0].imap.port = 'abc';
    json.mailboxes[0].imapp = {};
    delete json.smtp.host;
    json.publicUrl = 'help.example.com';
    json.mailboxes.push({ name: 'support', address: 'other@example.com', referencePrefix: 'OTH' });
    json.inbound = { port: 2424 };
    expect(problemsOf(json).sort()).toEqual(
      [
        'mailboxes[0].imap.port: expected an integer between 1 and 65535, got "abc"',
        'mailboxes[0].imapp: unknown key',
        'smtp.host: required',
        'publicUrl: must be an absolute http(s) URL',
        'mailboxes[1].name: duplicate mailbox name "support"',
        'inbound.mailbox: required when more than one mailbox is configured',
      ].sort(),
    );
  });

  it('does not echo a cross-check for a field that is already broken', () => {
    const json = minimal();
    json.sla = { policies: [policy({ calendar: 42 })] };
    expect(problemsOf(json)).toEqual(['sla.policies[0].calendar: expected a string, got 42']);
  });
});

describe('loadConfig', () => {
  it('reports an unreadable file in one line', () => {
    const path = join(tmp, 'missing.json');
    expect(loadProblems(path)).toEqual([`${path}: cannot read file (ENOENT)`]);
  });

  it('reports invalid JSON with line and column', () => {
    const path = join(tmp, 'comma.json');
    writeFileSync(path, '{\n  "publicUrl": "https://x.example",\n  "smtp": {},\n}\n');
    expect(loadProblems(path)).toEqual([`${path}: invalid JSON at line 4, column 1: expected double-quoted property name`]);
  });

  it('locates a bad token without quoting the file, which may hold a password', () => {
    const path = join(tmp, 'token.json');
    writeFileSync(path, `{\n  "smtp": {\n    "auth": { "user": "u", "pass": ${SECRET} }\n  }\n}\n`);
    const problems = loadProblems(path);
    expect(problems).toEqual([`${path}: invalid JSON at line 3, column 36: unexpected character`]);
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('reports a truncated file', () => {
    const path = join(tmp, 'short.json');
    writeFileSync(path, '{\n  "publicUrl": ');
    expect(loadProblems(path)).toEqual([`${path}: invalid JSON at line 2, column 16: unexpected end of input`]);
  });

  it('takes relative paths from the config file directory and tolerates a byte-order mark', () => {
    const path = join(tmp, 'ok.json');
    writeFileSync(path, `\uFEFF${JSON.stringify({ ...minimal(), database: 'ticketd.sqlite' })}`);
    const cfg = loadConfig(path);
    expect(cfg.database).toBe(join(tmp, 'ticketd.sqlite'));
    expect(cfg.dataDir).toBe(tmp);
  });
});

describe('secrets stay out of messages and output', () => {
  it('never puts a password into problem lines', () => {
    const json = minimal();
    json.smtp.auth = { user: 'relay', pass: SECRET, passFile: '/x' };
    json.smtp.password = SECRET;
    withImap(json, { user: 'support', pass: { value: SECRET } });
    const problems = problemsOf(json);
    expect(problems).toContain('smtp.auth: set exactly one of "pass" or "passFile"');
    expect(problems).toContain('smtp.password: unknown key');
    expect(problems).toContain('mailboxes[0].imap.auth.pass: expected a string');
    expect(problems.join('\n')).not.toContain(SECRET);
  });

  it('redactConfig replaces passwords and access tokens in a deep copy', () => {
    const json = withImap(minimal());
    json.smtp.auth = { user: 'relay', pass: SECRET };
    const cfg = parseConfig(json, BASE);
    const redacted = redactConfig(cfg);
    expect(JSON.stringify(redacted)).not.toContain(SECRET);
    expect(redacted.smtp.auth).toEqual({ user: 'relay', pass: '[redacted]' });
    expect(redacted.mailboxes[0]!.imap!.auth).toEqual({ user: 'support', pass: '[redacted]' });
    // The original is untouched: the daemon still needs the value.
    expect(cfg.smtp.auth!.pass).toBe(SECRET);
    expect(redactConfig({ oauth: { accessToken: SECRET, user: 'u' } })).toEqual({
      oauth: { accessToken: '[redacted]', user: 'u' },
    });
  });

  it('keeps secrets out of JSON.stringify, util.inspect and String of the config', () => {
    const json = withImap(minimal());
    const cfg = parseConfig(json, BASE);
    expect(JSON.stringify(cfg)).not.toContain(SECRET);
    expect(JSON.stringify(cfg)).toContain('[redacted]');
    expect(inspect(cfg, { depth: null })).not.toContain(SECRET);
    expect(String(cfg)).not.toContain(SECRET);
  });
});

describe('what start refuses, the config refuses', () => {
  it("reads durations with the daemon's own grammar: units largest first, each once", () => {
    const json = minimal();
    json.outbox = { retrySchedule: ['30m 1h', '1h1h', '1h 30m'] };
    const problems = problemsOf(json);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^outbox\.retrySchedule\[0\]: invalid duration "30m 1h": unit "h" is repeated or out of order/);
    expect(problems[1]).toMatch(/^outbox\.retrySchedule\[1\]: invalid duration "1h1h"/);
  });

  it('names a misspelt calendar time zone by its path, alongside other problems', () => {
    const json = minimal();
    json.publicUrl = 'nope';
    json.calendars = { office: { timezone: 'Europe/Berln', hours: { mon: '09:00-17:00' } } };
    expect(problemsOf(json)).toEqual([
      'publicUrl: must be an absolute http(s) URL',
      'calendars.office.timezone: expected an IANA time zone like "Europe/Berlin" or "UTC", got "Europe/Berln"',
    ]);
  });

  it('refuses a calendar the SLA engine cannot build, once, under its name', () => {
    const json = minimal();
    json.calendars = { office: { timezone: 'Europe/Berlin', hours: { mon: '17:00-09:00' } } };
    const problems = problemsOf(json);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^calendars\.office: hours\.mon: /);
  });
});

describe('unreadablePassFiles', () => {
  it('names each passFile that cannot be read by its JSON path', () => {
    const readable = join(tmp, 'readable.pass');
    writeFileSync(readable, SECRET);
    const json = withImap(minimal(), { user: 'support', passFile: readable });
    json.smtp.auth = { user: 'relay', passFile: 'missing.pass' };
    const problems = unreadablePassFiles(parseConfig(json, tmp), {});
    expect(problems).toEqual([`smtp.auth.passFile: cannot read ${join(tmp, 'missing.pass')} (ENOENT)`]);
  });

  it('checks a systemd credential only where the service would find it', () => {
    const json = minimal();
    json.smtp.auth = { user: 'relay', passFile: 'credential:smtp' };
    const cfg = parseConfig(json, tmp);
    expect(unreadablePassFiles(cfg, {})).toEqual([]);
    expect(unreadablePassFiles(cfg, { CREDENTIALS_DIRECTORY: tmp })).toEqual([
      `smtp.auth.passFile: cannot read ${join(tmp, 'smtp')} (ENOENT)`,
    ]);
  });
});

describe('resolveSecret', () => {
  it('returns an inline password', async () => {
    await expect(resolveSecret({ pass: SECRET })).resolves.toEqual({ kind: 'password', value: SECRET });
  });

  it('reads a password file, dropping one trailing newline', async () => {
    const file = join(tmp, 'pw');
    writeFileSync(file, `${SECRET}\n\n`);
    await expect(resolveSecret({ passFile: file })).resolves.toEqual({ kind: 'password', value: `${SECRET}\n` });
    writeFileSync(file, `${SECRET}\r\n`);
    await expect(resolveSecret({ passFile: file })).resolves.toEqual({ kind: 'password', value: SECRET });
  });

  it('reads a systemd credential from $CREDENTIALS_DIRECTORY', async () => {
    writeFileSync(join(tmp, 'imap-support'), `${SECRET}\n`);
    await expect(resolveSecret({ passFile: 'credential:imap-support' }, { CREDENTIALS_DIRECTORY: tmp })).resolves.toEqual({
      kind: 'password',
      value: SECRET,
    });
  });

  it('names the missing credential file, with a machine-readable code', async () => {
    const err = await resolveSecret({ passFile: 'credential:nope' }, { CREDENTIALS_DIRECTORY: tmp }).catch((e) => e);
    expect(err.code).toBe('TICKETD_SECRET_UNAVAILABLE');
    expect(err.message).toContain(join(tmp, 'nope'));
  });

  it('explains a credential lookup outside systemd', async () => {
    const err = await resolveSecret({ passFile: 'credential:smtp' }, {}).catch((e) => e);
    expect(err.code).toBe('TICKETD_SECRET_UNAVAILABLE');
    expect(err.message).toContain('CREDENTIALS_DIRECTORY is not set');
  });

  it('refuses credential names that would leave the credentials directory', async () => {
    const err = await resolveSecret({ passFile: 'credential:../pw' }, { CREDENTIALS_DIRECTORY: tmp }).catch((e) => e);
    expect(err.code).toBe('TICKETD_SECRET_UNAVAILABLE');
  });

  it('runs the access token command without a shell', async () => {
    await expect(resolveSecret({ accessTokenCommand: ['/bin/echo', 'tok'] })).resolves.toEqual({
      kind: 'accessToken',
      value: 'tok',
    });
    // A shell would expand this; execFile passes it through literally.
    await expect(resolveSecret({ accessTokenCommand: ['/bin/echo', '$HOME'] })).resolves.toEqual({
      kind: 'accessToken',
      value: '$HOME',
    });
  });

  it('reports a failing token command without its output', async () => {
    const err = await resolveSecret({
      accessTokenCommand: ['/bin/sh', '-c', `echo ${SECRET}; echo ${SECRET} >&2; exit 3`],
    }).catch((e) => e);
    expect(err.code).toBe('TICKETD_SECRET_UNAVAILABLE');
    expect(err.message).toBe('accessTokenCommand /bin/sh exited with status 3');
  });

  it('reports a token command that cannot be started', async () => {
    const err = await resolveSecret({ accessTokenCommand: [join(tmp, 'no-such-command')] }).catch((e) => e);
    expect(err.code).toBe('TICKETD_SECRET_UNAVAILABLE');
    expect(err.message).toContain('could not be started (ENOENT)');
  });
});
