#!/usr/bin/env bash
# Snapshots and forks against cold boots, measured in one run on the
# defaults (Debian image, 1 GiB, 2 vCPUs): (a) `vm run --cold -- true`,
# (b) warm `vm run -- true`, alternating, medians; (c) `vm fork --count 4`
# of a running VM, per VM; (d) the pause a snapshot imposes on its source;
# (e) the private memory each idle fork adds to its RAM mapping, against the
# guest's memory size. Prints the load average with every number. Not a test.
#   bench/snapshot.sh [BUILD_DIR] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
runs=${2:-5}
banger="$build/banger"
home=$(mktemp -d /tmp/banger-snap-XXXXXX)
cleanup() {
  HOME=$home XDG_RUNTIME_DIR=$home/run "$banger" vm prune -f >/dev/null 2>&1 || true
  for v in $(HOME=$home XDG_RUNTIME_DIR=$home/run "$banger" vm list --json 2>/dev/null | grep -o '"name": *"[^"]*"' | cut -d'"' -f4); do
    HOME=$home XDG_RUNTIME_DIR=$home/run "$banger" vm delete -f "$v" >/dev/null 2>&1 || true
  done
  rm -rf "$home"
}
trap cleanup EXIT
mkdir -p "$home/run" "$home/repo"
export HOME=$home XDG_RUNTIME_DIR=$home/run
unset XDG_CONFIG_HOME XDG_STATE_HOME XDG_CACHE_HOME
git -C "$home/repo" init -q
echo hello >"$home/repo/file.txt"
git -C "$home/repo" add file.txt
git -C "$home/repo" -c user.email=b@e -c user.name=b commit -q -m init

ms() { date +%s%3N; }
load() { cut -d' ' -f1 /proc/loadavg; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
vm_run() { (cd "$home/repo" && "$banger" vm run --rm "$@" -- true >/dev/null 2>&1); }

echo "== set-up: default kernel and image, and the first (cold) run that takes the warm snapshot"
t0=$(ms); vm_run; echo "first vm run: $(( $(ms) - t0 )) ms (load $(load))"

echo
echo "== (a) vm run --cold -- true  vs  (b) warm vm run -- true, alternating, $runs each"
printf "%-4s %12s %12s %8s\n" run cold warm load
cold=() warm=()
for i in $(seq 1 "$runs"); do
  t0=$(ms); vm_run --cold; c=$(( $(ms) - t0 ))
  t0=$(ms); vm_run; w=$(( $(ms) - t0 ))
  cold+=("$c") warm+=("$w")
  printf "%-4s %10dms %10dms %8s\n" "$i" "$c" "$w" "$(load)"
done
mc=$(printf "%s\n" "${cold[@]}" | median)
mw=$(printf "%s\n" "${warm[@]}" | median)
echo "median cold ${mc} ms, warm ${mw} ms: warm/cold = $(awk -v w="$mw" -v c="$mc" 'BEGIN { printf "%.3f", w / c }')x (target <= 0.1x)"
echo "the last warm run: $("$banger" run "$here/bench/restore_times.lua")"

echo
echo "== (d) the pause a snapshot imposes on a running VM, and (c) vm fork --count 4"
"$banger" vm create src >/dev/null 2>&1
"$banger" vm exec src -- true
pauses=() per_vm=()
printf "%-4s %10s %14s %12s %8s\n" run pause fork-total per-fork load
for i in $(seq 1 "$runs"); do
  p=$("$banger" vm snapshot src --name "p$i" --json | grep -o '"pause_ms": *[0-9]*' | grep -o '[0-9]*$')
  t0=$(ms); "$banger" vm fork src --count 4 --name "f$i" >/dev/null 2>&1; f=$(( $(ms) - t0 ))
  pauses+=("$p") per_vm+=("$(( f / 4 ))")
  printf "%-4s %8dms %12dms %10dms %8s\n" "$i" "$p" "$f" "$(( f / 4 ))" "$(load)"
  if [[ $i -lt $runs ]]; then
    for n in 1 2 3 4; do "$banger" vm delete -f "f$i-$n" >/dev/null 2>&1; done
  fi
done
echo "median pause $(printf "%s\n" "${pauses[@]}" | median) ms (target <= 50 ms);" \
  "median fork $(printf "%s\n" "${per_vm[@]}" | median) ms per VM (target <= 500 ms), whole command incl. its snapshot"

echo
echo "== (e) private memory of idle forks in their RAM mapping (after 10 s idle)"
sleep 10
mem_mib=$("$banger" vm show src --json | grep -o '"memory_mib": *[0-9]*' | grep -o '[0-9]*$')
for n in 1 2 3 4; do
  pid=$("$banger" vm show "f$runs-$n" --json | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
  # the private mapping of the snapshot's ram file: the pages the fork wrote
  # are its own anonymous copies; the rest is the page cache all forks share
  priv=$(awk '/ \/.*\/snapshots\/[0-9a-f]+\/ram$/ { m = 1; next } /^[0-9a-f]+-[0-9a-f]+ / { m = 0 }
              m && /^Anonymous:/ { s += $2 } END { print s + 0 }' "/proc/$pid/smaps")
  echo "f$runs-$n: ${priv} KiB private of ${mem_mib} MiB ($(awk -v p="$priv" -v m="$mem_mib" 'BEGIN { printf "%.1f", 100 * p / 1024 / m }')%, target <= 10%), load $(load)"
done
