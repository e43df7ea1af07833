#!/usr/bin/env bash
# Side-by-side benchmark: oxtree vs the system ostree on the same input trees.
#
#   bench/vs-ostree.sh [--runs N] [--tree gen|rootfs|both]
#                      [--modes "archive bare-user bare"] [--fsync-pass]
#                      [--no-build] [--no-cross-check] [--timeout SECS]
#                      [--markdown]
#
# For every tree x repo mode, N interleaved runs (ostree then oxtree, each on
# its own fresh repo) of:
#   commit    TOOL --repo=R init --mode=M   (untimed)
#             TOOL --repo=R commit -b bench --timestamp=2020-01-01 --tree=dir=TREE
#   checkout  TOOL --repo=R checkout [-U for bare-user] bench DEST
#   fsck      TOOL --repo=R fsck
# and, with --fsync-pass, an extra `commit --fsync=false` for both tools.
# Wall time, peak RSS and CPU come from `/usr/bin/time -f '%e %M %U %S'`; the table shows
# median wall seconds, the oxtree/ostree ratio of the medians (< 1 means
# oxtree is faster), the largest peak RSS seen over the runs and the median
# CPU seconds (user+sys; less sensitive to other load than wall time).
#
# Fairness: the tree is read once before measuring (warm page cache for both
# tools); `sync` runs (untimed) before every measured command so no tool pays
# for the previous one's dirty pages (ostree's commit ends with syncfs(), which
# would otherwise flush them); both tools use their default fsync behaviour;
# used repos/checkouts are deleted between tree x mode blocks, not between
# measurements (see to_trash). oxtree results are checked: a commit must print
# a checksum equal to ostree's (else a WARNING), a checkout must create DEST,
# and on run 1 the real `ostree fsck` must accept oxtree's repository.
#
# Environment overrides: OSTREE (default /usr/bin/ostree), OXTREE (default
# target/release/oxtree), OXTREE_BENCH_SCRATCH (default /var/tmp/oxtree-bench),
# OXTREE_BENCH_CACHE (default /var/cache/oxtree-bench, see make-rootfs.sh),
# OXTREE_BENCH_DEBUG=1 (timestamped xtrace). Details: docs/PERFORMANCE.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OSTREE=${OSTREE:-/usr/bin/ostree}
OXTREE=${OXTREE:-$ROOT/target/release/oxtree}
SCRATCH=${OXTREE_BENCH_SCRATCH:-/var/tmp/oxtree-bench}
CACHE=${OXTREE_BENCH_CACHE:-/var/cache/oxtree-bench}
export OXTREE_BENCH_CACHE=$CACHE
TIME=/usr/bin/time

runs=3
trees=both
modes="archive bare-user bare"
fsync_pass=0
build=1
cross_check=1
timeout_s=600
markdown=0

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
  exit "${1:-0}"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --runs=*) runs=${1#*=}; shift ;;
    --tree) trees=$2; shift 2 ;;
    --tree=*) trees=${1#*=}; shift ;;
    --modes) modes=$2; shift 2 ;;
    --modes=*) modes=${1#*=}; shift ;;
    --fsync-pass) fsync_pass=1; shift ;;
    --no-build) build=0; shift ;;
    --no-cross-check) cross_check=0; shift ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --timeout=*) timeout_s=${1#*=}; shift ;;
    --markdown) markdown=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 >&2 ;;
  esac
done

[[ $runs =~ ^[0-9]+$ && $runs -ge 1 ]] || { echo "--runs must be a positive integer" >&2; exit 2; }
case $trees in
  gen) tree_list=(gen) ;;
  rootfs) tree_list=(rootfs) ;;
  both) tree_list=(gen rootfs) ;;
  *) echo "--tree must be gen, rootfs or both" >&2; exit 2 ;;
esac
read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  case $m in
    archive|archive-z2|bare|bare-user|bare-user-only|bare-split-xattrs) ;;
    *) echo "unknown repo mode: $m" >&2; exit 2 ;;
  esac
done

if [[ -n ${OXTREE_BENCH_DEBUG:-} ]]; then
  PS4='+ ${EPOCHREALTIME} '
  set -x
fi

log() { printf '[vs-ostree %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ---------------------------------------------------------------- prerequisites
if [[ ! -x $TIME ]]; then
  log "installing GNU time"
  apt-get install -y time >&2
fi
[[ -x $OSTREE ]] || { echo "ostree not found at $OSTREE" >&2; exit 1; }

oxtree_ok=1
if [[ $build -eq 1 ]]; then
  log "cargo build --release in $ROOT"
  if ! (cd "$ROOT" && cargo build --release >"$SCRATCH.build.log" 2>&1); then
    log "WARNING: cargo build --release failed (see $SCRATCH.build.log); oxtree results will be FAILED"
    oxtree_ok=0
  fi
fi
if [[ ! -x $OXTREE ]]; then
  log "WARNING: $OXTREE missing; oxtree results will be FAILED"
  oxtree_ok=0
fi

for t in "${tree_list[@]}"; do
  "$HERE/make-rootfs.sh" "$t"
done

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/trash"
cleanup() { rm -rf "$SCRATCH"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

fstype=$(df --output=fstype "$SCRATCH" | tail -n1 | tr -d ' ')
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
  echo "scratch dir $SCRATCH is on $fstype; set OXTREE_BENCH_SCRATCH to a disk-backed path" >&2
  exit 1
fi

results=$SCRATCH/results.tsv    # tree mode op tool run status wall_s peak_rss_kib cpu_s(user+sys)
: >"$results"
declare -A ckwarn=() ckok=()

tree_path() {
  case $1 in
    gen) echo "$CACHE/gen" ;;
    rootfs) echo "$CACHE/rootfs-bookworm" ;;
  esac
}

# measure TREE MODE OP TOOLNAME RUN -- CMD...
# Runs CMD under /usr/bin/time (and a timeout), appends a result row.
# Stdout of CMD goes to $SCRATCH/out, stderr to $SCRATCH/err. Returns CMD's status.
measure() {
  local tree=$1 mode=$2 op=$3 tool=$4 run=$5; shift 6
  local tf=$SCRATCH/time rc=0 secs rss usr sys cpu
  sync
  "$TIME" -f '%e %M %U %S' -o "$tf" timeout -k 10 "$timeout_s" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" || rc=$?
  # On a non-zero exit GNU time prefixes "Command exited with non-zero status N".
  read -r secs rss usr sys < <(tail -n1 "$tf") || true
  if [[ -n ${sys:-} ]]; then cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }'); else secs=- rss=- cpu=-; fi
  if [[ $rc -ne 0 ]]; then
    log "$tool $op failed on $tree/$mode (exit $rc): $(tail -n3 "$SCRATCH/err" | tr '\n' ' ')"
    printf '%s\t%s\t%s\t%s\t%s\tFAIL\t%s\t%s\t%s\n' "$tree" "$mode" "$op" "$tool" "$run" "$secs" "$rss" "$cpu" >>"$results"
    return "$rc"
  fi
  printf '%s\t%s\t%s\t%s\t%s\tok\t%s\t%s\t%s\n' "$tree" "$mode" "$op" "$tool" "$run" "$secs" "$rss" "$cpu" >>"$results"
}

# Deleting a repo or checkout (tens of thousands of files; the disk is mounted
# with online discard) can take from 2 s to a minute depending on other I/O on
# the VM, and its journal/discard work would leak into the next measurement.
# So during a tree x mode block everything is renamed into $SCRATCH/trash
# (instant) and deleted in one go, followed by a sync, between blocks.
ntrash=0
to_trash() {
  local p
  for p in "$@"; do
    if [[ -e $p ]]; then
      ntrash=$((ntrash + 1))
      mv "$p" "$SCRATCH/trash/$ntrash"
    fi
  done
}
empty_trash() {
  local t0=$SECONDS
  rm -rf "$SCRATCH/trash"
  mkdir -p "$SCRATCH/trash"
  sync
  log "cleanup took $((SECONDS - t0))s"
}

record_fail() { # tree mode op tool run
  printf '%s\t%s\t%s\t%s\t%s\tFAIL\t-\t-\t-\n' "$@" >>"$results"
}

# The last stdout line of a commit must be a 64-hex checksum; oxtree being
# under construction, a silent exit 0 is not good enough.
commit_checksum() {
  local c
  c=$(tail -n1 "$SCRATCH/out" | tr -d '[:space:]')
  [[ $c =~ ^[0-9a-f]{64}$ ]] && echo "$c"
}

# One run of commit/checkout/fsck for one tool.
# Sets the global last_checksum and last_count (entries in the checkout).
one_tool() {
  local tree=$1 mode=$2 tool=$3 bin=$4 run=$5 src=$6
  local repo=$SCRATCH/$tool-repo dest=$SCRATCH/$tool-checkout ck
  local -a uflag=()
  [[ $mode == bare-user* ]] && uflag=(-U)
  last_checksum='' last_count=''
  to_trash "$repo" "$dest"

  local -a ops=(commit)
  [[ $fsync_pass -eq 1 ]] && ops+=("commit-nofsync")
  local op
  for op in "${ops[@]}"; do
    local -a extra=()
    [[ $op == commit-nofsync ]] && extra=(--fsync=false)
    to_trash "$repo"
    if ! "$bin" --repo="$repo" init --mode="$mode" >"$SCRATCH/out" 2>"$SCRATCH/err"; then
      log "$tool init --mode=$mode failed: $(tail -n3 "$SCRATCH/err" | tr '\n' ' ')"
      record_fail "$tree" "$mode" "$op" "$tool" "$run"
      ck=
    elif measure "$tree" "$mode" "$op" "$tool" "$run" -- \
        "$bin" --repo="$repo" commit "${extra[@]}" -b bench --timestamp=2020-01-01 --tree=dir="$src"; then
      if ! ck=$(commit_checksum); then
        log "$tool commit printed no checksum; counting as FAILED"
        sed -i '$ s/\tok\t/\tFAIL\t/' "$results"
        ck=
      fi
    else
      ck=
    fi
  done
  # The repo left over is the one from the last commit pass; checkout and fsck
  # run against it (default-fsync commit unless --fsync-pass).
  if [[ -z $ck ]]; then
    record_fail "$tree" "$mode" checkout "$tool" "$run"
    record_fail "$tree" "$mode" fsck "$tool" "$run"
    to_trash "$repo"
    return
  fi
  last_checksum=$ck

  if measure "$tree" "$mode" checkout "$tool" "$run" -- \
      "$bin" --repo="$repo" checkout "${uflag[@]}" bench "$dest"; then
    if [[ -d $dest ]]; then
      last_count=$(find "$dest" | wc -l)
    else
      log "$tool checkout exited 0 but $dest does not exist; counting as FAILED"
      sed -i '$ s/\tok\t/\tFAIL\t/' "$results"
    fi
  fi
  to_trash "$dest"

  measure "$tree" "$mode" fsck "$tool" "$run" -- "$bin" --repo="$repo" fsck || true

  # Compatibility cross-check (untimed, first run only): the real ostree must
  # accept oxtree's repository.
  if [[ $tool == oxtree && $cross_check -eq 1 && $run -eq 1 ]]; then
    if ! "$OSTREE" --repo="$repo" fsck >"$SCRATCH/out" 2>"$SCRATCH/err"; then
      log "WARNING: ostree fsck rejects oxtree's $mode repo ($tree): $(tail -n3 "$SCRATCH/err" | tr '\n' ' ')"
    fi
  fi
  to_trash "$repo"
}

# ---------------------------------------------------------------- main loop
start=$SECONDS
log "ostree: $("$OSTREE" --version | sed -n "s/ *Version: *'\(.*\)'/\1/p")  oxtree: $OXTREE  scratch: $SCRATCH ($fstype)"
log "oxtree source: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for tree in "${tree_list[@]}"; do
  src=$(tree_path "$tree")
  log "warming page cache for $src"
  tar -C "$src" -cf - . | cat >/dev/null
  for mode in "${mode_list[@]}"; do
    for ((run = 1; run <= runs; run++)); do
      log "$tree/$mode run $run/$runs: ostree"
      one_tool "$tree" "$mode" ostree "$OSTREE" "$run" "$src"
      ost_ck=$last_checksum ost_count=$last_count
      if [[ $oxtree_ok -eq 1 ]]; then
        log "$tree/$mode run $run/$runs: oxtree"
        one_tool "$tree" "$mode" oxtree "$OXTREE" "$run" "$src"
      else
        for op in commit checkout fsck; do record_fail "$tree" "$mode" "$op" oxtree "$run"; done
        last_checksum='' last_count=''
      fi
      key=$tree/$mode
      if [[ -n $last_checksum && -n $ost_ck && $last_checksum != "$ost_ck" && -z ${ckwarn[$key]:-} ]]; then
        log "WARNING: commit checksum differs on $key: ostree=$ost_ck oxtree=$last_checksum"
        ckwarn[$key]="ostree=$ost_ck oxtree=$last_checksum"
      elif [[ -n $last_checksum && $last_checksum == "$ost_ck" ]]; then
        ckok[$key]=$ost_ck
      fi
      if [[ -n $last_count && -n $ost_count && $last_count != "$ost_count" ]]; then
        log "WARNING: checkout of $key has $last_count entries with oxtree, $ost_count with ostree"
      fi
    done
    empty_trash
  done
done
elapsed=$((SECONDS - start))

# ---------------------------------------------------------------- report
report_ops="commit checkout fsck"
[[ $fsync_pass -eq 1 ]] && report_ops="commit commit-nofsync checkout fsck"
report() {
  awk -F'\t' -v trees="${tree_list[*]}" -v modes="${mode_list[*]}" -v ops="$report_ops" -v md="$markdown" '
    function median(list,   a, n, i, j, t) {
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
      k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
      if ($6 == "ok") { t[k] = t[k] " " $7; c[k] = c[k] " " $9; if ($8 + 0 > rss[k]) rss[k] = $8 + 0 }
      else fail[k] = 1
    }
    function row(a, b, c, d, e, f, g, h, i, j) {
      if (md) printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a, b, c, d, e, f, g, h, i, j
      else printf "%-7s %-10s %-15s %9s %9s %-24s %10s %10s %10s %10s\n", a, b, c, d, e, f, g, h, i, j
    }
    END {
      nt = split(trees, T, " "); nm = split(modes, M, " "); no = split(ops, O, " ")
      row("tree", "mode", "op", "ostree s", "oxtree s", "ratio oxtree/ostree", "ostree MiB", "oxtree MiB", "ostree cpu", "oxtree cpu")
      if (md) print "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
      for (i = 1; i <= nt; i++) for (j = 1; j <= nm; j++) for (l = 1; l <= no; l++) {
        ko = T[i] SUBSEP M[j] SUBSEP O[l] SUBSEP "ostree"; kx = T[i] SUBSEP M[j] SUBSEP O[l] SUBSEP "oxtree"
        os = "FAILED"; xs = "-"; om = "-"; xm = "-"; oc = "-"; xc = "-"; ratio = ""
        if (!(ko in fail) && t[ko] != "") { os = sprintf("%.2f", median(t[ko])); om = sprintf("%.1f", rss[ko] / 1024); oc = sprintf("%.2f", median(c[ko])) }
        if ((kx in fail) || t[kx] == "") ratio = "oxtree: " O[l] " FAILED"
        else {
          xs = sprintf("%.2f", median(t[kx])); xm = sprintf("%.1f", rss[kx] / 1024); xc = sprintf("%.2f", median(c[kx]))
          ratio = (os == "FAILED" || os + 0 == 0) ? "n/a" : sprintf("%.2f", xs / os)
        }
        row(T[i], M[j], O[l], os, xs, ratio, om, xm, oc, xc)
      }
    }' "$results"
}

echo
echo "oxtree vs ostree $("$OSTREE" --version | sed -n "s/ *Version: *'\(.*\)'/\1/p"): median of $runs interleaved runs; wall ${elapsed}s; load at end $(cut -d' ' -f1-3 /proc/loadavg)"
report
for key in "${!ckok[@]}"; do
  if [[ -z ${ckwarn[$key]:-} ]]; then echo "commit checksum identical on $key: ${ckok[$key]}"; fi
done | sort
for key in "${!ckwarn[@]}"; do
  echo "WARNING: commit checksum differs on $key: ${ckwarn[$key]}"
done
# Keep the raw per-run numbers next to (not inside) the scratch dir.
cp "$results" "$SCRATCH.last-results.tsv"
log "raw per-run results: $SCRATCH.last-results.tsv"
