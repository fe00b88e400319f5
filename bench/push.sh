#!/usr/bin/env bash
# Push benchmark: the Debian 12 tree of tests/fixtures/debian-tar.sh as a
# banger image (image import), pushed to a local docker-registry on
# 127.0.0.1. In the same run, medians of RUNS runs each:
#   (a) banger image push --dry-run: the layer alone (ext4 walk, pax tar,
#       igzip, both digests, spool file fsynced);
#   (b) banger image push to a new repository: (a) plus the upload;
#   (c) the usual way to get the same layer: loop-mount the image, GNU tar
#       --xattrs of the tree piped into gzip -6 (what docker and most tools
#       compress with), to a file, plus its sha256sum.
# Not a test. Needs root (the mount), docker-registry, python3.
#   bench/push.sh [BUILD_DIR]        RUNS=3 by default
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
banger="$build/banger"
runs=${RUNS:-3}
for c in docker-registry python3 gzip tar sha256sum mount; do
  command -v "$c" >/dev/null || { echo "bench/push.sh: $c is missing (scripts/deps.sh --test)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "bench/push.sh: (c) loop-mounts the image: run as root" >&2; exit 1; }

work=$(mktemp -d /tmp/banger-bench-push-XXXXXX)
trap 'umount "$work/mnt" 2>/dev/null || true; "$here/tests/fixtures/registry.sh" stop "$work/registry" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
ms() { date +%s%3N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
secs() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

tar=$("$here/tests/fixtures/debian-tar.sh")
export HOME="$work/home"
mkdir -p "$HOME"
"$banger" image import --name deb "$tar" >/dev/null 2>&1
img="$HOME/.local/state/banger/images/deb.ext4"
addr=$("$here/tests/fixtures/registry.sh" start "$work/registry")
mkdir -p "$work/mnt"

a=() b=() c=()
for i in $(seq "$runs"); do
  t0=$(ms); "$banger" image push deb --dry-run --json >"$work/dry.json" 2>/dev/null; a+=($(($(ms) - t0)))
  t0=$(ms); "$banger" image push deb "$addr/bench/run$i:v1" >/dev/null 2>&1; b+=($(($(ms) - t0)))
  t0=$(ms)
  mount -o ro,noload,loop "$img" "$work/mnt"
  tar --xattrs --xattrs-include='*' --acls --numeric-owner -C "$work/mnt" -cf - . | gzip -6 >"$work/layer.tar.gz"
  sha256sum "$work/layer.tar.gz" >/dev/null
  umount "$work/mnt"
  c+=($(($(ms) - t0)))
done
size=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["size"])' "$work/dry.json")
tar_bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tar_bytes"])' "$work/dry.json")
ma=$(printf '%s\n' "${a[@]}" | median) mb=$(printf '%s\n' "${b[@]}" | median) mc=$(printf '%s\n' "${c[@]}" | median)
echo "image: $(stat -c %s "$img") bytes; layer: $tar_bytes bytes of tar, $size bytes gzip (igzip -1); gzip -6: $(stat -c %s "$work/layer.tar.gz") bytes"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(a) push --dry-run: $(secs "$ma") s   (b) push: $(secs "$mb") s   (c) mount + tar | gzip -6: $(secs "$mc") s   c/a: $(ratio "$mc" "$ma")x"
