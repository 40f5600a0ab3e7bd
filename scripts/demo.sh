#!/bin/sh
# `npm run demo`: install, build, run the demo. Each step says what it is doing first, since the
# first install and build take minutes on a small machine and would otherwise look hung.
# Arguments go to `ticketd demo` (e.g. `npm run demo -- --http-port 8081`).
set -eu

cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step '1/3 npm packages: installing what package-lock.json lists (the first time takes a minute or two; better-sqlite3 may compile its native part)'
npm install --no-audit --no-fund

# A second demo starts at once: the build runs only when a source is newer than what was built.
if [ -f dist/src/cli/main.js ] && [ -z "$(find src tsconfig.json package.json -newer dist/src/cli/main.js -print -quit)" ]; then
  step '2/3 TypeScript: dist/ is up to date'
else
  step '2/3 TypeScript: compiling src/ into dist/ (about a minute)'
  npm run --silent build
fi

step '3/3 starting ticketd on embedded defaults (SQLite, LMTP in, .eml files out)'
exec node dist/src/cli/main.js demo "$@"
