#!/usr/bin/env bash
# Generate the seed corpora in fuzz/corpus/<target>/ from repositories built by
# the real ostree CLI (archive and bare-user), via the gen_seeds example.
# Nothing binary is committed: corpus/ is gitignored and rebuilt here.
#
# Usage: fuzz/seed.sh            (needs `ostree` on PATH)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/corpus"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v ostree >/dev/null || { echo "seed.sh: ostree not found" >&2; exit 1; }

# A source tree with the shapes ostree distinguishes: regular, empty,
# executable/setuid, compressible and incompressible content, symlinks
# (relative, absolute, dangling), nested and empty directories, xattrs.
src="$work/src"
mkdir -p "$src/etc/conf.d" "$src/usr/bin" "$src/usr/share/empty" "$src/var"
echo hi >"$src/a"
: >"$src/empty"
printf '#!/bin/sh\necho ok\n' >"$src/usr/bin/tool"
chmod 4755 "$src/usr/bin/tool"
chmod 0600 "$src/a"
chmod 0700 "$src/var"
printf 'compressible line %s\n' $(seq 1 2000) >"$src/etc/big.txt"
head -c 3000 /dev/urandom >"$src/etc/random.bin"
printf 'k=v\n' >"$src/etc/conf.d/x.conf"
ln -s a "$src/link"
ln -s /usr/bin/tool "$src/usr/bin/abs-link"
ln -s does/not/exist "$src/dangling"
for i in $(seq 1 40); do echo "$i" >"$src/usr/share/f$(printf %03d "$i")"; done
if command -v setfattr >/dev/null; then
    setfattr -n user.oxtree -v seed "$src/a" 2>/dev/null || true
    setfattr -n user.bin -v 0x00ff00 "$src/etc/random.bin" 2>/dev/null || true
    setfattr -n user.dir -v d "$src/etc" 2>/dev/null || true
fi

ts=--timestamp=2020-01-01T00:00:00Z
for mode in archive bare-user; do
    repo="$work/repo-$mode"
    ostree init --repo="$repo" --mode="$mode"
    ostree commit --repo="$repo" -b main -s "first" "$ts" "$src" >/dev/null
    echo changed >>"$src/a"
    ostree commit --repo="$repo" -b main -s "second ($mode)" \
        -m $'a body\nwith two lines and a \'quote\'' \
        --add-metadata-string=version=1.0 \
        --add-metadata-string=ostree.endoflife="don't use" \
        --add-metadata=i64='int64 -42' \
        --add-metadata=u64='uint64 18446744073709551615' \
        --add-metadata=u32='uint32 7' \
        --add-metadata=i16='int16 -3' \
        --add-metadata=u16='uint16 9' \
        --add-metadata=byte='byte 0x7f' \
        --add-metadata=bool=true \
        --add-metadata=dbl=3.5 \
        --add-metadata=bytes='b"bytes"' \
        --add-metadata=ay='[byte 1, 2, 0]' \
        --add-metadata=strv='["x", "y\tz"]' \
        --add-metadata=dict='{"a": <1>, "b": <"s">}' \
        --add-metadata=tuple='(1, "x", true)' \
        --add-metadata=maybe='just int32 3' \
        --add-metadata=nothing='@ms nothing' \
        --add-metadata=path="objectpath '/a/b'" \
        --add-metadata=sig="signature 'a{sv}'" \
        --add-metadata=nested='<<"deep">>' \
        --add-metadata=empty='@a{ss} {}' \
        --add-metadata=aay='@aay []' \
        --add-detached-metadata-string=detached=yes \
        --generate-sizes "$ts" "$src" >/dev/null
    ostree commit --repo="$repo" -b other --owner-uid=1000 --owner-gid=100 \
        --bind-ref=other2 -s "owned" "$ts" "$src" >/dev/null
    ostree commit --repo="$repo" -b tiny --tree=dir="$src/etc/conf.d" -s t "$ts" >/dev/null
    # Static deltas (delta_superblock, delta_part): from the parent (rollsum
    # and bsdiff), from scratch, and an inline one (a single superblock).
    ostree static-delta generate --repo="$repo" main >/dev/null 2>&1
    ostree static-delta generate --repo="$repo" --empty main >/dev/null 2>&1
    ostree static-delta generate --repo="$repo" --empty --inline other >/dev/null 2>&1
done

rm -rf "$corpus"
mkdir -p "$corpus"
# gen_seeds fails if oxtree-object cannot decode an object ostree wrote; that
# is a bug worth a look, but the corpus is still usable.
cargo run -q --manifest-path "$here/Cargo.toml" --example gen_seeds -- \
    "$corpus" "$work/repo-archive" "$work/repo-bare-user" ||
    echo "seed.sh: WARNING: some objects written by ostree did not decode (above)" >&2
for d in "$corpus"/*/; do
    printf '  %-15s %4d seeds\n' "$(basename "$d")" "$(ls "$d" | wc -l)"
done
