#!/usr/bin/env bash
# What driver.isolate costs: the same non-root owner (nobody) creates a VM,
# runs one command in it and deletes it, with QEMU spawned by banger itself
# and with QEMU started by the root helper as a uid of its own (descriptors
# for every file, kernel and initrd copied into sealed memfds). Both in the
# same run, alternating, so the machine's load hits them alike. Not a test:
# it prints numbers. Run as root (it starts the helper).
#   bench/isolate.sh [BUILD_DIR] [ROUNDS]     (defaults: build, 5)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
rounds=${2:-5}
banger="$build/banger"
owner=65534
[[ $(id -u) == 0 ]] || { echo "run as root: the benchmark starts the root helper" >&2; exit 2; }

work=$(mktemp -d /tmp/banger-bench-isolate-XXXXXX)
chmod 0755 "$work"
home=$work/home
sock=$work/run/helper.sock
mkdir -p "$home/run"
helper_pid=
cleanup() {
  as_owner vm delete -f bench >/dev/null 2>&1 || true
  [[ -n $helper_pid ]] && kill "$helper_pid" 2>/dev/null && wait "$helper_pid" 2>/dev/null
  rm -rf "$work"
}
as_owner() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" XDG_RUNTIME_DIR="$home/run" \
    setpriv --reuid=$owner --regid=$owner --clear-groups "$banger" "$@"
}
trap cleanup EXIT

"$build/banger-helper" --socket "$sock" --owner $owner:$owner 2>/dev/null &
helper_pid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done

HOME=$home XDG_RUNTIME_DIR=$home/run "$banger" kernel import "$("$here/tests/fixtures/kernel-deb.sh")" \
  --name debian-cloud >/dev/null 2>&1
HOME=$home XDG_RUNTIME_DIR=$home/run "$banger" run "$here/tests/lua/fixtures/make_rootfs.lua" "$home/tiny.ext4" \
  "$build/cli/banger-agent/banger-agent"
HOME=$home XDG_RUNTIME_DIR=$home/run "$banger" image register --rootfs "$home/tiny.ext4" --name tiny \
  --kernel debian-cloud >/dev/null
chown -R $owner:$owner "$home"
chmod 0700 "$home/run"

ms() { date +%s%3N; }
config() {
  mkdir -p "$home/.config/banger"
  printf 'return { network = { mode = "off" }, helper = { socket = "%s" }, driver = { isolate = %s } }\n' \
    "$sock" "$1" > "$home/.config/banger/config.lua"
  chown -R $owner:$owner "$home/.config"
}
# One round: create, exec, delete; prints the launch stage (request to QMP
# answering, from banger's structured log), create and whole-cycle ms.
round() {
  local t0 t1 t2 launch
  t0=$(ms)
  as_owner vm create bench --image tiny --memory 256MiB >/dev/null 2>&1
  t1=$(ms)
  read -r _ launch _ < <(as_owner run "$here/bench/stage_times.lua")
  as_owner vm exec bench -- true
  as_owner vm delete -f bench >/dev/null 2>&1
  t2=$(ms)
  echo "$launch $((t1 - t0)) $((t2 - t0))"
}

echo "== vm create / create+exec+delete as uid $owner, QEMU $(qemu-system-x86_64 --version | head -1 | cut -d' ' -f4), $(nproc) cores"
printf "%-6s %14s %14s %14s %14s %14s %14s\n" round direct-launch isol-launch direct-create isol-create \
  direct-cycle isol-cycle
dl=() il=() dc=() ic=() dy=() iy=()
for i in $(seq "$rounds"); do
  config false; read -r l c y < <(round); dl+=("$l"); dc+=("$c"); dy+=("$y")
  config true; read -r l2 c2 y2 < <(round); il+=("$l2"); ic+=("$c2"); iy+=("$y2")
  printf "%-6s %12dms %12dms %12dms %12dms %12dms %12dms\n" "$i" "$l" "$l2" "$c" "$c2" "$y" "$y2"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mdl=$(median "${dl[@]}") mil=$(median "${il[@]}")
md=$(median "${dc[@]}") mi=$(median "${ic[@]}") mdy=$(median "${dy[@]}") miy=$(median "${iy[@]}")
echo "median launch: direct ${mdl}ms, isolated ${mil}ms (spawn or helper request, to QMP answering)"
echo "median create: direct ${md}ms, isolated ${mi}ms, isolated/direct $(awk -v a="$mi" -v b="$md" 'BEGIN{printf "%.2fx", a/b}')"
echo "median cycle:  direct ${mdy}ms, isolated ${miy}ms, isolated/direct $(awk -v a="$miy" -v b="$mdy" 'BEGIN{printf "%.2fx", a/b}')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
