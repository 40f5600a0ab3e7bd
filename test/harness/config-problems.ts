// What the config loader says is wrong with a config a test means to be
// rejected.

import { ConfigError, parseConfig } from '../../src/config/load-config.js';

/**
 * The problems `parseConfig` lists for `json`. A config it accepts, or an
 * error other than a ConfigError, fails the calling test with that error.
 */
export function configProblems(json: unknown, baseDir = '/etc/ticketd'): string[] {
  try {
    parseConfig(json, baseDir);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}
