import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The suites `npm test` also runs with the installation storing in a private
 * PostgreSQL (TICKETD_TEST_DATABASE, test/harness/ticketd-env.ts): the mail
 * path, the outbox, SLA notices and the status page, so the rules both
 * engines share are proved on both. The store's contract, lease and lock
 * tests pick their engines themselves.
 */
const ON_POSTGRES = [
  'test/integration/mail-path.test.ts',
  'test/integration/outbox.test.ts',
  'test/integration/sla-notices.test.ts',
  'test/integration/status-page-http.test.ts',
];

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    // Integration tests start real Dovecot, SMTP and Chromium processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more parallel files only make the real servers compete.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'sqlite', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'postgres', include: ON_POSTGRES, env: { TICKETD_TEST_DATABASE: 'postgres' } },
      },
    ],
  },
});
