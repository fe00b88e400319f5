#!/usr/bin/env bash
# What growing the root filesystem at boot costs (docs/ext4.md#growing-to-the-disk):
# the default Debian image (fitted to its content) booted with a root disk
# of the image's own size (nothing to grow) and of 8 GiB (the default
# vm.disk), three VMs each. Prints the ioctl's time as the guest measured
# it, the whole `vm create` (boot to agent), and what the qcow2 overlay
# holds once the guest has been up 30 s (the kernel zeroes the new inode
# tables in the background). Not a test: it prints numbers.
#   bench/growfs.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
banger="$build/banger"
home=$(mktemp -d /tmp/banger-bench-XXXXXX)
trap 'HOME=$home XDG_RUNTIME_DIR=$home/run "$banger" vm prune -f >/dev/null 2>&1 || true; rm -rf "$home"' EXIT
mkdir -p "$home/run" "$home/.config/banger"
export HOME=$home XDG_RUNTIME_DIR=$home/run
unset XDG_CONFIG_HOME XDG_STATE_HOME XDG_CACHE_HOME
echo 'return { network = { mode = "off" } }' >"$home/.config/banger/config.lua"

ms() { date +%s%3N; }

"$banger" kernel import "$("$here/tests/fixtures/kernel-deb.sh")" --name debian-cloud >/dev/null 2>&1
"$banger" image build debian --tar "$("$here/tests/fixtures/debian-tar.sh")" >/dev/null 2>&1
image=$("$banger" image show debian-12 --json | sed -n 's/.*"rootfs_path": *"\([^"]*\)".*/\1/p')
image_mib=$(( ($(stat -c %s "$image") + 1048575) / 1048576 ))

echo "== root filesystem growth at boot (Debian 12 image of ${image_mib} MiB, QEMU, load $(cut -d' ' -f1 /proc/loadavg))"
printf "%-10s %-4s %-52s %10s %12s\n" disk run "initramfs says" create overlay
for disk in "${image_mib}MiB" 8GiB; do
  for i in 1 2 3; do
    name="g$i"
    t0=$(ms)
    "$banger" vm create "$name" --disk "$disk" --memory 1GiB >/dev/null 2>&1
    t1=$(ms)
    dir=$("$banger" vm show "$name" --json | sed -n 's/.*"dir": *"\([^"]*\)".*/\1/p')
    said=$(grep -o 'banger-init: .*/dev/vda.*' "$dir/console.log" | sed 's/banger-init: //' | tr -d '\r')
    sleep 30
    overlay=$(du -k "$dir/root.qcow2" | cut -f1)
    printf "%-10s %-4s %-52s %8dms %9dKiB\n" "$disk" "$i" "$said" "$((t1 - t0))" "$overlay"
    "$banger" vm delete -f "$name" >/dev/null 2>&1
  done
done
echo "create = the whole 'vm create' process, boot to the agent answering (TCG here);"
echo "overlay = the qcow2 overlay's allocated size 30 s after the boot."
