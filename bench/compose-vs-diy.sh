#!/usr/bin/env bash
# Benchmark of `oxtree compose tree` against doing it by hand: mmdebstrap
# then `ostree commit` of the same package set.
#
#   bench/compose-vs-diy.sh [--runs N] [--no-build]
#
# Both sides use the same minimal package set (minbase + less, bookworm, the
# host's apt sources) and the same warm .deb cache ($OXTREE_BENCH_CACHE/apt,
# bind-mounted over the root's apt archive in a private mount namespace, as
# compose does). One untimed warm-up run of each fills the cache. Then, N
# times, interleaved, each into a FRESH bare repository (init untimed):
#   oxtree   oxtree --repo=R compose tree --cachedir=CACHE min.toml
#            (mmdebstrap, oxtree binary installed, deployable layout,
#            package list, commit)
#   diy      SOURCE_DATE_EPOCH=... unshare -m mmdebstrap --variant=minbase
#              --include=less ... DIR; rm -rf DIR/dev/*;
#            ostree --repo=R commit -b diy --tree=dir=DIR
#            (no layout conversion, no package metadata: a lower bound)
# The table shows the median wall time of each and the ratio oxtree/diy
# (< 1: compose is faster). mmdebstrap dominates both; the ratio says what
# compose's extra steps cost.
#
# Environment: OSTREE (default /usr/bin/ostree), OXTREE (default
# target/release/oxtree), OXTREE_BENCH_CACHE (default /var/cache/oxtree-bench),
# OXTREE_COMPOSE_SCRATCH (default /var/tmp/oxtree-compose-bench).
set -euo pipefail

RUNS=3
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        *) echo "usage: $0 [--runs N] [--no-build]" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
OSTREE=${OSTREE:-/usr/bin/ostree}
OXTREE=${OXTREE:-$PWD/target/release/oxtree}
CACHE=${OXTREE_BENCH_CACHE:-/var/cache/oxtree-bench}/apt
SCRATCH=${OXTREE_COMPOSE_SCRATCH:-/var/tmp/oxtree-compose-bench}
EPOCH=1700000000

for t in mmdebstrap unshare "$OSTREE"; do
    command -v "$t" >/dev/null || { echo "$t is required" >&2; exit 1; }
done
if [ "$BUILD" = 1 ]; then
    cargo build --release --quiet
fi
mkdir -p "$CACHE"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
trap 'rm -rf "$SCRATCH"' EXIT

cat > "$SCRATCH/min.toml" <<TOML
ref = "bench/min"
suite = "bookworm"
packages = ["less"]
TOML

SOURCES=()
[ -s /etc/apt/sources.list ] && SOURCES+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] && SOURCES+=("$f")
done

now() { date +%s.%N; }

run_oxtree() {
    local repo="$SCRATCH/ox-repo"
    rm -rf "$repo"
    "$OXTREE" --repo="$repo" init --mode=bare
    local t0; t0=$(now)
    SOURCE_DATE_EPOCH=$EPOCH "$OXTREE" --repo="$repo" compose tree \
        --cachedir="$CACHE" --workdir="$SCRATCH" "$SCRATCH/min.toml" >/dev/null 2>"$SCRATCH/ox.log" \
        || { cat "$SCRATCH/ox.log" >&2; exit 1; }
    echo "$(now) - $t0" | bc
}

run_diy() {
    local repo="$SCRATCH/diy-repo" dir="$SCRATCH/diy-root"
    rm -rf "$repo" "$dir"
    "$OSTREE" --repo="$repo" init --mode=bare
    local t0; t0=$(now)
    SOURCE_DATE_EPOCH=$EPOCH unshare --mount --propagation private -- \
        mmdebstrap --quiet --mode=root --variant=minbase --format=directory --include=less \
        --skip=essential/unlink \
        --setup-hook="mkdir -p \"\$1\"/var/cache/apt/archives && mount --bind '$CACHE' \"\$1\"/var/cache/apt/archives" \
        --customize-hook='umount "$1"/var/cache/apt/archives' \
        bookworm "$dir" "${SOURCES[@]}" >/dev/null 2>"$SCRATCH/diy.log" \
        || { cat "$SCRATCH/diy.log" >&2; exit 1; }
    rm -rf "${dir:?}"/dev/*
    "$OSTREE" --repo="$repo" commit -b diy --tree=dir="$dir" >/dev/null
    local t1; t1=$(now)
    rm -rf "$dir"
    echo "$t1 - $t0" | bc
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "warm-up (untimed)..." >&2
run_oxtree >/dev/null
run_diy >/dev/null

OX=(); DIY=()
for i in $(seq "$RUNS"); do
    OX+=("$(run_oxtree)")
    DIY+=("$(run_diy)")
    echo "run $i: oxtree ${OX[-1]}s, diy ${DIY[-1]}s" >&2
done
mo=$(median "${OX[@]}"); md=$(median "${DIY[@]}")
printf '\n| minbase + less (bookworm), warm cache | median (s) |\n|---|---|\n'
printf '| oxtree compose tree | %.1f |\n' "$mo"
printf '| mmdebstrap + ostree commit | %.1f |\n' "$md"
printf '| ratio oxtree/diy | %.2f |\n' "$(echo "$mo / $md" | bc -l)"
