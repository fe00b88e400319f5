#!/usr/bin/env bash
# bench/first-run.sh as a new regular user would run it: an account made by
# `useradd -m` (its own subordinate id range), its login environment
# (`su -`: Debian's user PATH, without sbin), no root helper, an empty
# home. Prints the same stages. Needs root; the account is removed
# afterwards with its home and subordinate ids. Not a test.
#   bench/first-run-user.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
[[ $(id -u) -eq 0 ]] || { echo "first-run-user: run as root (it makes and removes an account)" >&2; exit 1; }
user="bgbench$$"
useradd -m "$user"
cleanup() {
  # A hypervisor killed by the last `vm run --rm` may take a moment to go.
  for _ in $(seq 50); do pgrep -u "$user" >/dev/null || break; sleep 0.2; done
  if pgrep -u "$user" >/dev/null; then
    echo "first-run-user: still running as $user:" >&2
    ps -o pid,etime,args -u "$user" >&2
  fi
  userdel -r "$user" 2>/dev/null || true
}
trap cleanup EXIT
if ! su - "$user" -c "test -x '$build/banger' && test -r '$here/bench/first-run.sh'"; then
  echo "first-run-user: $user cannot reach $build/banger (a checkout under a private directory?)" >&2
  exit 1
fi
su - "$user" -c "echo \"PATH=\$PATH\"; bash '$here/bench/first-run.sh' '$build'"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
