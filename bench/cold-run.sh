#!/usr/bin/env bash
# Cold boot benchmark: `vm run --rm -- true` on the Debian golden image
# (systemd), as a user runs it with the kernel and image present (with
# --cold on a build that has warm runs, so every run boots), and where
# the guest's time goes (console and systemd's own timestamps, guest time).
# With a second build directory both builds alternate in the same session
# (each with its own home, kernel import and image build) and the ratio of
# their medians is printed. Not a test.
#   bench/cold-run.sh [BUILD_DIR [OTHER_BUILD_DIR]]     RUNS=3 by default
# Uses the cached kernel package and mmdebstrap tar of tests/fixtures (made
# on first use). Each home gets a bridge of its own (br-fc-bcN), removed at
# the end, so VMs of other banger users on this machine do not interfere.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
builds=("$(cd "${1:-$here/build}" && pwd)")
[[ -n "${2:-}" ]] && builds+=("$(cd "$2" && pwd)")
runs=${RUNS:-3}
work=$(mktemp -d /tmp/banger-cold-XXXXXX)
ms() { date +%s%3N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
secs() { awk -v m="$1" 'BEGIN { printf "%.1f", m / 1000 }'; }
b() { local i=$1; shift; HOME=$work/h$i XDG_RUNTIME_DIR=$work/h$i/run "${builds[$i]}/banger" "$@"; }
made_bridges=()
cleanup() {
  for i in "${!builds[@]}"; do b "$i" vm delete -f breakdown >/dev/null 2>&1 || true; done
  for br in "${made_bridges[@]}"; do ip link del "$br" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
unset XDG_CONFIG_HOME XDG_STATE_HOME XDG_CACHE_HOME

deb=$("$here/tests/fixtures/kernel-deb.sh")
tar=$("$here/tests/fixtures/debian-tar.sh")
for i in "${!builds[@]}"; do
  h=$work/h$i
  mkdir -p "$h/run" "$h/repo" "$h/.config/banger"
  git -C "$h/repo" init -q
  br=br-fc-bc$i
  ip link show "$br" >/dev/null 2>&1 || made_bridges+=("$br")
  printf 'return { network = { bridge = "%s", bridge_ip = "172.31.%d.1", dns = "127.0.0.1:%d" } }\n' \
    "$br" $((201 + i)) $((42201 + i)) >"$h/.config/banger/config.lua"
  b "$i" kernel import "$deb" --name debian-cloud >/dev/null 2>&1
  b "$i" image build debian --tar "$tar" >/dev/null 2>&1
done

declare -A cold_flag
for i in "${!builds[@]}"; do
  cold_flag[$i]=no
  b "$i" vm run --help 2>&1 | grep -q -- '--cold' && cold_flag[$i]=yes
done
echo "== cold 'vm run --rm -- true' (Debian 12 golden image, systemd, TCG), $runs runs each, alternating"
for i in "${!builds[@]}"; do
  echo "build $i: ${builds[$i]} ($(b "$i" version 2>/dev/null | head -1))$([[ ${cold_flag[$i]} == yes ]] && echo ", with --cold")"
done
declare -A times
printf "%-4s %-8s %-6s %9s   %s\n" run build cpus time "load average before"
for ((r = 1; r <= runs; r++)); do
  for cpus in default 1; do
    for i in "${!builds[@]}"; do
      flags=()
      [[ $cpus == default ]] || flags=(--cpus "$cpus")
      [[ ${cold_flag[$i]} == yes ]] && flags+=(--cold)
      l=$(load)
      t0=$(ms)
      (cd "$work/h$i/repo" && b "$i" vm run --rm "${flags[@]}" -- true >/dev/null 2>"$work/run.err") ||
        { cat "$work/run.err" >&2; exit 1; }
      t=$(($(ms) - t0))
      times[$i.$cpus]+="$t "
      printf "%-4s %-8s %-6s %8ss   %s\n" "$r" "$i" "$cpus" "$(secs "$t")" "$l"
    done
  done
done
echo "medians:"
for cpus in default 1; do
  line="  cpus $cpus:"
  for i in "${!builds[@]}"; do
    m=$(printf '%s\n' ${times[$i.$cpus]} | median)
    line+=" build $i $(secs "$m") s;"
    eval "med_$i=$m"
  done
  if [[ ${#builds[@]} -eq 2 ]]; then
    line+=" build 0 / build 1 = $(awk -v a="$med_0" -v b="$med_1" 'BEGIN { printf "%.2f", a / b }')"
  fi
  echo "$line"
done
echo "load average after: $(load)"

echo
echo "== where a cold boot's time goes (one 'vm create' per build, then guest timestamps; guest seconds since the kernel started)"
probe='
mono() { systemctl show -p "$1" --value ${2:+"$2"} | awk "{ printf \"%.2f\", \$1 / 1000000 }"; }
systemctl is-system-running --wait >/dev/null 2>&1
echo "systemd started|$(mono UserspaceTimestampMonotonic)"
echo "generators done|$(mono GeneratorsFinishTimestampMonotonic)"
echo "units loaded|$(mono UnitsLoadFinishTimestampMonotonic)"
echo "agent started|$(mono ExecMainStartTimestampMonotonic banger-agent.service)"
echo "sshd ready|$(mono ActiveEnterTimestampMonotonic ssh.service)"
echo "boot finished (default target)|$(mono FinishTimestampMonotonic)"
echo "units started|$(systemctl list-units --no-legend --state=active | wc -l)"
'
declare -A rows
order=()
for i in "${!builds[@]}"; do
  l=$(load)
  t0=$(ms)
  b "$i" vm create breakdown >/dev/null 2>&1
  rows["vm create to the agent answering (wall s)|$i"]=$(secs $(($(ms) - t0)))
  rows["load average before|$i"]=$l
  while IFS='|' read -r k v; do
    [[ -n $k ]] || continue
    rows["$k|$i"]=$v
  done < <(b "$i" vm exec breakdown -- sh -c "$probe")
  console=$(b "$i" vm logs breakdown)  # after the probe, which waits for the boot to finish
  rows["kernel runs /init|$i"]=$(sed -n 's/^\[ *\([0-9.]*\)\] Run \/init.*/\1/p' <<<"$console" | head -1)
  rows["crng ready|$i"]=$(sed -n 's/^\[ *\([0-9.]*\)\] random: crng init done.*/\1/p' <<<"$console" | head -1)
  b "$i" vm delete -f breakdown >/dev/null 2>&1
done
for k in "load average before" "vm create to the agent answering (wall s)" "kernel runs /init" "crng ready" \
  "systemd started" "generators done" "units loaded" "agent started" "sshd ready" \
  "boot finished (default target)" "units started"; do
  line=$(printf "%-42s" "$k")
  for i in "${!builds[@]}"; do line+=$(printf " %16s" "${rows[$k|$i]:-}"); done
  echo "$line"
done
