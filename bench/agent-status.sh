#!/usr/bin/env bash
# The host agent's `GET /v1/host` under concurrent clients, and its idle
# memory.
#
#   bench/agent-status.sh [--profile release|dev] [--no-build] [--clients N] [--requests M] [--runs R]
#
# A sysroot on a loop-mounted ext4 image (in a private mount namespace)
# gets the fake OS of tests/support/sysroot.rs committed in 3 versions and
# deployed 3 times (3 deployments, like a host with a rollback and a
# pinned one), and `oxtree agent` serves it on a unix socket. Then:
#   idle RSS  VmRSS of the agent after start and 1 s of idling;
#   load      crates/oxtree-agent/examples/load.rs (dev profile): N clients (default
#             50), each on its own keep-alive connection, each sending M
#             (default 200) sequential GET /v1/host; p50/p90/p99/max
#             latency and requests/s; repeated R times (default 3);
#   after     VmRSS again after the load (and after another 2 s idle).
# The agent and the load generator share the machine's cores.
set -euo pipefail
profile=release clients=50 requests=200 runs=3 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-build) build=; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
flag=; [ "$profile" = release ] && flag=--release
[ -n "$build" ] && cargo build $flag --bin oxtree >&2
# The load generator is built once in the dev profile (its dependencies,
# hyper and tokio, are optimized there too; see [profile.dev.package."*"]),
# so a release run does not build a second feature set of the workspace.
[ -n "$build" ] && cargo build -p oxtree-agent --example load >&2
dir=target/$([ "$profile" = release ] && echo release || echo debug)
OX=$PWD/$dir/oxtree LOAD=$PWD/target/debug/examples/load
D=$(mktemp -d /var/tmp/oxtree-bench-agent.XXXXXX)
trap 'rm -rf "$D"' EXIT
export OX LOAD D clients requests runs
unshare -m --propagation private bash -c '
set -euo pipefail
S=$D/mnt; T=$D/tree; R=$D/run
mkdir -p $S $R
truncate -s 1G $D/img && mkfs.ext4 -q $D/img && mount -o loop $D/img $S
mkdir -p $T/usr/lib/modules/5.10.0-test $T/usr/etc $T/usr/bin $T/var $T/sysroot
echo kernel-bytes > $T/usr/lib/modules/5.10.0-test/vmlinuz
echo initramfs-bytes > $T/usr/lib/modules/5.10.0-test/initramfs.img
printf "NAME=Fake\n" > $T/usr/etc/os-release
$OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S fakeos >/dev/null
for v in 1 2 3; do
  echo $v > $T/usr/etc/v
  $OX --repo=$S/ostree/repo commit -b fakeos/main --timestamp=2024-0$v-01 --add-metadata-string=version=$v.0 $T >/dev/null
  $OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos --retain fakeos/main >/dev/null
done
$OX agent --sysroot=$S --run-dir=$R --socket=$D/sock --audit-log=$D/audit.log > $D/agent.out 2>&1 &
pid=$!
while ! grep -q listening $D/agent.out; do sleep 0.05; done
sleep 1
rss() { awk "/VmRSS/ {printf \"%.1f MiB\", \$2/1024}" /proc/$pid/status; }
echo "idle RSS after start: $(rss)"
$LOAD $D/sock 1 20 >/dev/null
echo -n "one client: "; $LOAD $D/sock 1 2000
for i in $(seq 1 $runs); do
  $LOAD $D/sock $clients $requests
done
echo "RSS right after the load: $(rss)"
sleep 2
echo "idle RSS after the load: $(rss)"
kill $pid; wait $pid || true
umount $S
'
