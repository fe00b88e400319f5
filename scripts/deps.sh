#!/usr/bin/env bash
# Installs banger's build and test dependencies from Debian packages.
# Idempotent: packages already present are not touched, and apt-get runs
# only when something is missing. Needs root (or sudo) for the install.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config ninja-build
  liblua5.4-dev libsqlite3-dev libcurl4-openssl-dev libarchive-dev
  libssh2-1-dev libzstd-dev nlohmann-json3-dev libext2fs-dev
  libisal-dev libdeflate-dev liblz4-dev liblzma-dev libbz2-dev zlib1g-dev libssl-dev
  libnl-route-3-dev libnftables-dev libacl1-dev
  libuv1-dev libhttp-parser-dev  # banger serve: event loop and HTTP/1.1 parser
  # runtime: hypervisor, guest pieces, host networking
  qemu-system-x86 qemu-utils busybox-static e2fsprogs iproute2 nftables iptables
  openssh-client git ca-certificates mmdebstrap
  uidmap  # newuidmap/newgidmap: mmdebstrap's unshare mode, how a regular user builds the default image
)
test_packages=(
  catch2 sqlite3 docker-registry skopeo umoci dnsutils
  clang libclang-rt-14-dev dropbear-bin
  zstd xz-utils lz4 procps  # compressors and pgrep the tests call
  curl util-linux  # fake guests fetch through NAT; setpriv drops to another uid
  openssh-server  # a real sshd for the SSH client tests
  xfsprogs  # a reflink-capable filesystem for the disk clone test
  python3    # tests/fixtures/registry.sh's free port, bench/pull.sh's layer split
  jq         # the kernel specs merge exported catalog entries as docs/kernels.md shows
  lua5.4     # bench/startup.sh times banger against a bare Lua interpreter
  zsh fish   # completion_spec runs `banger completion zsh|fish` in the real shells
  ccache     # scripts/test keeps compiled objects between runs (an empty cache builds as without)
  openssl    # release_spec: scripts/release and dist/install.sh sign and verify manifests
  attr acl libcap2-bin  # e2e_push_spec sets and reads xattrs, ACLs and capabilities on both sides
)

want=("${packages[@]}")
[[ "${1:-}" == "--test" ]] && want+=("${test_packages[@]}")

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# e2e_mcp_spec drives `banger mcp` with the MCP SDK's client, installed from
# npm: Debian's nodejs (18) and npm, unless node and npm are already there
# (NodeSource's nodejs, say, ships its own npm and conflicts with Debian's).
if [[ "${1:-}" == "--test" ]] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
# banger's first run fetches Debian's cloud kernel with `apt-get download`,
# as whoever runs it: that needs the package lists.
lists=1
apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1 || lists=0
[[ ${#missing[@]} -eq 0 && $lists -eq 1 ]] && exit 0

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "deps: apt-get update" >&2
$sudo apt-get update -qq
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "deps: installing ${missing[*]}" >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
