#!/usr/bin/env bash
# The main job, end to end, on a local cache directory (no server needed):
# save a sample tree, restore it somewhere else, prove it is identical
# (bytes, modes, symlinks, mtimes), and show what the cache holds.
set -euo pipefail
bin=$(realpath "${1:-target/release/regcache}")
work=$(mktemp -d "${TMPDIR:-/tmp}/regcache-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/ci-run-1/sample/src/nested" "$work/ci-run-1/sample/empty" "$work/ci-run-2"
cd "$work/ci-run-1"
printf 'fn main() {}\n' > sample/src/main.rs
head -c 3000000 /dev/urandom > sample/src/nested/blob.bin
printf '#!/bin/sh\necho hi\n' > sample/run.sh && chmod 755 sample/run.sh
ln -s src/main.rs sample/link-to-main
ln sample/src/main.rs sample/hardlink-to-main
touch -d '2020-02-02 02:02:02.123456789' sample/src/main.rs

echo "== save (cache: $work/cache)"
"$bin" save --cache-to "type=local,dest=$work/cache,compression=zstd" sample

echo "== restore into a fresh directory"
cd "$work/ci-run-2"
"$bin" restore --cache-from "type=local,src=$work/cache" --cache-from type=local,src=/nonexistent

echo "== compare"
listing() { (cd "$1" && find . -mindepth 1 -printf '%p %y %m %s %T@ %l\n' | sort); }
diff <(listing "$work/ci-run-1/sample") <(listing "$work/ci-run-2/sample")
diff -r "$work/ci-run-1/sample" "$work/ci-run-2/sample"
echo "identical: contents, modes, symlinks and nanosecond mtimes"

echo "== inspect"
"$bin" inspect "type=local,src=$work/cache"
