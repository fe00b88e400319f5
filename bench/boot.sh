#!/usr/bin/env bash
# Boot benchmark: where the time goes from `vm create` to the first command,
# and how VM creation scales with concurrency. Not a test: it prints numbers.
#   bench/boot.sh [BUILD_DIR [OTHER_BUILD_DIR]]     (default: build)
# With a second build (say the code before a change), the fake-Firecracker
# `vm create` and an idle banger process are also timed for both builds,
# alternating in the same session, and the ratio of the medians printed.
# Uses an isolated HOME; needs the Debian cloud kernel package (fetched with
# apt-get download into /var/cache/banger-test on first use).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
other=${2:+$(cd "$2" && pwd)}
banger="$build/banger"
home=$(mktemp -d /tmp/banger-bench-XXXXXX)
agents=()
trap 'HOME=$home XDG_RUNTIME_DIR=$home/run "$banger" vm prune -f >/dev/null 2>&1 || true; for a in "${agents[@]}"; do kill "$a" 2>/dev/null; done; rm -rf "$home"' EXIT
mkdir -p "$home/run"
export HOME=$home XDG_RUNTIME_DIR=$home/run
unset XDG_CONFIG_HOME XDG_STATE_HOME XDG_CACHE_HOME

ms() { date +%s%3N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

"$banger" kernel import "$("$here/tests/fixtures/kernel-deb.sh")" --name debian-cloud >/dev/null 2>&1
"$banger" run "$here/tests/lua/fixtures/make_rootfs.lua" "$home/tiny.ext4" "$build/cli/banger-agent/banger-agent"
"$banger" image register --rootfs "$home/tiny.ext4" --name tiny --kernel debian-cloud >/dev/null

echo "== boot stages (qemu driver, $(HOME=$home "$banger" run /dev/stdin <<<'local c=banger.vmm.detect(); io.write(c.kvm_usable and "kvm" or "tcg")'))"
echo "load average before: $(load) (on a shared machine every number below moves with it)"
printf "%-4s %10s %10s %12s %10s %10s\n" run pre-launch qemu-start boot+ready exec total
for i in 1 2 3; do
  t0=$(ms)
  "$banger" vm create "b$i" --image tiny --memory 256MiB >/dev/null 2>&1
  t1=$(ms)
  "$banger" vm exec "b$i" -- true
  t2=$(ms)
  read -r prelaunch qemustart _ < <("$banger" run "$here/bench/stage_times.lua")
  printf "%-4s %8dms %8dms %10dms %8dms %8dms\n" "$i" "$prelaunch" "$qemustart" "$(( t1 - t0 - prelaunch - qemustart ))" "$((t2 - t1))" "$((t2 - t0))"
  "$banger" vm delete -f "b$i" >/dev/null 2>&1
done
echo "pre-launch = banger before spawning the hypervisor (DB, overlay, work disk);"
echo "qemu-start = spawn to QMP answering; boot+ready = the rest of 'vm create' (guest kernel,"
echo "init and agent, plus banger's process start-up and exit);"
echo "exec = a whole 'banger vm exec -- true' process, including its own start-up."
echo "load average after: $(load)"

echo
echo "== creating 20 VMs (disks and state, --no-start): serial vs concurrent (load average $(load))"
t0=$(ms)
for i in $(seq 1 20); do "$banger" vm create "s$i" --image tiny --no-start >/dev/null 2>&1; done
serial=$(( $(ms) - t0 ))
"$banger" vm prune -f >/dev/null 2>&1
t0=$(ms)
pids=()
for i in $(seq 1 20); do "$banger" vm create "c$i" --image tiny --no-start >/dev/null 2>&1 & pids+=($!); done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=$((fail + 1)); done
concurrent=$(( $(ms) - t0 ))
count=$("$banger" vm list --json | grep -c '"name"')
echo "serial: ${serial}ms  concurrent: ${concurrent}ms  ratio: $(awk -v s="$serial" -v c="$concurrent" 'BEGIN{printf "%.2fx", s/c}')  failures: $fail  VMs listed: $count"

echo
echo "== banger's own overhead: the fake firecracker (an API-faithful stand-in that boots nothing)"
echo "load average before: $(load)"
fake="$build/tests/fake-firecracker/fake-firecracker"
if [[ -x "$fake" ]]; then
  "$build/cli/banger-agent/banger-agent" --unix "$home/agent.sock" &
  agent=$!
  sleep 0.2
  mkdir -p "$home/.config/banger"
  echo "return { driver = { name = 'firecracker', firecracker_bin = '$fake' } }" > "$home/.config/banger/config.lua"
  export FAKE_FC_VSOCK_BACKEND="$home/agent.sock"
  printf "%-4s %10s %10s %10s\n" run create exec stop+delete
  for i in 1 2 3 4 5; do
    t0=$(ms); "$banger" vm create "f$i" --image tiny >/dev/null 2>&1; t1=$(ms)
    "$banger" vm exec "f$i" -- true; t2=$(ms)
    "$banger" vm delete -f "f$i" >/dev/null 2>&1; t3=$(ms)
    printf "%-4s %8dms %8dms %8dms\n" "$i" "$((t1 - t0))" "$((t2 - t1))" "$((t3 - t2))"
  done
  echo "create = the whole 'vm create' process to the agent answering (hypervisor time ~0 here)"
  floor=()
  for i in $(seq 1 11); do t0=$(ms); "$banger" version >/dev/null; floor+=($(($(ms) - t0))); done
  echo "a banger process that does nothing ('banger version', median of 11): $(printf '%s\n' "${floor[@]}" | sort -n | sed -n 6p)ms"
  t0=$(ms)
  for i in $(seq 1 20); do "$banger" vm create "fs$i" --image tiny >/dev/null 2>&1; done
  serial=$(( $(ms) - t0 ))
  "$banger" vm list --json | grep -o '"name": "fs[0-9]*"' | cut -d'"' -f4 | xargs -r "$banger" vm delete -f >/dev/null 2>&1
  t0=$(ms)
  pids=()
  for i in $(seq 1 20); do "$banger" vm create "fc$i" --image tiny >/dev/null 2>&1 & pids+=($!); done
  fail=0
  for p in "${pids[@]}"; do wait "$p" || fail=$((fail + 1)); done
  concurrent=$(( $(ms) - t0 ))
  running=$("$banger" vm list --json | grep -c '"state": "running"')
  echo "20 booted VMs: serial ${serial}ms, concurrent ${concurrent}ms, ratio $(awk -v s="$serial" -v c="$concurrent" 'BEGIN{printf "%.2fx", s/c}'), failures $fail, running $running"
  "$banger" vm list --json | grep -o '"name": "fc[0-9]*"' | cut -d'"' -f4 | xargs -r "$banger" vm delete -f >/dev/null 2>&1
  kill "$agent"
  echo "load average after: $(load)"
else
  echo "(build the tests to get $fake)"
fi

if [[ -n "$other" && -x "$fake" && -x "$other/tests/fake-firecracker/fake-firecracker" ]]; then
  echo
  echo "== the same against $other, alternating (11 rounds, medians)"
  # One home per build: its own kernel import (initramfs), tiny image, fake and agent.
  setup() {  # build dir, home
    mkdir -p "$2/run" "$2/.config/banger"
    HOME=$2 XDG_RUNTIME_DIR=$2/run "$1/banger" kernel import "$("$here/tests/fixtures/kernel-deb.sh")" --name debian-cloud >/dev/null 2>&1
    HOME=$2 XDG_RUNTIME_DIR=$2/run "$1/banger" run "$here/tests/lua/fixtures/make_rootfs.lua" "$2/tiny.ext4" "$1/cli/banger-agent/banger-agent"
    HOME=$2 XDG_RUNTIME_DIR=$2/run "$1/banger" image register --rootfs "$2/tiny.ext4" --name tiny --kernel debian-cloud >/dev/null
    echo "return { driver = { name = 'firecracker', firecracker_bin = '$1/tests/fake-firecracker/fake-firecracker' } }" \
      >"$2/.config/banger/config.lua"
    "$1/cli/banger-agent/banger-agent" --unix "$2/agent.sock" &
    agents+=($!)
  }
  setup "$build" "$home/a"
  setup "$other" "$home/b"
  sleep 0.2
  declare -A t
  echo "load average before: $(load)"
  for r in $(seq 1 11); do
    for side in a b; do
      bin=$build; [[ $side == b ]] && bin=$other
      run() { HOME=$home/$side XDG_RUNTIME_DIR=$home/$side/run FAKE_FC_VSOCK_BACKEND=$home/$side/agent.sock "$bin/banger" "$@"; }
      t0=$(ms); run version >/dev/null; t1=$(ms)
      run vm create "x$r" --image tiny >/dev/null 2>&1; t2=$(ms)
      run vm delete -f "x$r" >/dev/null 2>&1
      t[$side.idle]+="$((t1 - t0)) " t[$side.create]+="$((t2 - t1)) "
    done
  done
  med() { printf '%s\n' $1 | sort -n | sed -n 6p; }
  for what in idle create; do
    a=$(med "${t[a.$what]}") b=$(med "${t[b.$what]}")
    printf "%-8s %-48s %6dms  %-30s %6dms  ratio %s\n" "$what" "$build" "$a" "$other" "$b" \
      "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
  done
  echo "idle = 'banger version' (a banger process that does nothing); create = 'vm create' against each build's fake"
  echo "load average after: $(load)"
fi
