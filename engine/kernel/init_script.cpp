// banger's initramfs /init, run by busybox sh as PID 1 before the real root.
// Contract (kernel command line):
//   root=/dev/vda  rootfstype=ext4   the root filesystem (read-write)
//   ip=<guest>::<gateway>:<netmask>:<hostname>:<iface>:off
//       applied here: Debian kernels lack CONFIG_IP_PNP, and a guest must
//       come up the same way whatever its kernel did
//   banger.init=<path>   what to exec in the real root (default /sbin/init)
//   banger.work=/dev/vdb the work disk, mounted at /root when present
// The root and work filesystems are grown online to their disks' sizes
// (banger-agent --grow-fs) at every boot: the disks are made at the VM's
// configured sizes, the filesystems inside them are not (docs/ext4.md).
// A new VM's work disk holds host random bytes (.banger-rng-seed at its
// root, written by banger.provision): credited to the kernel's pool before
// the real init starts, so nothing waits for the CRNG (sshd would, seconds
// under emulation); the file is wiped and removed by the same step.
//   banger.name=<vm>     the hostname (ip='s hostname field wins)
//   banger.dns=<a>[,<b>] the guest's resolvers, written to /etc/resolv.conf
//                        (replacing a symlink to a resolver stub that a
//                        microVM without that service would never answer)
// On any failure it prints why and powers off, so a broken boot ends the VM
// instead of hanging it.
#include "engine/kernel/init_script.hpp"

namespace banger::kernel {

std::string_view initramfs_init() {
  return R"INIT(#!/bin/busybox sh
export PATH=/bin
fail() {
  echo "banger-init: $*" >/dev/console
  echo "banger-init: powering off" >/dev/console
  sync
  poweroff -f
}
mount -t devtmpfs devtmpfs /dev 2>/dev/null || fail "cannot mount /dev"
mount -t proc proc /proc
mount -t sysfs sysfs /sys
exec >/dev/console 2>&1 </dev/console

for m in $(cat /etc/banger/modules); do
  insmod "/lib/modules/$m.ko" 2>/dev/null || echo "banger-init: insmod $m failed"
done

root=/dev/vda rootfstype=ext4 ip= init=/sbin/init work=/dev/vdb name= dns=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    banger.name=*) name="${arg#banger.name=}" ;;
    root=*) root="${arg#root=}" ;;
    rootfstype=*) rootfstype="${arg#rootfstype=}" ;;
    ip=*) ip="${arg#ip=}" ;;
    banger.init=*) init="${arg#banger.init=}" ;;
    banger.work=*) work="${arg#banger.work=}" ;;
    banger.dns=*) dns="${arg#banger.dns=}" ;;
  esac
done

# Devices appear asynchronously once their drivers bind.
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -b "$root" ] || fail "root device $root did not appear"

# Loopback in every guest, networked or not: local services need it, and
# port forwarding through the agent connects to 127.0.0.1.
ip link set lo up 2>/dev/null || echo "banger-init: cannot bring lo up"

if [ -n "$ip" ]; then
  saved_ifs=$IFS
  IFS=:
  set -- $ip
  IFS=$saved_ifs
  addr=$1 gw=$3 mask=$4 host=$5 dev=${6:-eth0}
  i=0
  while [ ! -e "/sys/class/net/$dev" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  if ! ip -4 addr show dev "$dev" 2>/dev/null | grep -q "inet $addr/"; then
    prefix=0
    for octet in $(echo "$mask" | tr . ' '); do
      while [ "$octet" -gt 0 ]; do prefix=$((prefix + (octet & 1))); octet=$((octet >> 1)); done
    done
    ip link set "$dev" up || echo "banger-init: no interface $dev"
    ip addr add "$addr/$prefix" dev "$dev" || echo "banger-init: cannot set $addr/$prefix on $dev"
    [ -n "$gw" ] && ip route add default via "$gw" dev "$dev"
  fi
  [ -n "$host" ] && name="$host"
fi
[ -n "$name" ] && hostname "$name"

# Online, so it works on whatever disk format the hypervisor reads (a qcow2
# overlay under QEMU); a failure costs room, not the boot.
grow() {
  if out=$(banger-agent --grow-fs "$1" "$2" 2>&1); then
    echo "banger-init: $out"
  else
    echo "banger-init: cannot grow the filesystem on $1: $out"
  fi
}

mkdir -p /newroot
mount -t "$rootfstype" -o rw "$root" /newroot || fail "cannot mount $root"
case "$rootfstype" in ext[234]) grow "$root" /newroot ;; esac
if [ -n "$dns" ]; then
  rm -f /newroot/etc/resolv.conf
  for server in $(echo "$dns" | tr , ' '); do echo "nameserver $server"; done >/newroot/etc/resolv.conf
fi
if [ -b "$work" ]; then
  mkdir -p /newroot/root
  if mount -t ext4 -o rw "$work" /newroot/root; then
    if [ -f /newroot/root/.banger-rng-seed ]; then
      out=$(banger-agent --seed-rng /newroot/root/.banger-rng-seed 2>&1)
      echo "banger-init: $out"
    fi
    grow "$work" /newroot/root
  else
    echo "banger-init: cannot mount the work disk $work"
  fi
fi
# The agent's serial port under a stable name (udev does this on full systems).
for p in /sys/class/virtio-ports/*; do
  [ -e "$p/name" ] || continue
  mkdir -p /dev/virtio-ports
  ln -sf "/dev/${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
done
[ -x "/newroot$init" ] || [ -L "/newroot$init" ] || fail "no $init in the root filesystem"
mount --move /dev /newroot/dev 2>/dev/null || mount -t devtmpfs devtmpfs /newroot/dev
umount /proc /sys
exec switch_root /newroot "$init"
)INIT";
}

}  // namespace banger::kernel
