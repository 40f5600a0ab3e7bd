// Headless Chromium for the browser tests: Debian's own build, a profile in
// the test's temporary folder, and nothing that talks to the network on its own.

import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Where the browser tests save the screenshots a person looks at. */
export const SCREENSHOTS = resolve(import.meta.dirname, '..', '..', 'test-output', 'screenshots');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** A browser with its profile in `profileDir`; the screenshot folder exists once it resolves. */
export function launchChromium(profileDir: string): Promise<BrowserContext> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}
