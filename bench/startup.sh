#!/usr/bin/env bash
# Start-up benchmark: a whole `banger vm list --json` process with 20 VMs in
# the state store, against `lua5.4 -e ''` (a bare Lua interpreter) timed in
# the same run, alternating, so both see the same machine load. Not a test:
# it prints numbers.
#   bench/startup.sh [BUILD_DIR [RUNS]]     (default: build, 31 runs each)
# Uses an isolated HOME; the VMs are made with `vm create --no-start` from a
# registered empty ext4 image and Debian's cloud kernel (fetched with
# apt-get download into /var/cache/banger-test on first use). Needs the
# lua5.4 package (scripts/deps.sh --test).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
runs=${2:-31}
banger="$build/banger"
command -v lua5.4 >/dev/null || { echo "startup.sh: needs lua5.4 (apt-get install lua5.4)" >&2; exit 1; }
home=$(mktemp -d /tmp/banger-bench-XXXXXX)
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/run"
export HOME=$home XDG_RUNTIME_DIR=$home/run
unset XDG_CONFIG_HOME XDG_STATE_HOME XDG_CACHE_HOME BANGER_DEBUG

load() { cut -d' ' -f1-3 /proc/loadavg; }

"$banger" kernel import "$("$here/tests/fixtures/kernel-deb.sh")" --name debian-cloud >/dev/null 2>&1
truncate -s 64M "$home/tiny.ext4"
mkfs.ext4 -q -F "$home/tiny.ext4"
"$banger" image register --rootfs "$home/tiny.ext4" --name tiny --kernel debian-cloud >/dev/null
for i in $(seq -w 1 20); do
  "$banger" vm create "vm$i" --image tiny --memory 256MiB --no-start >/dev/null 2>&1
done
count=$("$banger" vm list --json | grep -c '"name"')
[[ $count -eq 20 ]] || { echo "startup.sh: expected 20 VMs, vm list shows $count" >&2; exit 1; }

# One run of a command: "wall user+sys" in milliseconds, from bash's own
# `time` (a builtin: no extra process is started around the one measured).
TIMEFORMAT='%3R %3U %3S'
sample() {
  local out
  out=$({ time "$@" >/dev/null 2>&1; } 2>&1)
  awk '{ printf "%.1f %.1f\n", $1 * 1000, ($2 + $3) * 1000 }' <<<"$out"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== start-up: 'banger vm list --json' (20 VMs) vs 'lua5.4 -e \"\"', alternating, $runs runs each"
echo "build: $build"
echo "load average before: $(load) ($(nproc) CPUs; on a shared machine every number below moves with it)"
"$banger" vm list --json >/dev/null # warm the page cache
lua5.4 -e '' >/dev/null
: >"$home/a" && : >"$home/b"
for _ in $(seq 1 "$runs"); do
  sample "$banger" vm list --json >>"$home/a"
  sample lua5.4 -e '' >>"$home/b"
done
aw=$(cut -d' ' -f1 "$home/a" | median) ac=$(cut -d' ' -f2 "$home/a" | median)
bw=$(cut -d' ' -f1 "$home/b" | median) bc=$(cut -d' ' -f2 "$home/b" | median)
amin=$(cut -d' ' -f1 "$home/a" | sort -n | head -1) bmin=$(cut -d' ' -f1 "$home/b" | sort -n | head -1)
printf "%-26s %10s %10s %10s\n" "" "wall med" "wall min" "cpu med"
printf "%-26s %8.1fms %8.1fms %8.1fms\n" "banger vm list --json" "$aw" "$amin" "$ac"
printf "%-26s %8.1fms %8.1fms %8.1fms\n" "lua5.4 -e ''" "$bw" "$bmin" "$bc"
awk -v aw="$aw" -v bw="$bw" -v ac="$ac" -v bc="$bc" 'BEGIN {
  printf "ratio banger/lua5.4: wall %.2fx, cpu %s\n", aw / bw, (bc > 0 ? sprintf("%.2fx", ac / bc) : "n/a (lua5.4 under 1 ms)") }'
echo "load average after: $(load)"
echo "cpu = user + sys of the process (bash's time, 1 ms resolution); wall includes waiting for a CPU."
