#!/usr/bin/env bash
# ostree's own test suite against oxtree (issue #12). Runs every shell test
# that Debian's `ostree-tests` installs under $SUITE with oxtree as `ostree`
# (a symlink in a PATH directory: no argument rewriting, no wrapper), and
# compares per test with the real ostree on this machine. The tests find
# `ostree` through PATH and use the installed helpers next to them
# (libtest.sh, ostree-trivial-httpd), exactly as under ginstest-runner.
#
# Each test runs in its own empty directory on its own loop-mounted ext4
# image, inside fresh mount and pid namespaces (unshare): ostree's admin code
# may freeze the filesystem of a sysroot's /boot, and daemons a test leaves
# behind (trivial-httpd --daemonize) die with its pid namespace.
#
# The real ostree's results are cached per ostree version in
# $CACHE/ostree-suite-baseline-<version>.txt and computed when absent.
# Exits non-zero when fewer than $MIN_PASS of the tests the real ostree
# passes also pass with oxtree.
#
# Usage: tests/ostree-suite.sh [TEST...]   (default: all test-*.sh)
# Env: OXTREE_BIN (default target/debug/oxtree), OSTREE_SUITE_JOBS (2),
#      OSTREE_SUITE_TIMEOUT (seconds per test, 240: a hang guard; test-delta
#      bsdiffs the debug binary, which takes over a minute while a VM boots
#      beside it), OSTREE_SUITE_MIN_PASS,
#      OSTREE_SUITE_KEEP=1 keeps the per-test logs directory.
set -euo pipefail

SUITE=/usr/libexec/installed-tests/libostree
CACHE=/var/cache/oxtree-tests
# 88 pass as measured; the threshold is issue #12's target (85 of the
# tests ostree passes), which leaves room for a test that is slow under
# load (beside the VM test) while a real regression still fails.
MIN_PASS=${OSTREE_SUITE_MIN_PASS:-85}
JOBS=${OSTREE_SUITE_JOBS:-2}
TIMEOUT=${OSTREE_SUITE_TIMEOUT:-240}

# One test: --one BINDIR TEST RESULTDIR. BINDIR empty means the real ostree.
if [ "${1:-}" = --one ]; then
  bindir=$2 test=$3 out=$4
  work=$(mktemp -d /var/tmp/ostree-suite.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  truncate -s 2G "$work/fs.img"
  mkfs.ext4 -q -F "$work/fs.img"
  mkdir "$work/mnt"
  start=$(date +%s)
  rc=0
  unshare --mount --pid --fork --mount-proc --propagation private \
    env SUITE="$SUITE" TEST="$test" WORK="$work" BINDIR="$bindir" TIMEOUT="$TIMEOUT" \
    bash -c '
      mount -o loop "$WORK/fs.img" "$WORK/mnt"
      mkdir "$WORK/mnt/tmp"
      cd "$WORK/mnt/tmp"
      [ -z "$BINDIR" ] || export PATH="$BINDIR:$PATH"
      export G_TEST_SRCDIR=$SUITE G_TEST_BUILDDIR=$SUITE
      timeout -k 5 "$TIMEOUT" "$SUITE/$TEST" </dev/null
    ' >"$out/$test.log" 2>&1 || rc=$?
  secs=$(($(date +%s) - start))
  if [ "$rc" = 0 ] && grep -Eq '^1\.\.0 *# *SKIP' "$out/$test.log"; then
    res=skip
  elif [ "$rc" = 0 ]; then
    res=pass
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    res=timeout
  else
    res=fail
  fi
  echo "$test $res $secs" >"$out/$test.result"
  exit 0
fi

cd "$(dirname "$0")/.."
self=$PWD/tests/ostree-suite.sh
scripts/install-deps.sh
[ -d "$SUITE" ] || { echo "ostree-suite: $SUITE missing (ostree-tests)" >&2; exit 1; }

bin=${OXTREE_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/oxtree}
[ -x "$bin" ] || cargo build --quiet --bin oxtree
bin=$(realpath "$bin")

if [ $# -gt 0 ]; then
  tests=("$@")
else
  mapfile -t tests < <(cd "$SUITE" && ls test-*.sh)
fi

# run_suite BINDIR OUTDIR: every test, $JOBS at a time.
run_suite() {
  mkdir -p "$2"
  printf '%s\n' "${tests[@]}" | xargs -P "$JOBS" -I{} "$self" --one "$1" {} "$2"
}

version=$(ostree --version | awk -F"'" '/Version:/ {print $2}')
baseline=$CACHE/ostree-suite-baseline-$version.txt
if [ ! -s "$baseline" ]; then
  echo "ostree-suite: computing the real ostree $version baseline (cached in $baseline)"
  mkdir -p "$CACHE"
  bdir=$(mktemp -d)
  save=("${tests[@]}")
  mapfile -t tests < <(cd "$SUITE" && ls test-*.sh)
  run_suite "" "$bdir"
  tests=("${save[@]}")
  cat "$bdir"/*.result >"$baseline.tmp"
  mv "$baseline.tmp" "$baseline"
  rm -rf "$bdir"
fi

logs=$(mktemp -d /var/tmp/ostree-suite-logs.XXXXXX)
[ "${OSTREE_SUITE_KEEP:-}" = 1 ] || trap 'rm -rf "$logs"' EXIT
bindir=$logs/bin
mkdir -p "$bindir"
# oxtree itself, without its debug sections (as Debian ships ostree):
# test-delta and test-delta-sign copy `$(which ostree)` into the trees they
# diff, and the 80 MB debug build would push old+new past bsdiff's 128 MB
# limit (ostree's own rule), where a shipped binary stays under it. The
# code is the same; only DWARF is left out.
objcopy --strip-debug "$bin" "$bindir/ostree"
start=$(date +%s)
run_suite "$bindir" "$logs"
elapsed=$(($(date +%s) - start))

printf '%-48s %-8s %-8s %s\n' TEST OSTREE OXTREE SECS
both=0 ref_pass=0 ox_pass=0 regress=()
for t in "${tests[@]}"; do
  read -r _ ox secs <"$logs/$t.result"
  ref=$(awk -v t="$t" '$1 == t {print $2}' "$baseline")
  printf '%-48s %-8s %-8s %s\n' "$t" "${ref:--}" "$ox" "$secs"
  [ "$ox" = pass ] && ox_pass=$((ox_pass + 1))
  if [ "$ref" = pass ]; then
    ref_pass=$((ref_pass + 1))
    if [ "$ox" = pass ]; then both=$((both + 1)); else regress+=("$t"); fi
  fi
done
echo "ostree-suite: oxtree passes $both of the $ref_pass tests ostree $version passes" \
  "($ox_pass passes in all, ${#tests[@]} tests, ${elapsed}s, $JOBS jobs)"
if [ "${OSTREE_SUITE_KEEP:-}" = 1 ]; then echo "ostree-suite: logs in $logs"; fi
if [ "$both" -lt "$MIN_PASS" ] && [ $# -eq 0 ]; then
  echo "ostree-suite: FAIL: fewer than $MIN_PASS passes" >&2
  exit 1
fi
