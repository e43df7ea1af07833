#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests drive
# (scripts/install-deps.sh: the real ostree CLI, gpg, mmdebstrap, bubblewrap,
# nginx, qemu, OVMF, GRUB, …), then runs format, lint and all tests, VM
# boots included (tests/boot.rs, tests/vm_harness.rs). Compose, layering
# and boot tests download real Debian packages and keep expensive fixtures
# (composed bases, the stock VM image) in /var/cache/oxtree-tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
# ostree's own test suite, with the built oxtree as `ostree` (issue #12).
tests/ostree-suite.sh || status=1
exit "$status"
