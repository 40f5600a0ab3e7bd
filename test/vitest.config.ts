import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts'],
    // Integration tests start real Dovecot, SMTP and Chromium processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more parallel files only make the real servers compete.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
