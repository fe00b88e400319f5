#!/usr/bin/env bash
# The first-run path, stage by stage, from an empty HOME: default kernel
# (apt-get download + import), default image (mmdebstrap + ext4), boot and
# the first command; then a warm `vm run -- true`. Prints the numbers
# recorded in docs/performance.md. Not a test.
#   bench/first-run.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
banger="$build/banger"
home=$(mktemp -d /tmp/banger-first-XXXXXX)
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/run" "$home/repo"
export HOME=$home XDG_RUNTIME_DIR=$home/run
unset XDG_CONFIG_HOME XDG_STATE_HOME XDG_CACHE_HOME
git -C "$home/repo" init -q
ms() { date +%s%3N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { print (b - a) / 1000 }'; }

echo "load average before: $(load)"
t0=$(ms); "$banger" kernel default >/dev/null 2>&1; t1=$(ms)
"$banger" image build debian >/dev/null 2>&1; t2=$(ms)
(cd "$home/repo" && "$banger" vm run --rm -- true >/dev/null 2>&1); t3=$(ms)
(cd "$home/repo" && "$banger" vm run --rm -- true >/dev/null 2>&1); t4=$(ms)
printf "%-44s %8.1fs\n" "default kernel (apt-get download + import)" "$(secs $t0 $t1)"
printf "%-44s %8.1fs\n" "default image (mmdebstrap + ext4)" "$(secs $t1 $t2)"
printf "%-44s %8.1fs\n" "first vm run --rm -- true (boot + command)" "$(secs $t2 $t3)"
printf "%-44s %8.1fs\n" "warm vm run --rm -- true" "$(secs $t3 $t4)"
printf "%-44s %8.1fs\n" "first-run path in total" "$(secs $t0 $t3)"
echo "load average after: $(load)"
