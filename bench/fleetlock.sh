#!/usr/bin/env bash
# FleetLock lock grant latency through etcd.
#
#   bench/fleetlock.sh [--bin PATH] [--n N] [--clients C]
#
# Starts a real etcd (Debian's etcd-server) on free 127.0.0.1 ports with a
# private data directory under a temp dir, and one `oxtree fleetlock serve`
# on it with C slots. Then python3 (http.client, one keep-alive connection
# per client) measures the round trip of `POST /v1/pre-reboot` that ends in
# a grant, each followed by an untimed `POST /v1/steady-state`:
#   sequential  N grants by one client (one lease grant + one guarded
#               transaction in etcd each, both fsynced by etcd)
#   concurrent  C clients at once, N/C grants each, distinct ids, C slots
#               (every request is granted; CAS conflicts are retried)
# It prints p50/p90/p99/max in ms for both, and the server's own median
# from its JSON log. Kills only the pids it started.
#
# --bin defaults to target/release/oxtree, built if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/oxtree
n=1000
clients=8
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || cargo build --release --bin oxtree
command -v etcd >/dev/null || { echo "etcd is required (scripts/install-deps.sh)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 never opened" >&2; exit 1
}

cport=$(port); pport=$(port); sport=$(port)
etcd --name=bench --data-dir="$tmp/etcd" \
  --listen-client-urls="http://127.0.0.1:$cport" --advertise-client-urls="http://127.0.0.1:$cport" \
  --listen-peer-urls="http://127.0.0.1:$pport" --initial-advertise-peer-urls="http://127.0.0.1:$pport" \
  --initial-cluster="bench=http://127.0.0.1:$pport" --log-level=warn 2>"$tmp/etcd.log" &
pids+=($!)
wait_port "$cport"
until ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$cport" put bench/ready 1 >/dev/null 2>&1; do sleep 0.1; done

cat >"$tmp/fleetlock.toml" <<EOF
[service]
address = "127.0.0.1"
port = $sport
[etcd3]
endpoints = ["http://127.0.0.1:$cport"]
transaction_timeout_ms = 10000
[lock]
default_slots = $clients
EOF
"$bin" fleetlock serve --json-log --config="$tmp/fleetlock.toml" 2>"$tmp/server.log" &
pids+=($!)
wait_port "$sport"

python3 - "$sport" "$n" "$clients" <<'EOF'
import http.client, json, sys, threading, time
port, n, clients = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
H = {"fleet-lock-protocol": "true", "content-type": "application/json"}

def body(i):
    return json.dumps({"client_params": {"id": i, "group": "default"}})

def cycles(name, count, out):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for k in range(count):
        t = time.perf_counter()
        c.request("POST", "/v1/pre-reboot", body(name), H)
        r = c.getresponse(); r.read()
        dt = time.perf_counter() - t
        assert r.status == 200, (r.status, name)
        out.append(dt * 1000)
        c.request("POST", "/v1/steady-state", body(name), H)
        r = c.getresponse(); r.read()
        assert r.status == 200
    c.close()

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

def show(label, xs):
    print(f"{label:<34} n={len(xs):<5} p50={pct(xs,50):6.2f} ms  p90={pct(xs,90):6.2f} ms  "
          f"p99={pct(xs,99):6.2f} ms  max={max(xs):6.2f} ms")

warm = []
cycles("warm", 20, warm)
seq = []
cycles("seq", n, seq)
show("sequential, 1 client", seq)
conc = []
lock = threading.Lock()
def worker(i):
    mine = []
    cycles(f"c{i}", max(1, n // clients), mine)
    with lock:
        conc.extend(mine)
ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
t0 = time.perf_counter()
for t in ts: t.start()
for t in ts: t.join()
wall = time.perf_counter() - t0
show(f"concurrent, {clients} clients", conc)
print(f"{'':34} {len(conc)/wall:.0f} grants/s (each with a release)")
EOF

python3 - "$tmp/server.log" <<'EOF'
import json, sys, statistics
ms = []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "request" and e.get("result") == "granted":
        ms.append(e["ms"])
if ms:
    print(f"server-side grant time (all grants)  median={statistics.median(ms):.2f} ms  n={len(ms)}")
EOF
echo "etcd $(etcd --version | head -1 | awk '{print $3}'), data dir on $(df --output=fstype "$tmp" | tail -1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
