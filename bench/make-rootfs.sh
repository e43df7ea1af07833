#!/usr/bin/env bash
# Build (or reuse) the benchmark input trees, cached outside the repository.
#
#   bench/make-rootfs.sh [rootfs|gen|both]     (default: both)
#
# rootfs: a real Debian bookworm OS tree built with mmdebstrap (minbase plus a
#         realistic package set: systemd, kernel, python3, perl, vim, curl ...),
#         ~1 GB / ~30k files, at $OXTREE_BENCH_CACHE/rootfs-bookworm.
# gen:    a deterministic synthetic tree (many small files, some large ones,
#         symlinks, deep nesting), ~20k files / ~300 MB, at $OXTREE_BENCH_CACHE/gen.
#
# Both are idempotent: a tree with a sibling DIR.complete stamp is reused (the
# stamp lives outside the tree so it is not committed). Delete the stamp to
# force a rebuild.
set -euo pipefail

CACHE=${OXTREE_BENCH_CACHE:-/var/cache/oxtree-bench}
SUITE=${OXTREE_BENCH_SUITE:-bookworm}
# Empty: mmdebstrap uses its default Debian mirror.
MIRROR=${OXTREE_BENCH_MIRROR:-}
PACKAGES=systemd,systemd-sysv,udev,dbus,linux-image-amd64,python3,perl,vim,curl,ca-certificates,openssh-client,iproute2,less,procps,kmod,gnupg,locales

what=${1:-both}
case $what in
  rootfs|gen|both) ;;
  *) echo "usage: $0 [rootfs|gen|both]" >&2; exit 2 ;;
esac

log() { printf '[make-rootfs] %s\n' "$*" >&2; }

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (mmdebstrap --mode=root, device nodes, file ownership)"
    exit 1
  fi
}

summary() {
  local dir=$1
  log "$(du -sh --apparent-size "$dir" | cut -f1) apparent, $(find "$dir" -xdev | wc -l) entries in $dir"
}

build_rootfs() {
  local dest=$CACHE/rootfs-$SUITE
  if [[ -e $dest.complete && -d $dest ]]; then
    log "reusing $dest"
    return
  fi
  need_root
  if ! command -v mmdebstrap >/dev/null; then
    log "installing mmdebstrap"
    apt-get install -y mmdebstrap >&2
  fi
  rm -rf "$dest" "$dest.tmp" "$dest.complete"
  mkdir -p "$CACHE"
  log "building $SUITE rootfs with mmdebstrap (this takes a few minutes)"
  # --mode=root: plain chroot as real root, no user namespaces needed.
  # Output to a directory; drop apt caches/lists so the tree is an "OS image".
  # shellcheck disable=SC2016 # "$1" is expanded by mmdebstrap's hook shell
  mmdebstrap --mode=root --variant=minbase --format=directory \
    --include="$PACKAGES" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*/changelog*' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "$SUITE" "$dest.tmp" ${MIRROR:+"$MIRROR"}
  # ostree only stores regular files, dirs and symlinks: device nodes/fifos/
  # sockets would make 'commit' fail for both tools, so remove them (mmdebstrap
  # creates a few in /dev).
  find "$dest.tmp" -xdev \( -type b -o -type c -o -type p -o -type s \) -delete
  mv "$dest.tmp" "$dest"
  touch "$dest.complete"
  summary "$dest"
}

# Deterministic synthetic tree: names, sizes, modes and contents all come
# from fixed-seed Python PRNGs (random.Random is stable across CPython 3.x),
# so the tree is byte-identical on every machine and run.
build_gen() {
  local dest=$CACHE/gen
  if [[ -e $dest.complete && -d $dest ]]; then
    log "reusing $dest"
    return
  fi
  rm -rf "$dest" "$dest.tmp" "$dest.complete"
  mkdir -p "$dest.tmp"
  log "generating synthetic tree"
  python3 - "$dest.tmp" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(20200101)
# separate seeded generator for incompressible payload bytes
data_rng = random.Random(42)
# 64 top dirs x up to 4 levels of nesting.
dirs = []
for a in range(64):
    for b in range(8):
        depth = rng.randint(0, 3)
        parts = [f"d{a:02d}", f"s{b}"] + [f"n{i}" for i in range(depth)]
        dirs.append(os.path.join(root, *parts))
for d in dirs:
    os.makedirs(d, exist_ok=True)
files = []
def write(path, size, compressible):
    if compressible:
        # text-like, compressible content (exercises zlib in archive mode)
        words = [b"lorem", b"ipsum", b"ostree", b"commit", b"object", b"\n", b"dirtree", b"0123456789"]
        buf = bytearray()
        while len(buf) < size:
            buf += rng.choice(words) + b" "
        data = bytes(buf[:size])
    else:
        data = data_rng.randbytes(size)
    with open(path, 'wb') as f:
        f.write(data)
    files.append(path)
# 20000 small files: 0..16 KiB, half compressible, a few duplicates (dedup).
for i in range(20000):
    d = dirs[rng.randrange(len(dirs))]
    size = int(rng.paretovariate(1.2) * 600) % 16384
    p = os.path.join(d, f"f{i:05d}.dat")
    if i % 50 == 49 and files:
        src = files[rng.randrange(len(files))]
        with open(src, 'rb') as s, open(p, 'wb') as f:
            f.write(s.read())
        files.append(p)
    else:
        write(p, size, rng.random() < 0.5)
    os.chmod(p, 0o755 if rng.random() < 0.1 else 0o644)
# 12 large files: 8..32 MiB, mostly incompressible.
for i in range(12):
    p = os.path.join(dirs[rng.randrange(len(dirs))], f"large{i:02d}.bin")
    write(p, rng.randint(8, 32) << 20, i % 4 == 0)
# 1500 symlinks: relative, absolute, dangling.
for i in range(1500):
    d = dirs[rng.randrange(len(dirs))]
    kind = i % 3
    if kind == 0:
        target = os.path.relpath(files[rng.randrange(len(files))], d)
    elif kind == 1:
        target = "/usr/lib/x86_64-linux-gnu/lib%05d.so" % i
    else:
        target = "../missing/%d" % i
    os.symlink(target, os.path.join(d, f"l{i:04d}"))
# 200 empty dirs.
for i in range(200):
    os.makedirs(os.path.join(dirs[rng.randrange(len(dirs))], f"empty{i:03d}"), exist_ok=True)
PY
  # Fixed mtimes so the tree looks the same everywhere (not part of the
  # checksum in ostree anyway, but keeps `ls -l` comparisons stable).
  find "$dest.tmp" -exec touch -h -d 2020-01-01T00:00:00Z {} +
  mv "$dest.tmp" "$dest"
  touch "$dest.complete"
  summary "$dest"
}

case $what in
  rootfs) build_rootfs ;;
  gen) build_gen ;;
  both) build_gen; build_rootfs ;;
esac
