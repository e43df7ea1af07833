#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60), one job, one after the
# other, and print a summary line per target.
#
#   fuzz/run-all.sh [SECONDS]
#
# Works on the stable toolchain: cargo-fuzz needs nightly-only flags
# (-Zsanitizer=address, -Cpasses=sancov-module), which stable rustc accepts
# with RUSTC_BOOTSTRAP=1. Builds with ASan, debug assertions and overflow
# checks (-a), so arithmetic overflow and debug_assert! in dependencies count
# as crashes too. Installs cargo-fuzz if missing; seeds fuzz/corpus/ with
# seed.sh (needs the ostree CLI) if it does not exist yet.
#
# Crash inputs land in fuzz/artifacts/<target>/, logs in
# fuzz/artifacts/run-all/<target>.log. Exit status: number of failed targets.
set -uo pipefail

secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run-all: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz || exit 100
fi
if [ ! -d "$here/corpus" ]; then
    "$here/seed.sh" || exit 100
fi

cd "$root"
fuzz=(cargo fuzz)
build_opts=(--fuzz-dir "$here" -a)
# Results only mean something for the sources that were built: note them, so
# an edit made while the targets run (others work in this tree) is flagged.
src_sum() { cat crates/oxtree-object/src/*.rs | sha256sum | cut -c1-16; }
built=$(src_sum)
host=$(rustc -vV | sed -n 's/^host: //p')
"${fuzz[@]}" build "${build_opts[@]}" || exit 100
echo "run-all: oxtree-object sources $built, git $(git rev-parse --short HEAD 2>/dev/null)," \
    "${secs}s per target, $(rustc --version)"

logs="$here/artifacts/run-all"
mkdir -p "$logs"
failed=0
printf '%-15s %12s %8s %8s %8s  %s\n' target execs exec/s new_units rss_mb result
for t in $("${fuzz[@]}" list --fuzz-dir "$here"); do
    mkdir -p "$here/corpus/$t"
    log="$logs/$t.log"
    start=$(date +%s)
    # -malloc_limit_mb: any single allocation above 256 MiB is reported as a
    # crash (unbounded allocation driven by the input).
    # The binaries built above are run directly (what `cargo fuzz run` does
    # after its build step), so every target tests the same sources.
    mkdir -p "$here/artifacts/$t"
    "$here/target/$host/release/$t" -artifact_prefix="$here/artifacts/$t/" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
        -malloc_limit_mb=256 -print_final_stats=1 "$here/corpus/$t" >"$log" 2>&1
    rc=$?
    elapsed=$(($(date +%s) - start))
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
    execs=$(stat number_of_executed_units)
    rate=$(stat average_exec_per_sec)
    new=$(stat new_units_added)
    rss=$(stat peak_rss_mb)
    if [ "$rc" -eq 0 ]; then
        result="ok (${elapsed}s)"
    else
        failed=$((failed + 1))
        art=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n1)
        result="FAILED rc=$rc ${art:-see $log}"
    fi
    printf '%-15s %12s %8s %8s %8s  %s\n' "$t" "${execs:--}" "${rate:--}" "${new:--}" \
        "${rss:--}" "$result"
done
if [ "$(src_sum)" != "$built" ]; then
    echo "run-all: WARNING: crates/oxtree-object/src changed during the run;" \
        "results may not match the current sources" >&2
fi
exit "$failed"
