#!/usr/bin/env bash
# Pull benchmark: a realistic image (the Debian 12 tree of
# tests/fixtures/debian-tar.sh, as one layer and as a 5-layer variant) in a
# local docker-registry on 127.0.0.1, then, in the same run:
#   (a) banger image pull, from an empty cache to a registered ext4 image;
#   (b) the standard pipeline: skopeo copy to an OCI dir + umoci unpack +
#       mkfs.ext4 -d (same image size as banger's);
#   (c) the floor: decompressing the same layers to /dev/null with zcat.
# Prints the median of RUNS runs of each and the ratios. Not a test.
#   bench/pull.sh [BUILD_DIR]        RUNS=3 by default
# Needs docker-registry, skopeo, umoci, python3 (scripts/deps.sh --test).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
banger="$build/banger"
runs=${RUNS:-3}
cache="${BANGER_TEST_CACHE:-/var/cache/banger-test}/bench-pull"
for c in docker-registry skopeo umoci python3 mkfs.ext4 zcat; do
  command -v "$c" >/dev/null || { echo "bench/pull.sh: $c is missing (scripts/deps.sh --test)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/banger-bench-pull-XXXXXX)
trap '"$here/tests/fixtures/registry.sh" stop "$work/registry" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
ms() { date +%s%3N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
secs() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- the image: built once, cached beside the Debian tar it comes from ---
tar=$("$here/tests/fixtures/debian-tar.sh")
stamp=$(stat -c '%s-%Y' "$tar")
if [[ "$(cat "$cache/stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "building the benchmark layouts from $tar (once) ..." >&2
  rm -rf "$cache"
  mkdir -p "$cache/split"
  "$here/bench/oci-layout.sh" "$cache/single" single "$tar"
  python3 "$here/bench/split-layers.py" "$tar" "$cache/split/layer" 4
  "$here/bench/oci-layout.sh" "$cache/multi" multi "$cache"/split/layer{1,2,3,4,5}.tar
  rm -rf "$cache/split"
  echo "$stamp" >"$cache/stamp"
fi

addr=$("$here/tests/fixtures/registry.sh" start "$work/registry")
for v in single multi; do
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:$cache/$v:$v" "docker://$addr/bench/debian:$v"
done

layers_of() {  # the layer blob paths of a cached layout, oldest first
  local man
  man=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$cache/$1/index.json")
  python3 -c 'import json,sys; [print(sys.argv[2] + "/blobs/sha256/" + l["digest"][7:]) for l in json.load(open(sys.argv[1]))["layers"]]' \
    "$cache/$1/blobs/sha256/$man" "$cache/$1"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "image: $tar ($(du -m "$tar" | cut -f1) MB, $(tar -tf "$tar" | wc -l) entries); $runs runs each, medians"
echo "load average before: $(load) (on a shared machine every number below moves with it)"
printf "%-7s %7s %9s %12s %7s %7s %7s %7s %9s %8s %7s\n" variant layers "MB(gz)" "(a) banger" skopeo umoci mkfs "(b)" "(c) zcat" "b/a" "a/c"
for v in single multi; do
  mapfile -t blobs < <(layers_of "$v")
  gz_mb=$(du -cm "${blobs[@]}" | tail -1 | cut -f1)
  a=() s=() u=() m=() b=() c=()
  for ((i = 1; i <= runs; i++)); do
    home="$work/home-$v-$i"
    mkdir -p "$home"
    t0=$(ms)
    HOME=$home XDG_CACHE_HOME= XDG_STATE_HOME= XDG_CONFIG_HOME= "$banger" image pull "$addr/bench/debian:$v" \
      --name "bench-$v" >/dev/null 2>"$work/pull.err" || { cat "$work/pull.err" >&2; exit 1; }
    t1=$(ms)
    a+=($((t1 - t0)))
    img="$home/.local/state/banger/images/bench-$v.ext4"
    size=$(stat -c %s "$img")
    if [[ $i == 1 ]]; then
      e2fsck -fn "$img" >/dev/null 2>&1 || { echo "bench/pull.sh: e2fsck finds errors in $img" >&2; exit 1; }
    fi
    rm -rf "$home"

    t0=$(ms)
    skopeo --insecure-policy copy --quiet --src-tls-verify=false "docker://$addr/bench/debian:$v" "oci:$work/oci:$v"
    t1=$(ms)
    umoci unpack --image "$work/oci:$v" "$work/bundle" >/dev/null
    t2=$(ms)
    mkfs.ext4 -F -q -b 4096 -m 0 -E root_owner=0:0 -d "$work/bundle/rootfs" "$work/b.ext4" "$((size / 1024))k" >/dev/null
    t3=$(ms)
    s+=($((t1 - t0))) u+=($((t2 - t1))) m+=($((t3 - t2))) b+=($((t3 - t0)))
    rm -rf "$work/oci" "$work/bundle" "$work/b.ext4"

    t0=$(ms)
    for f in "${blobs[@]}"; do zcat "$f"; done >/dev/null
    t1=$(ms)
    c+=($((t1 - t0)))
  done
  ma=$(printf '%s\n' "${a[@]}" | median) mb=$(printf '%s\n' "${b[@]}" | median) mc=$(printf '%s\n' "${c[@]}" | median)
  printf "%-7s %7d %9d %11ss %6ss %6ss %6ss %6ss %8ss %7sx %6sx\n" "$v" "${#blobs[@]}" "$gz_mb" "$(secs "$ma")" \
    "$(secs "$(printf '%s\n' "${s[@]}" | median)")" "$(secs "$(printf '%s\n' "${u[@]}" | median)")" \
    "$(secs "$(printf '%s\n' "${m[@]}" | median)")" "$(secs "$mb")" "$(secs "$mc")" "$(ratio "$mb" "$ma")" "$(ratio "$ma" "$mc")"
done
echo "load average after: $(load)"
echo "b/a: how many times faster banger is than the standard pipeline (target >= 3)"
echo "a/c: banger's time over the decompression floor (target <= 1.3)"
