#!/usr/bin/env bash
# Side-by-side benchmark of `admin deploy`: oxtree vs the system ostree, on a
# real Debian OS tree.
#
#   bench/deploy-vs-ostree.sh [--runs N] [--no-build] [--markdown] [--oxtree-freeze]
#
# Input: $OXTREE_BENCH_CACHE/rootfs-bookworm (bench/make-rootfs.sh rootfs),
# made deployable ONCE into $OXTREE_BENCH_CACHE/deployable: a `cp -a` copy
# with etc moved to usr/etc and boot/vmlinuz-KVER, boot/initrd.img-KVER
# copied to usr/lib/modules/KVER/{vmlinuz,initramfs.img} (the layout ostree
# 2022.7 needs). A DIR.complete stamp next to it marks it reusable.
#
# Every run, for ostree then oxtree (interleaved), each on its OWN FRESH
# sysroot: a sparse ext4 image under the scratch dir, loop-mounted inside one
# private mount namespace (`unshare -m --propagation private`, so no mount
# leaks and the machine's / and /boot are never the deploy target; ostree
# freezes the filesystem holding SYSROOT/boot, which is the loop fs here):
#   untimed  TOOL admin init-fs S; TOOL admin os-init --sysroot=S debian
#   untimed  TOOL --repo=S/ostree/repo commit -b bench --timestamp=2020-01-01
#                 --tree=dir=DEPLOYABLE          (bare repo made by init-fs)
#   deploy1  TOOL admin deploy --sysroot=S --os=debian bench
#            (hardlink checkout, /etc from usr/etc, kernel+initramfs copied to
#            S/boot/ostree, BLS entries, cleanup/prune)
#   deploy2  the same command again: a redeploy of the same commit with a
#            3-way /etc merge from deployment 1, after an untimed local change
#            to its /etc (hostname edited, one file added); the kernel is
#            already in /boot
# `sync` runs (untimed) before each timed command. Wall time, peak RSS and
# CPU (user+sys) come from `/usr/bin/time -f '%e %M %U %S'`; the table shows
# medians over the runs, the ratio oxtree/ostree of the medians (< 1: oxtree
# is faster) and the largest peak RSS seen.
#
# Correctness (untimed, after both deploys): `ostree admin status` must read
# oxtree's sysroot (and `oxtree admin status` ostree's), every BLS entry must
# name an existing kernel, initramfs and deployment, and in the first run the
# two tools' deployments (file listing with modes/owners/sizes/link counts
# excluded), /etc and boot entries are compared.
#
# Note: ostree's deploy ends with syncfs() and FIFREEZE/FITHAW of the /boot
# filesystem; oxtree fsyncs/syncfs()es what it wrote but does not freeze.
# With --oxtree-freeze, oxtree's repos get `[sysroot] oxtree-freeze-boot=true`
# (set untimed with `ostree config`), so oxtree freezes/thaws /boot as well.
# No process is ever killed by this script (a frozen fs must be thawed by
# the ostree that froze it); there is no per-command timeout.
#
# Environment overrides: OSTREE (default /usr/bin/ostree), OXTREE (default
# target/release/oxtree), OXTREE_BENCH_CACHE (default /var/cache/oxtree-bench),
# OXTREE_DEPLOY_SCRATCH (default /var/tmp/oxtree-deploy-bench),
# OXTREE_DEPLOY_TREE (a rootfs-like source tree instead of rootfs-bookworm;
# its deployable copy is cached as $OXTREE_BENCH_CACHE/deployable-NAME),
# OXTREE_DEPLOY_IMG_SIZE (default 6G), OXTREE_DEPLOY_OS (default debian).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export OSTREE=${OSTREE:-/usr/bin/ostree}
export OXTREE=${OXTREE:-$ROOT/target/release/oxtree}
export SCRATCH=${OXTREE_DEPLOY_SCRATCH:-/var/tmp/oxtree-deploy-bench}
export CACHE=${OXTREE_BENCH_CACHE:-/var/cache/oxtree-bench}
export IMG_SIZE=${OXTREE_DEPLOY_IMG_SIZE:-6G}
export OSNAME=${OXTREE_DEPLOY_OS:-debian}
export TIME=/usr/bin/time

log() { printf '[deploy-vs-ostree %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# ------------------------------------------------------------ inside the namespace
if [[ ${1:-} == --in-namespace ]]; then
  # Everything below runs in a private mount namespace; $SCRATCH exists.
  results=$SCRATCH/results.tsv   # op tool run status wall_s peak_rss_kib cpu_s
  : >"$results"
  mounts=()
  teardown() {
    local m img
    cd /
    for m in "${mounts[@]}"; do
      if mountpoint -q "$m"; then
        fsfreeze -u "$m" 2>/dev/null || true   # only if something left it frozen
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
      fi
    done
    for img in "$SCRATCH"/*.img; do
      [[ -e $img ]] || continue
      losetup -j "$img" -O NAME -n 2>/dev/null | while read -r dev; do losetup -d "$dev" 2>/dev/null || true; done
      rm -f "$img"
    done
  }
  trap teardown EXIT
  trap 'exit 130' INT TERM

  # measure OP TOOL RUN -- CMD...: CMD under GNU time; appends a result row.
  measure() {
    local op=$1 tool=$2 run=$3; shift 4
    local tf=$SCRATCH/time rc=0 secs rss usr sys cpu
    sync
    "$TIME" -f '%e %M %U %S' -o "$tf" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" || rc=$?
    read -r secs rss usr sys < <(tail -n1 "$tf") || true
    if [[ -n ${sys:-} ]]; then cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }'); else secs=- rss=- cpu=-; fi
    if [[ $rc -ne 0 ]]; then
      log "$tool $op failed (exit $rc): $(tail -n3 "$SCRATCH/err" | tr '\n' ' ')"
      printf '%s\t%s\t%s\tFAIL\t%s\t%s\t%s\n' "$op" "$tool" "$run" "$secs" "$rss" "$cpu" >>"$results"
      return "$rc"
    fi
    printf '%s\t%s\t%s\tok\t%s\t%s\t%s\n' "$op" "$tool" "$run" "$secs" "$rss" "$cpu" >>"$results"
    log "$tool $op: ${secs}s, $((rss / 1024)) MiB"
  }
  fail_row() { printf '%s\t%s\t%s\tFAIL\t-\t-\t-\n' "$@" >>"$results"; }

  # Every BLS entry names an existing kernel, initramfs and deployment.
  check_entries() {
    local s=$1 e k f o n=0
    for e in "$s"/boot/loader/entries/*.conf; do
      [[ -e $e ]] || { echo "no boot entries"; return 1; }
      n=$((n + 1))
      for k in linux initrd; do
        f=$(sed -n "s/^$k //p" "$e"); [[ -n $f && -f $s/boot$f ]] || { echo "$e: $k '$f' missing"; return 1; }
      done
      o=$(sed -n 's/^options .*ostree=\([^ ]*\).*/\1/p' "$e")
      [[ -d $s$o/usr ]] || { echo "$e: ostree=$o is not a deployment"; return 1; }
    done
    echo "$n boot entries ok"
  }

  # A listing of a deployment: type, mode, owner, size, symlink target.
  # Link counts and times are left out (they depend on the repo's history).
  listing() {
    (cd "$1" && find . -printf '%y %m %U:%G %s %p -> %l\n' | awk '$1 == "d" { $4 = "-" } { print }' | LC_ALL=C sort)
  }

  # setup TOOL BIN: fresh image + mount + init-fs + os-init + commit. Prints S.
  setup() {
    local tool=$1 bin=$2 img=$SCRATCH/$1.img s=$SCRATCH/$1-sysroot
    rm -f "$img"
    truncate -s "$IMG_SIZE" "$img" || return 1
    mkfs.ext4 -q -F "$img" || return 1
    mkdir -p "$s" || return 1
    mount -o loop "$img" "$s" || return 1
    mounts+=("$s")
    on_loop "$s" || return 1
    "$bin" admin init-fs "$s" >/dev/null || return 1
    "$bin" admin os-init --sysroot="$s" "$OSNAME" >/dev/null || return 1
    local mode
    mode=$(sed -n 's/^mode *= *//p' "$s/ostree/repo/config")
    [[ $mode == bare ]] || { log "$tool init-fs made a '$mode' repo, expected bare"; return 1; }
    if [[ $tool == oxtree && $OXTREE_FREEZE -eq 1 ]]; then
      "$OSTREE" config --repo="$s/ostree/repo" set sysroot.oxtree-freeze-boot true || return 1
    fi
    local t0=$SECONDS
    "$bin" --repo="$s/ostree/repo" commit -b bench --timestamp=2020-01-01 --tree=dir="$DEPLOYABLE" >"$SCRATCH/$tool.commit" 2>"$SCRATCH/err" \
      || { log "$tool commit failed: $(tail -n3 "$SCRATCH/err" | tr '\n' ' ')"; return 1; }
    log "$tool commit (untimed) took $((SECONDS - t0))s: $(tail -n1 "$SCRATCH/$tool.commit")"
  }
  # S must be the root of a loop-mounted filesystem: ostree freezes the fs
  # holding S/boot, which must never be the machine's.
  on_loop() {
    local src
    src=$(findmnt -n -o SOURCE --mountpoint "$1" 2>/dev/null || true)
    if [[ $src != /dev/loop* || $(stat -c %d "$1") == "$(stat -c %d /)" || $(stat -c %d "$1/boot" 2>/dev/null || stat -c %d "$1") != "$(stat -c %d "$1")" ]]; then
      log "REFUSING: $1 is not a loop-mounted filesystem (source '$src')"
      return 1
    fi
  }
  teardown_one() {
    local s=$1 img=$2
    cd /
    umount "$s"
    rm -f "$img"
    sync
  }

  one_tool() {
    local tool=$1 bin=$2 run=$3 s=$SCRATCH/$1-sysroot
    if ! setup "$tool" "$bin"; then
      fail_row deploy1 "$tool" "$run"; fail_row deploy2 "$tool" "$run"; return 1
    fi
    local ok=1 op
    for op in deploy1 deploy2; do
      on_loop "$s" || { ok=0; break; }
      if [[ $op == deploy2 ]]; then
        # A local /etc change for the merge to carry over (untimed).
        local e0
        e0=$(ls -d "$s/ostree/deploy/$OSNAME/deploy/"*.0)/etc
        echo bench-host >"$e0/hostname"
        echo "# local" >"$e0/bench-local.conf"
      fi
      measure "$op" "$tool" "$run" -- "$bin" admin deploy --sysroot="$s" --os="$OSNAME" bench || { ok=0; break; }
    done
    if [[ $ok -eq 0 && $op == deploy1 ]]; then fail_row deploy2 "$tool" "$run"; fi
    # Correctness, untimed.
    local e
    if e=$(check_entries "$s"); then log "$tool run $run: $e"; else log "WARNING: $tool run $run: $e"; checks_bad+=("$tool run $run: $e"); fi
    if "$OSTREE" admin status --sysroot="$s" >"$SCRATCH/$tool.ostree-status" 2>&1; then
      log "$tool run $run: ostree admin status: $(grep -c "^  $OSNAME " "$SCRATCH/$tool.ostree-status") deployments"
    else
      log "WARNING: ostree admin status fails on $tool's sysroot: $(tail -n3 "$SCRATCH/$tool.ostree-status" | tr '\n' ' ')"
      checks_bad+=("ostree admin status fails on $tool's sysroot (run $run)")
    fi
    if "$OXTREE" admin status --sysroot="$s" --run-dir="$SCRATCH/run" >"$SCRATCH/$tool.oxtree-status" 2>&1; then
      if ! cmp -s "$SCRATCH/$tool.ostree-status" "$SCRATCH/$tool.oxtree-status"; then
        log "WARNING: ostree and oxtree admin status differ on $tool's sysroot"
        checks_bad+=("admin status output differs on $tool's sysroot (run $run)")
      fi
    else
      log "WARNING: oxtree admin status fails on $tool's sysroot"
      checks_bad+=("oxtree admin status fails on $tool's sysroot (run $run)")
    fi
    if [[ $run -eq 1 ]]; then
      local d
      d=$(ls -d "$s/ostree/deploy/$OSNAME/deploy/"*.1 2>/dev/null | head -n1)
      if [[ -n $d ]]; then listing "$d" >"$SCRATCH/$tool.listing"; fi
      cat "$s"/boot/loader/entries/*.conf >"$SCRATCH/$tool.entries" 2>/dev/null || true
      ls "$s"/boot/ostree/*/ >"$SCRATCH/$tool.bootfiles" 2>/dev/null || true
      cp "$SCRATCH/$tool.ostree-status" "$SCRATCH/$tool.status-run1"
    fi
    teardown_one "$s" "$SCRATCH/$tool.img"
    mounts=()
    return $((1 - ok))
  }

  checks_bad=()
  log "warming page cache for $DEPLOYABLE"
  tar -C "$DEPLOYABLE" -cf - . | cat >/dev/null
  for ((run = 1; run <= RUNS; run++)); do
    log "run $run/$RUNS: ostree"
    one_tool ostree "$OSTREE" "$run" || true
    if [[ $OXTREE_OK -eq 1 ]]; then
      log "run $run/$RUNS: oxtree"
      one_tool oxtree "$OXTREE" "$run" || true
    else
      fail_row deploy1 oxtree "$run"; fail_row deploy2 oxtree "$run"
    fi
  done

  # First-run comparison of the two tools' results.
  cmp_note() {
    local what=$1 a=$SCRATCH/ostree.$2 b=$SCRATCH/oxtree.$2
    [[ -s $a && -s $b ]] || { echo "not compared: $what (missing)"; return; }
    if cmp -s "$a" "$b"; then echo "identical: $what"
    else echo "DIFFERS: $what ($(diff "$a" "$b" | grep -c '^[<>]') lines; see $SCRATCH/{ostree,oxtree}.$2)"; fi
  }
  {
    cmp_note "second deployment (type, mode, owner, size, symlink target of every entry)" listing
    cmp_note "BLS boot entries after the second deploy" entries
    cmp_note "files in /boot/ostree" bootfiles
    cmp_note "\`ostree admin status\` output" status-run1
    for c in "${checks_bad[@]}"; do echo "CHECK FAILED: $c"; done
    [[ ${#checks_bad[@]} -eq 0 ]] && echo "checks ok: boot entries valid and \`ostree admin status\` / \`oxtree admin status\` agree on both tools' sysroots, every run"
  } >"$SCRATCH/checks.txt"
  exit 0
fi

# ------------------------------------------------------------------ outside
runs=3
build=1
freeze=0
markdown=0
usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
  exit "${1:-0}"
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --runs=*) runs=${1#*=}; shift ;;
    --no-build) build=0; shift ;;
    --markdown) markdown=1; shift ;;
    --oxtree-freeze) freeze=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 >&2 ;;
  esac
done
[[ $runs =~ ^[0-9]+$ && $runs -ge 1 ]] || { echo "--runs must be a positive integer" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "must run as root (loop mounts, mount namespace)" >&2; exit 1; }
export RUNS=$runs OXTREE_FREEZE=$freeze

[[ -x $TIME ]] || { log "installing GNU time"; apt-get install -y time >&2; }
[[ -x $OSTREE ]] || { echo "ostree not found at $OSTREE" >&2; exit 1; }
for b in unshare mkfs.ext4 losetup fsfreeze mountpoint; do
  command -v "$b" >/dev/null || { echo "$b is required" >&2; exit 1; }
done

export OXTREE_OK=1
if [[ $build -eq 1 ]]; then
  log "cargo build --release in $ROOT"
  if ! (cd "$ROOT" && cargo build --release >"$SCRATCH.build.log" 2>&1); then
    log "WARNING: cargo build --release failed (see $SCRATCH.build.log); oxtree results will be FAILED"
    OXTREE_OK=0
  fi
fi
[[ -x $OXTREE ]] || { log "WARNING: $OXTREE missing; oxtree results will be FAILED"; OXTREE_OK=0; }

# ------------------------------------------------ the deployable tree (once)
if [[ -n ${OXTREE_DEPLOY_TREE:-} ]]; then
  SRC=$(cd "$OXTREE_DEPLOY_TREE" && pwd)
  DEPLOYABLE=$CACHE/deployable-$(basename "$SRC")
else
  "$HERE/make-rootfs.sh" rootfs
  SRC=$CACHE/rootfs-bookworm
  DEPLOYABLE=$CACHE/deployable
fi
export DEPLOYABLE
if [[ ! -e $DEPLOYABLE.complete ]]; then
  log "preparing $DEPLOYABLE from $SRC"
  rm -rf "$DEPLOYABLE"
  cp -a "$SRC" "$DEPLOYABLE"
  [[ -d $DEPLOYABLE/etc && ! -e $DEPLOYABLE/usr/etc ]] || { echo "$SRC: needs etc/ and no usr/etc" >&2; exit 1; }
  mv "$DEPLOYABLE/etc" "$DEPLOYABLE/usr/etc"
  nk=0
  for k in "$DEPLOYABLE"/boot/vmlinuz-*; do
    [[ -f $k ]] || continue
    kver=${k##*/vmlinuz-}
    mkdir -p "$DEPLOYABLE/usr/lib/modules/$kver"
    cp -a "$k" "$DEPLOYABLE/usr/lib/modules/$kver/vmlinuz"
    if [[ -f $DEPLOYABLE/boot/initrd.img-$kver ]]; then
      cp -a "$DEPLOYABLE/boot/initrd.img-$kver" "$DEPLOYABLE/usr/lib/modules/$kver/initramfs.img"
    fi
    nk=$((nk + 1))
  done
  [[ $nk -eq 1 ]] || { echo "$SRC: expected exactly one boot/vmlinuz-KVER, found $nk" >&2; exit 1; }
  touch "$DEPLOYABLE.complete"
fi
log "deployable tree: $DEPLOYABLE ($(du -sh --apparent-size "$DEPLOYABLE" | cut -f1) apparent, $(find "$DEPLOYABLE" | wc -l) entries, kernel $(ls "$DEPLOYABLE/usr/lib/modules/"*/vmlinuz))"

# Never let a previous run's leftovers (or its mounts) confuse this one.
if [[ -d $SCRATCH ]] && grep -q " $SCRATCH/" /proc/self/mountinfo; then
  echo "$SCRATCH has mounts in this namespace; refusing to delete it" >&2; exit 1
fi
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/run"
fstype=$(df --output=fstype "$SCRATCH" | tail -n1 | tr -d ' ')
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
  echo "scratch dir $SCRATCH is on $fstype; set OXTREE_DEPLOY_SCRATCH to a disk-backed path" >&2
  exit 1
fi

ostree_version=$("$OSTREE" --version | sed -n "s/ *Version: *'\(.*\)'/\1/p")
log "ostree $ostree_version: $OSTREE  oxtree: $OXTREE  scratch: $SCRATCH ($fstype)  image: $IMG_SIZE sparse ext4"
log "oxtree source: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$SECONDS
rc=0
unshare -m --propagation private bash "$0" --in-namespace || rc=$?
elapsed=$((SECONDS - start))
# The namespace is gone, so are its mounts; detach any loop device still
# bound to one of our images (autoclear normally does this) and remove them.
for img in "$SCRATCH"/*.img; do
  [[ -e $img ]] || continue
  losetup -j "$img" -O NAME -n 2>/dev/null | while read -r dev; do losetup -d "$dev" 2>/dev/null || true; done
  rm -f "$img"
done
[[ $rc -eq 0 ]] || log "WARNING: the measuring shell exited with $rc"

results=$SCRATCH/results.tsv
echo
echo "admin deploy, oxtree$([[ $freeze -eq 1 ]] && echo ' (oxtree-freeze-boot=true)') vs ostree $ostree_version: median of $runs interleaved runs; wall ${elapsed}s; load at end $(cut -d' ' -f1-3 /proc/loadavg)"
awk -F'\t' -v md="$markdown" '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    k = $1 SUBSEP $2
    if ($4 == "ok") { t[k] = t[k] " " $5; c[k] = c[k] " " $7; all[k] = all[k] " " $5; if ($6 + 0 > rss[k]) rss[k] = $6 + 0 }
    else fail[k] = 1
  }
  function row(a, b, c, d, e, f, g, h, i) {
    if (md) printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a, b, c, d, e, f, g, h, i
    else printf "%-8s %9s %9s %-20s %10s %10s %10s %10s  %s\n", a, b, c, d, e, f, g, h, i
  }
  END {
    row("op", "ostree s", "oxtree s", "ratio oxtree/ostree", "ostree MiB", "oxtree MiB", "ostree cpu", "oxtree cpu", "runs (ostree | oxtree, s)")
    if (md) print "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    split("deploy1 deploy2", O, " ")
    for (l = 1; l <= 2; l++) {
      ko = O[l] SUBSEP "ostree"; kx = O[l] SUBSEP "oxtree"
      os = "FAILED"; xs = "FAILED"; om = "-"; xm = "-"; oc = "-"; xc = "-"; ratio = "n/a"
      if (!(ko in fail) && t[ko] != "") { os = sprintf("%.2f", median(t[ko])); om = sprintf("%.1f", rss[ko] / 1024); oc = sprintf("%.2f", median(c[ko])) }
      if (!(kx in fail) && t[kx] != "") { xs = sprintf("%.2f", median(t[kx])); xm = sprintf("%.1f", rss[kx] / 1024); xc = sprintf("%.2f", median(c[kx])) }
      if (os != "FAILED" && xs != "FAILED" && os + 0 > 0) ratio = sprintf("%.2f", xs / os)
      row(O[l], os, xs, ratio, om, xm, oc, xc, substr(all[ko], 2) " | " substr(all[kx], 2))
    }
  }' "$results"
echo
echo "deploy1 = first deploy (hardlink checkout, /etc from usr/etc, kernel+initramfs copy to /boot, BLS entries)"
echo "deploy2 = redeploy of the same commit after a local /etc edit (new deployment, 3-way /etc merge, kernel already in /boot)"
if [[ $freeze -eq 1 ]]; then
  echo "both tools end each deploy with syncfs() + FIFREEZE/FITHAW of the /boot filesystem (oxtree: [sysroot] oxtree-freeze-boot=true)."
else
  echo "ostree ends each deploy with syncfs() + FIFREEZE/FITHAW of the /boot filesystem; oxtree syncs but does not freeze (default; --oxtree-freeze to opt in)."
fi
cat "$SCRATCH/checks.txt" 2>/dev/null || echo "WARNING: no correctness check results"
suffix=$([[ $freeze -eq 1 ]] && echo -freeze || true)
cp "$results" "$SCRATCH.last-results$suffix.tsv"
log "raw per-run results: $SCRATCH.last-results$suffix.tsv"
exit "$rc"
