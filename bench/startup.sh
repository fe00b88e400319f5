#!/usr/bin/env bash
# Start-up benchmark: a whole `banger vm list --json` process with 20 VMs in
# the state store, against `lua5.4 -e ''` (a bare Lua interpreter) timed in
# the same run, alternating, so both see the same machine load. Not a test:
# it prints numbers.
#   bench/startup.sh [BUILD_DIR [RUNS]]     (default: build, 31 runs each)
# Uses an isolated HOME; the VMs are made with `vm create --no-start` from a
# registered empty ext4 image and Debian's cloud kernel (fetched with
# apt-get download into /var/cache/banger-test on first use). Needs the
# lua5.4 package and python3 (scripts/deps.sh --test).
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

echo "== start-up: 'banger vm list --json' (20 VMs) vs 'lua5.4 -e \"\"', alternating, $runs runs each"
echo "build: $build"
echo "load average before: $(load) ($(nproc) CPUs; on a shared machine every number below moves with it)"
# Each run is started with posix_spawn and reaped with wait4, which gives
# the process's own CPU time (user + sys, microseconds); wall is measured
# around the same two calls. Nothing else runs between A and B.
python3 - "$runs" "$banger" <<'PY'
import os, statistics, sys, time
runs, banger = int(sys.argv[1]), sys.argv[2]
cmds = {"a": [banger, "vm", "list", "--json"], "b": ["lua5.4", "-e", ""]}
null = os.open(os.devnull, os.O_WRONLY)
acts = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
def once(argv):
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=acts)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"startup.sh: {' '.join(argv)} failed")
    return wall * 1000, (ru.ru_utime + ru.ru_stime) * 1000
for k in cmds:  # warm the page cache
    once(cmds[k])
res = {"a": [], "b": []}
for _ in range(runs):
    for k in ("a", "b"):
        res[k].append(once(cmds[k]))
med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v), min(w for w, _ in v)) for k, v in res.items()}
print(f"{'':26} {'wall med':>10} {'wall min':>10} {'cpu med':>10}")
for k, name in (("a", "banger vm list --json"), ("b", "lua5.4 -e ''")):
    w, c, m = med[k]
    print(f"{name:26} {w:8.2f}ms {m:8.2f}ms {c:8.2f}ms")
pairs = [ca / cb for (_, ca), (_, cb) in zip(res["a"], res["b"]) if cb > 0]
print(f"ratio banger/lua5.4: wall {med['a'][0] / med['b'][0]:.2f}x (of medians), "
      f"cpu {med['a'][1] / med['b'][1]:.2f}x (of medians), cpu {statistics.median(pairs):.2f}x (median of pairs)")
print(f"banger vm list --json under 10 ms wall: {sum(w <= 10 for w, _ in res['a'])} of {runs} runs")
PY
echo "load average after: $(load)"
echo "cpu = user + sys of the process (wait4's rusage); wall includes waiting for a CPU."
