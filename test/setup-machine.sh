#!/usr/bin/env bash
# Prepares a Debian machine for the whole test suite: the real Dovecot, Cyrus and Chromium the
# integration tests run against, and node_modules. Idempotent; a no-op run takes well under a second.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# fonts-noto-color-emoji: customers write emoji; without the font the screenshots show empty boxes.
# cyrus-common (master, ctl_cyrusdb) and sasl2-bin (saslpasswd2) coexist with Dovecot; the
# cyrus-imapd package itself conflicts with dovecot-imapd and is unpacked instead (install_cyrus_imapd).
# postgresql: test/harness/postgres.ts runs its initdb and postgres on a private cluster per test file.
readonly PACKAGES=(dovecot-imapd chromium systemd fonts-noto-color-emoji cyrus-common sasl2-bin postgresql)

# Where the imapd and idled binaries of cyrus-imapd are unpacked; test/harness/cyrus.ts runs them from here.
readonly CYRUS_IMAPD_ROOT=${TICKETD_CYRUS_IMAPD_ROOT:-/var/cache/ticketd-test/cyrus-imapd}

log() { printf 'setup-machine: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

is_root() { [[ $(id -u) -eq 0 ]]; }

package_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    package_installed "$pkg" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0

  is_root || die "missing Debian package(s): ${missing[*]}; run as root or install them with: apt-get install ${missing[*]}"
  log "installing ${missing[*]} (without Recommends)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # A package that conflicts with one already here would be removed by apt; we never remove
  # anything, so a simulated run decides first and names the conflict instead.
  local removals
  removals=$(apt-get install -s -y -q --no-install-recommends "${missing[@]}" | awk '/^Remv /{print $2}')
  [[ -z $removals ]] || die "installing ${missing[*]} would remove: ${removals//$'\n'/ }; install them by hand after resolving that conflict"
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# cyrus-imapd declares a conflict with every other IMAP server, so apt would remove Dovecot to
# install it. Its binaries are fetched with `apt-get download` and unpacked with `dpkg -x`: they
# only need cyrus-common's libraries, which are installed. The stamp names the version unpacked,
# so an upgraded cyrus-common (their versions must match) brings a fresh copy.
install_cyrus_imapd() {
  local version stamp=$CYRUS_IMAPD_ROOT/.version
  version=$(dpkg-query -W -f='${Version}' cyrus-common)
  if [[ -x $CYRUS_IMAPD_ROOT/usr/lib/cyrus/bin/imapd && -f $stamp && $(cat "$stamp") == "$version" ]]; then
    return 0
  fi
  is_root || die "Cyrus imapd is not unpacked under $CYRUS_IMAPD_ROOT; run this script as root once"
  log "unpacking cyrus-imapd $version into $CYRUS_IMAPD_ROOT (not installed: it conflicts with dovecot-imapd)"
  local tmp
  tmp=$(mktemp -d)
  # _apt cannot write into a private mktemp folder; it downloads as root then, which is fine here
  (cd "$tmp" && apt-get download -q "cyrus-imapd=$version" >/dev/null 2>&1) ||
    { apt-get update -q && (cd "$tmp" && apt-get download -q "cyrus-imapd=$version"); } ||
    { rm -rf "$tmp"; die "cannot download cyrus-imapd $version to match cyrus-common"; }
  rm -rf "$CYRUS_IMAPD_ROOT.new"
  mkdir -p "$CYRUS_IMAPD_ROOT.new"
  dpkg -x "$tmp"/cyrus-imapd_*.deb "$CYRUS_IMAPD_ROOT.new"
  rm -rf "$tmp"
  printf '%s\n' "$version" >"$CYRUS_IMAPD_ROOT.new/.version"
  # swapped in whole, so an interrupted run never leaves half a tree behind the stamp
  rm -rf "$CYRUS_IMAPD_ROOT"
  mv "$CYRUS_IMAPD_ROOT.new" "$CYRUS_IMAPD_ROOT"
}

# Tests start private Dovecot instances on their own ports and base dirs; the system-wide
# one the package may have started is not used and is kept off so nothing depends on it.
stop_system_dovecot() {
  is_root || return 0
  local pidfile=/run/dovecot/master.pid
  if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log 'stopping the system-wide dovecot'
    service dovecot stop >/dev/null 2>&1 || true
    if kill -0 "$(cat "$pidfile" 2>/dev/null || echo 0)" 2>/dev/null; then
      /usr/sbin/dovecot stop >/dev/null 2>&1 || true
    fi
  fi
  if [[ -d /run/systemd/system ]] && systemctl -q is-enabled dovecot.service 2>/dev/null; then
    systemctl -q disable dovecot.service dovecot.socket 2>/dev/null || true
  fi
}

check_tools() {
  local path user
  for path in /usr/sbin/dovecot /usr/bin/doveadm /usr/bin/chromium /usr/lib/cyrus/bin/master /usr/sbin/saslpasswd2 \
    "$CYRUS_IMAPD_ROOT/usr/lib/cyrus/bin/imapd" "$CYRUS_IMAPD_ROOT/usr/lib/cyrus/bin/idled"; do
    [[ -x $path ]] || die "$path is missing after installing ${PACKAGES[*]}"
  done
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || die "no /usr/lib/postgresql/*/bin/initdb after installing ${PACKAGES[*]}"
  # Dovecot refuses to run its login and internal processes as root; PostgreSQL refuses root altogether
  for user in dovenull dovecot mail cyrus postgres; do
    id "$user" >/dev/null 2>&1 || die "system user '$user' is missing (normally created by the dovecot-core and cyrus-common packages)"
  done
}

readonly DEPS_STAMP=node_modules/.setup-machine-stamp

# Content check behind the mtime fast path: editing package.json's scripts must not cost
# a reinstall, a changed dependency range or lockfile entry must.
installed_deps_match() {
  [[ -f package-lock.json && -f node_modules/.package-lock.json ]] || return 1
  node -e '
    const fs = require("node:fs");
    const wanted = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages ?? {};
    const have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages ?? {};
    const stale = Object.entries(wanted).filter(([name, entry]) =>
      name !== "" && !entry.optional && !entry.link && have[name]?.version !== entry.version);
    process.exit(stale.length === 0 ? 0 : 1);
  ' || return 1
  npm ls --depth=0 >/dev/null 2>&1
}

install_node_modules() {
  if [[ -d node_modules && -f $DEPS_STAMP && ! package.json -nt $DEPS_STAMP ]] &&
    { [[ ! -f package-lock.json ]] || [[ ! package-lock.json -nt $DEPS_STAMP ]]; }; then
    return 0
  fi
  if [[ -d node_modules ]] && installed_deps_match; then
    touch "$DEPS_STAMP"
    return 0
  fi
  if [[ -f package-lock.json ]]; then
    log 'running npm ci'
    npm ci --no-audit --no-fund
  else
    log 'running npm install'
    npm install --no-audit --no-fund
  fi
  touch "$DEPS_STAMP"
}

# --node-only: node_modules alone, so CI can lint and run the unit tests before the slower
# machine setup; the full run afterwards finds them installed and goes on to the rest.
if [[ ${1:-} == --node-only ]]; then
  install_node_modules
  exit 0
fi

install_packages
install_cyrus_imapd
stop_system_dovecot
check_tools
install_node_modules
