import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hiddenFromService, installedPaths, renderSystemdUnit, UNIT_CONFIG_PATH } from '../../src/daemon/systemd-unit.js';

const systemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'ticketd-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const paths = installedPaths();
const unit = renderSystemdUnit(paths);
const directives = unit.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));

describe('systemd unit', () => {
  it('starts this node with the package CLI and the config in /etc/ticketd', () => {
    expect(paths.node).toBe(process.execPath);
    expect(paths.cli).toMatch(/\/dist\/src\/cli\/main\.js$/);
    expect(directives).toContain(`ExecStart=${process.execPath} ${paths.cli} start --config ${UNIT_CONFIG_PATH}`);
  });

  it.each([
    'Type=exec',
    'ExecReload=/bin/kill -HUP $MAINPID',
    'User=ticketd',
    'Group=ticketd',
    'StateDirectory=ticketd',
    'ConfigurationDirectory=ticketd',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'CapabilityBoundingSet=',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
    'SystemCallArchitectures=native',
    'UMask=0027',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'ProtectKernelTunables=yes',
    'ProtectControlGroups=yes',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'Restart=on-failure',
    'WantedBy=multi-user.target',
  ])('has %s', (directive) => {
    expect(directives).toContain(directive);
  });

  it('shows LoadCredential= as a commented example matching passFile "credential:NAME"', () => {
    expect(unit).toMatch(/^#LoadCredential=imap-password:\/etc\/ticketd\/credentials\/imap-password$/m);
    expect(unit).toMatch(/^#LoadCredential=smtp-password:/m);
    expect(unit).toContain('"passFile": "credential:NAME"');
  });

  it('never enables MemoryDenyWriteExecute, which crashes V8', () => {
    expect(directives.filter((l) => l.startsWith('MemoryDenyWriteExecute'))).toEqual([]);
  });

  it('quotes paths with spaces and escapes % so systemd reads them as one argument', () => {
    const odd = renderSystemdUnit({ node: '/opt/my node/bin/node', cli: '/opt/t%d/main.js', config: UNIT_CONFIG_PATH });
    expect(odd).toContain('ExecStart="/opt/my node/bin/node" /opt/t%%d/main.js start --config /etc/ticketd/config.json');
  });

  it('does not restart a configuration error (exit 78) every few seconds', () => {
    expect(directives).toContain('RestartPreventExitStatus=78');
  });

  it('starts with the config it is given, made absolute', () => {
    const given = installedPaths('etc/other.json');
    expect(given.config).toBe(join(process.cwd(), 'etc/other.json'));
    expect(renderSystemdUnit(given)).toContain(` start --config ${given.config}\n`);
    expect(hiddenFromService({ ...given, config: '/home/sam/ticketd.json' })).toContain('/home/sam/ticketd.json');
  });

  it('flags a node under a home folder, which ProtectHome hides', () => {
    expect(
      hiddenFromService({ node: '/root/.nvm/versions/node/v20/bin/node', cli: '/opt/ticketd/dist/src/cli/main.js', config: '' }),
    ).toEqual(['/root/.nvm/versions/node/v20/bin/node']);
    expect(hiddenFromService({ node: '/usr/bin/node', cli: '/usr/lib/ticketd/dist/src/cli/main.js', config: '' })).toEqual([]);
  });

  it.skipIf(!systemdAnalyze)('passes systemd-analyze verify without a warning', () => {
    const file = join(dir, 'ticketd.service');
    writeFileSync(file, unit);
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it.skipIf(!systemdAnalyze)('is checked for real by systemd-analyze: a broken unit fails it', () => {
    const file = join(dir, 'broken', 'ticketd.service');
    mkdirSync(join(dir, 'broken'));
    writeFileSync(file, unit.replace(`ExecStart=${process.execPath}`, 'ExecStart=/nonexistent/node'));
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('/nonexistent/node');
  });
});
