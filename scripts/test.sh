#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests drive
# (scripts/install-deps.sh: the real ostree CLI, gpg, mmdebstrap, bubblewrap,
# nginx, qemu, OVMF, GRUB, docker-registry, skopeo, podman, umoci, …), then
# runs format, lint and all tests, VM
# boots included (tests/boot.rs). Compose, layering
# and boot tests download real Debian packages and keep expensive fixtures
# (composed bases, the stock VM image) in /var/cache/oxtree-tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase's wall time, for the closing note and for keeping CI short.
start=$SECONDS
phase() { echo "=== [$((SECONDS - start)) s] $*"; }

# CI builds from a clean clone each time: keep cargo's build outside the
# clone, as CI caches usually do, so unchanged dependencies are not
# compiled again (workspace crates are always rebuilt: their fingerprints
# include the clone's path). Emptied when it outgrows 20 GiB.
if [ "${CI:-}" = true ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=/var/cache/oxtree-ci/target CARGO_INCREMENTAL=0
  mkdir -p "$CARGO_TARGET_DIR"
  if [ "$(du -s --block-size=1G "$CARGO_TARGET_DIR" | cut -f1)" -gt 20 ]; then
    rm -rf "$CARGO_TARGET_DIR" && mkdir -p "$CARGO_TARGET_DIR"
  fi
fi

phase "install dependencies"
scripts/install-deps.sh

phase "fmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
phase "build tests"
cargo test --workspace --all-targets --no-run
phase "tests"
log=$(mktemp)
bootlog=$(mktemp)
trap 'rm -f "$log" "$bootlog"' EXIT
set +e
if [ $# -eq 0 ]; then
  # The VM life-cycle test (tests/boot.rs) is one long run of mostly
  # emulated CPU and waits on the guest; it runs beside the rest of the
  # suite instead of after it, which shortens the whole run by most of the
  # shorter part (everything is built above).
  cargo test --test boot --no-fail-fast >"$bootlog" 2>&1 &
  boot_pid=$!
  cargo test --workspace --all-targets --no-fail-fast -- --skip host_lifecycle 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  # ostree's own test suite, with the built oxtree as `ostree` (issue #12),
  # while the VM test goes on.
  phase "ostree's own suite"
  tests/ostree-suite.sh || status=1
  phase "waiting for tests/boot.rs"
  wait "$boot_pid"
  boot_status=$?
  echo "=== tests/boot.rs (ran beside the rest) ==="
  cat "$bootlog"
  cat "$bootlog" >>"$log"
  [ "$boot_status" -eq 0 ] || status=$boot_status
else
  cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
fi
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
phase "done"
exit "$status"
