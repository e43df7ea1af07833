#!/usr/bin/env bash
# Side-by-side transport benchmark: oxtree vs the system ostree pulling the
# same commits from the same HTTP server over loopback.
#
#   bench/pull-vs-ostree.sh [--runs N] [--tree rootfs|gen] [--mode bare|archive]
#                           [--server oxtree|python|nginx] [--link lo|wan]
#                           [--ops full,incr-objects,incr-delta,resume]
#                           [--no-build] [--markdown]
#
# Setup (untimed except where said): the tree is committed as A into an
# archive server repo; B is A with ~2% of its regular files changed (one
# byte flipped in the middle of every 50th file by path, plus a few new
# files). Two copies of the server repo get a static delta A->B, one made
# by ostree and one by oxtree: their generation time, peak RSS and size are
# measured (`delta-gen`). Then, N interleaved runs of, for each tool:
#   full         TOOL pull srv main            (A into an empty repo)
#   incr-objects TOOL pull --disable-static-deltas srv main   (A -> B)
#   incr-delta   TOOL pull srv main            (A -> B, the tool's own delta)
# The client repo is of --mode (default bare, what a host's sysroot uses)
# and lives on a freshly made ext4 loop filesystem for every pull: on a
# long-used filesystem, inode allocation after many deletes
# (ext4 recently_deleted()) dominated both tools' time and made it noisy.
# Each pull runs in its own network namespace (`unshare -n`) with the server
# on 127.0.0.1 there, so the bytes received on `lo` are exactly this pull's
# traffic (payload plus HTTP and TCP/IP headers; server-to-client direction
# counts as lo rx too, so the figure is both directions).
# The server is `oxtree serve` by default (one static server for both
# clients); --server python uses python3's http.server (HTTP/1.0, a new
# connection per request, listen backlog 5), --server nginx a stock nginx
# (HTTP/1.1 keep-alive, sendfile) with a config of its own in the scratch
# directory. --link wan shapes the link: 25 ms each way (50 ms RTT),
# 100 Mbit/s and 0.5% loss per direction, a long, slightly lossy link as
# the hosts' update links are; with tc netem on the namespace's loopback
# when the kernel has sch_netem, else with bench/linkemu.py (the same
# shaping in user space between two TUN devices, the client in a nested
# namespace).
#
# --ops picks the pulls (default all four); without `full` the client's
# copy of A for the incremental pulls is made untimed with `ostree
# pull-local` (a shaped full pull takes minutes).
#
# Every run also kills a full pull half-way (its median time / 2) and
# pulls again: the `resume` row is that second pull, whose bytes show what
# the killed pull's work was worth.
#
# Results: median wall seconds, oxtree/ostree ratio (< 1: oxtree faster),
# largest peak RSS, median bytes on the wire. Every oxtree pull is checked
# (`ostree fsck` on run 1, ref = expected commit).
#
# Environment: OSTREE, OXTREE (default target/release/oxtree),
# OXTREE_BENCH_SCRATCH (default /var/tmp/oxtree-pull-bench),
# OXTREE_BENCH_CACHE (trees, see make-rootfs.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OSTREE=${OSTREE:-/usr/bin/ostree}
OXTREE=${OXTREE:-$ROOT/target/release/oxtree}
SCRATCH=${OXTREE_BENCH_SCRATCH:-/var/tmp/oxtree-pull-bench}
CACHE=${OXTREE_BENCH_CACHE:-/var/cache/oxtree-bench}
export OXTREE_BENCH_CACHE=$CACHE
TIME=/usr/bin/time

runs=3
tree=rootfs
mode=bare
server=oxtree
link=lo
build=1
markdown=0
ops=full,incr-objects,incr-delta,resume

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
  exit "${1:-0}"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --ops) ops=$2; shift 2 ;;
    --ops=*) ops=${1#*=}; shift ;;
    --runs) runs=$2; shift 2 ;;
    --runs=*) runs=${1#*=}; shift ;;
    --tree) tree=$2; shift 2 ;;
    --tree=*) tree=${1#*=}; shift ;;
    --mode) mode=$2; shift 2 ;;
    --mode=*) mode=${1#*=}; shift ;;
    --server) server=$2; shift 2 ;;
    --server=*) server=${1#*=}; shift ;;
    --link) link=$2; shift 2 ;;
    --link=*) link=${1#*=}; shift ;;
    --no-build) build=0; shift ;;
    --markdown) markdown=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 >&2 ;;
  esac
done
[[ $runs =~ ^[0-9]+$ && $runs -ge 1 ]] || { echo "--runs must be a positive integer" >&2; exit 2; }
case $tree in rootfs|gen) ;; *) echo "--tree: rootfs or gen" >&2; exit 2 ;; esac
case $mode in bare|archive|bare-user) ;; *) echo "--mode: bare, bare-user or archive" >&2; exit 2 ;; esac
case $server in oxtree|python|nginx) ;; *) echo "--server: oxtree, python or nginx" >&2; exit 2 ;; esac
case $link in lo|wan) ;; *) echo "--link: lo or wan" >&2; exit 2 ;; esac
[[ $server == nginx ]] && { command -v nginx >/dev/null || { echo "missing: nginx (apt-get install nginx-light)" >&2; exit 1; }; }
shaper=none
HOST=127.0.0.1
if [[ $link == wan ]]; then
  command -v tc >/dev/null || { echo "missing: tc (iproute2)" >&2; exit 1; }
  # netem when the kernel has it; else the same shaping in user space
  # (bench/linkemu.py between two TUN devices, the client in a namespace of
  # its own), since some VM kernels lack sch_netem.
  if unshare -n sh -c 'ip link set lo up && tc qdisc add dev lo root netem delay 1ms' 2>/dev/null; then
    shaper=netem
  else
    [[ -c /dev/net/tun ]] || { echo "--link wan: no netem qdisc and no /dev/net/tun" >&2; exit 1; }
    command -v nsenter >/dev/null || { echo "missing: nsenter (util-linux)" >&2; exit 1; }
    shaper=linkemu
    HOST=10.9.0.1
  fi
fi
export SHAPER=$shaper LINKEMU=$HERE/linkemu.py

log() { printf '[pull-vs-ostree %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

for t in unshare ip "$TIME" python3 mkfs.ext4 mountpoint; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done
if [[ $build == 1 ]]; then
  log "building oxtree (release)"
  (cd "$ROOT" && cargo build --release --quiet)
fi
"$HERE/make-rootfs.sh" "$tree"
case $tree in
  rootfs) TREE=$CACHE/rootfs-bookworm ;;
  gen) TREE=$CACHE/gen ;;
esac

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
MNT=$SCRATCH/client-fs
cleanup() {
  mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
RESULTS=$SCRATCH/results.tsv
: >"$RESULTS"

# --- the two commits and the server repos --------------------------------
log "committing A and B (~2% of files changed) into the server repo"
SRV=$SCRATCH/srv
"$OSTREE" --repo="$SRV" init --mode=archive
"$OSTREE" --repo="$SRV" commit -b main --timestamp=2020-01-01 --tree=dir="$TREE" >"$SCRATCH/A"
A=$(cat "$SCRATCH/A")
TREE_B=$SCRATCH/tree-b
cp -a "$TREE" "$TREE_B"
(cd "$TREE_B" && find . -type f -size +0 | LC_ALL=C sort | awk 'NR % 50 == 0') >"$SCRATCH/changed"
python3 - "$TREE_B" "$SCRATCH/changed" <<'PY'
import os, sys
root, listing = sys.argv[1], sys.argv[2]
for rel in open(listing).read().splitlines():
    p = os.path.join(root, rel)
    with open(p, "r+b") as f:
        off = os.path.getsize(p) // 2
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([(b[0] + 1) % 256]))
PY
mkdir -p "$TREE_B/usr/share/oxtree-bench"
for i in $(seq 1 20); do head -c $((4096 * i)) /dev/urandom >"$TREE_B/usr/share/oxtree-bench/new-$i"; done
"$OSTREE" --repo="$SRV" commit -b main --timestamp=2020-01-02 --tree=dir="$TREE_B" >"$SCRATCH/B"
B=$(cat "$SCRATCH/B")
rm -rf "$TREE_B"
log "A=$A B=$B ($(wc -l <"$SCRATCH/changed") files changed)"

measure() { # label tool run -- command...
  local label=$1 tool=$2 run=$3; shift 4
  local tf=$SCRATCH/time.$$
  sync
  if ! "$TIME" -f '%e %M' -o "$tf" "$@" >"$SCRATCH/out.log" 2>&1; then
    log "FAILED: $label $tool run $run: $(tail -3 "$SCRATCH/out.log")"
    printf '%s\t%s\t%s\tFAIL\t0\t0\n' "$label" "$tool" "$run" >>"$RESULTS"
    return 1
  fi
  read -r secs rss <"$tf"
  printf '%s\t%s\t%s\t%s\t%s\t' "$label" "$tool" "$run" "$secs" "$rss" >>"$RESULTS"
}

# The tools' own deltas, each in a hardlinked copy of the server repo.
declare -A SRV_OF
for tool in ostree oxtree; do
  d=$SCRATCH/srv-$tool
  cp -al "$SRV" "$d"
  SRV_OF[$tool]=$d
done
want() { [[ ,$ops, == *,$1,* ]]; }

for run in $(seq 1 "$runs"); do
  for tool in ostree oxtree; do
    bin=$OSTREE; [[ $tool == oxtree ]] && bin=$OXTREE
    d=${SRV_OF[$tool]}
    rm -rf "$d/deltas" "$d/delta-indexes"
    if measure delta-gen "$tool" "$run" -- "$bin" --repo="$d" static-delta generate --from="$A" --to="$B"; then
      printf '%s\n' "$(du -sb "$d/deltas" | cut -f1)" >>"$RESULTS"
    fi
  done
done
for tool in ostree oxtree; do
  bin=$OSTREE; [[ $tool == oxtree ]] && bin=$OXTREE
  "$bin" --repo="${SRV_OF[$tool]}" summary -u >/dev/null
done

# --- pulls ----------------------------------------------------------------
# Run one pull inside a fresh network namespace with its own server; print
# the lo rx byte delta to FD 3.
cat >"$SCRATCH/netns-pull.sh" <<'EOF'
set -eu
srv_repo=$1; server=$2; oxtree=$3; shift 3
ip link set lo up
host=127.0.0.1
client=""   # prefix that runs the client in its namespace (linkemu)
dev=lo      # the device whose counters are the pull's traffic
cns=""; emu=""
if [ "$LINK" = wan ] && [ "$SHAPER" = netem ]; then
  # Both directions cross lo: 25 ms each way is a 50 ms round trip.
  tc qdisc add dev lo root netem delay 25ms rate 100mbit loss 0.5%
elif [ "$LINK" = wan ]; then
  # The server stays here; the client gets a namespace of its own, joined
  # by a TUN pair that linkemu.py shapes the same way (25 ms each way,
  # 100 Mbit/s, 0.5% loss per direction).
  emu_out=$(mktemp)
  python3 "$LINKEMU" tunS tunC 25 100 0.5 >"$emu_out" 2>&1 &
  emu=$!
  for _ in $(seq 1 100); do grep -q ready "$emu_out" && break; sleep 0.05; done
  unshare -n sleep 86400 &
  cns=$!
  sleep 0.1
  ip link set tunC netns "$cns"
  ip addr add 10.9.0.1/30 dev tunS
  ip link set tunS up
  nsenter -t "$cns" -n sh -c 'ip link set lo up && ip addr add 10.9.0.2/30 dev tunC && ip link set tunC up'
  host=10.9.0.1
  client="nsenter -t $cns -n"
  dev=tunC
fi
port=8471
if [ "$server" = python ]; then
  (cd "$srv_repo" && exec python3 -m http.server --bind "$host" "$port" >/dev/null 2>&1) &
elif [ "$server" = nginx ]; then
  conf=$(mktemp -d)
  cat >"$conf/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $conf/nginx.pid;
error_log stderr;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  client_body_temp_path $conf;
  proxy_temp_path $conf;
  fastcgi_temp_path $conf;
  uwsgi_temp_path $conf;
  scgi_temp_path $conf;
  server { listen $host:$port; root $srv_repo; }
}
NGX
  nginx -c "$conf/nginx.conf" -p "$conf" >/dev/null 2>&1 &
else
  "$oxtree" --repo="$srv_repo" serve --bind="$host" --port="$port" >/dev/null 2>&1 &
fi
spid=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/$host/$port) 2>/dev/null && break
  sleep 0.05
done
# /proc/net/dev is the namespace's view (sysfs would show the host's). On
# lo both directions count as rx; on the TUN device rx and tx are added.
traffic() {
  $client awk -v d="$dev:" '$1 == d { print (d == "lo:") ? $2 : $2 + $10 }' /proc/net/dev
}
before=$(traffic)
set +e
if [ -n "${CUT_AFTER:-}" ]; then
  # A pull cut off mid-way (kill -9): only what it leaves behind matters.
  timeout -s KILL "$CUT_AFTER" $client "$@"
  rc=0
  echo "0 0" >"$TIMEFILE"
else
  /usr/bin/time -f '%e %M' -o "$TIMEFILE" $client "$@"
  rc=$?
fi
set -e
after=$(traffic)
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
[ -n "$cns" ] && kill "$cns" 2>/dev/null || true
[ -n "$emu" ] && kill "$emu" 2>/dev/null || true
echo $((after - before)) >"$BYTESFILE"
exit $rc
EOF

# A fresh ext4 filesystem at $MNT (sized for two copies of the tree).
fresh_fs() {
  mountpoint -q "$MNT" && umount "$MNT"
  mkdir -p "$MNT"
  rm -f "$SCRATCH/client.img"
  truncate -s "$FS_SIZE" "$SCRATCH/client.img"
  mkfs.ext4 -q -F "$SCRATCH/client.img"
  mount -o loop "$SCRATCH/client.img" "$MNT"
}
FS_SIZE=$(( $(du -sb "$TREE" | cut -f1) * 3 / 1024 / 1024 + 512 ))M

client_repo() { # tool dir
  local bin=$OSTREE; [[ $1 == oxtree ]] && bin=$OXTREE
  rm -rf "$2"
  "$bin" --repo="$2" init --mode="$mode" >/dev/null
  "$bin" --repo="$2" remote add --no-gpg-verify srv "http://$HOST:8471/" >/dev/null
}

pull() { # label tool run srv_repo client_repo expected -- pull args...
  local label=$1 tool=$2 run=$3 srv=$4 repo=$5 expect=$6; shift 7
  local bin=$OSTREE; [[ $tool == oxtree ]] && bin=$OXTREE
  sync
  if ! LINK=$link CUT_AFTER=${CUT_AFTER:-} TIMEFILE=$SCRATCH/t BYTESFILE=$SCRATCH/b unshare -n sh "$SCRATCH/netns-pull.sh" \
      "$srv" "$server" "$OXTREE" "$bin" --repo="$repo" pull "$@" >"$SCRATCH/out.log" 2>&1; then
    log "FAILED: $label $tool run $run: $(tail -3 "$SCRATCH/out.log")"
    printf '%s\t%s\t%s\tFAIL\t0\t0\n' "$label" "$tool" "$run" >>"$RESULTS"
    return 1
  fi
  read -r secs rss <"$SCRATCH/t"
  local got
  got=$("$OSTREE" --repo="$repo" rev-parse srv:main)
  if [[ $got != "$expect" ]]; then
    log "WRONG: $label $tool run $run: srv:main is $got, expected $expect"
    printf '%s\t%s\t%s\tFAIL\t0\t0\n' "$label" "$tool" "$run" >>"$RESULTS"
    return 1
  fi
  if [[ $run == 1 && $tool == oxtree ]]; then
    "$OSTREE" --repo="$repo" fsck -q >/dev/null 2>&1 || log "WARNING: ostree fsck rejects oxtree's repo after $label"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$tool" "$run" "$secs" "$rss" "$(cat "$SCRATCH/b")" >>"$RESULTS"
}

for run in $(seq 1 "$runs"); do
  for tool in ostree oxtree; do
    srv=${SRV_OF[$tool]}
    c=$MNT/client
    log "run $run: $tool full pull"
    fresh_fs
    client_repo "$tool" "$c"
    # Full pull of A (REF@COMMIT), so the incremental pulls start from A.
    if want full; then
      pull full "$tool" "$run" "$srv" "$c" "$A" -- srv "main@$A" || true
    else
      "$OSTREE" --repo="$c" pull-local "$srv" "$A" >/dev/null
      mkdir -p "$c/refs/remotes/srv"
      echo "$A" >"$c/refs/remotes/srv/main"
    fi
    cp -a "$c" "$SCRATCH/client.base"
    if want incr-objects; then
      log "run $run: $tool incremental, objects"
      pull incr-objects "$tool" "$run" "$srv" "$c" "$B" -- --disable-static-deltas srv main || true
    fi
    fresh_fs
    cp -a "$SCRATCH/client.base" "$c"
    if want incr-delta; then
      log "run $run: $tool incremental, static delta"
      pull incr-delta "$tool" "$run" "$srv" "$c" "$B" -- srv main || true
    fi
    rm -rf "$SCRATCH/client.base"
    # Cut a full pull off half-way (kill -9), then pull again: the second
    # pull's bytes show what the first one's work was worth.
    full_secs=$(awk -F'\t' -v t="$tool" -v r="$run" '$1 == "full" && $2 == t && $3 == r { print $4 }' "$RESULTS")
    if want resume && [[ -n $full_secs && $full_secs != FAIL ]]; then
      log "run $run: $tool full pull killed half-way, then resumed"
      fresh_fs
      client_repo "$tool" "$c"
      bin=$OSTREE; [[ $tool == oxtree ]] && bin=$OXTREE
      LINK=$link CUT_AFTER=$(awk -v s="$full_secs" 'BEGIN { printf "%.2f", s / 2 }') \
        TIMEFILE=$SCRATCH/t BYTESFILE=$SCRATCH/b unshare -n sh "$SCRATCH/netns-pull.sh" \
        "$srv" "$server" "$OXTREE" "$bin" --repo="$c" pull srv "main@$A" >"$SCRATCH/out.log" 2>&1 || true
      pull resume "$tool" "$run" "$srv" "$c" "$A" -- srv "main@$A" || true
    fi
  done
done

# --- report ---------------------------------------------------------------
awk -F'\t' -v markdown="$markdown" -v runs="$runs" -v tree="$tree" -v mode="$mode" -v server="$server" -v link="$link" '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    if (n == 0) return ""
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  $4 == "FAIL" { fail[$1 SUBSEP $2] = 1; next }
  { k = $1 SUBSEP $2; t[k] = t[k] " " $4; b[k] = b[k] " " $6; if ($5 > rss[k]) rss[k] = $5; seen[$1] = 1 }
  END {
    split("delta-gen full incr-objects incr-delta resume", ops, " ")
    if (markdown) {
      print "| " tree " (" mode ", " server " server, " link " link) | ostree s | oxtree s | ratio | ostree MiB | oxtree MiB | ostree bytes | oxtree bytes |"
      print "|---|---:|---:|---:|---:|---:|---:|---:|"
    } else {
      printf "%-14s %9s %9s %7s %10s %10s %14s %14s\n", tree "/" mode, "ostree s", "oxtree s", "ratio", "ostree MiB", "oxtree MiB", "ostree bytes", "oxtree bytes"
    }
    for (i = 1; i <= 5; i++) {
      op = ops[i]; ko = op SUBSEP "ostree"; kx = op SUBSEP "oxtree"
      if (!(op in seen) && !(ko in fail) && !(kx in fail)) continue
      os = (ko in fail || t[ko] == "") ? "FAIL" : median(t[ko]); xs = (kx in fail || t[kx] == "") ? "FAIL" : median(t[kx])
      r = (os != "FAIL" && xs != "FAIL" && os > 0) ? sprintf("%.2f", xs / os) : "-"
      om = sprintf("%.1f", rss[ko] / 1024); xm = sprintf("%.1f", rss[kx] / 1024)
      ob = median(b[ko]); xb = median(b[kx])
      if (markdown) printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", op, os, xs, r, om, xm, ob, xb
      else printf "%-14s %9s %9s %7s %10s %10s %14s %14s\n", op, os, xs, r, om, xm, ob, xb
    }
  }' "$RESULTS"
echo "(median of $runs runs; delta-gen bytes = size of deltas/; pull bytes = the pull's traffic, both directions; resume = the pull after a full pull was killed half-way; link shaper: $shaper; load at end $(cut -d' ' -f1-3 /proc/loadavg))"
