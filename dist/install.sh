#!/bin/sh
# Installs a signed banger release from a channel (docs/install.md).
#   install.sh --channel URL-or-DIR [--version V] [--prefix P] [--pubkey PEM]
# The manifest's Ed25519 signature is checked against the key below (or
# --pubkey), the bundle's size and sha256 against the manifest, then the
# bundle is unpacked into P/lib/banger/versions/<V> and P/lib/banger/current
# is switched to it by one rename. Anything that does not match stops the
# install before P is touched.
set -eu

# The key releases are signed with (scripts/release writes the channel's own
# key here in the copy it puts into a channel).
RELEASE_PUBKEY='-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEACm8HOq6EoluTtRiYeX4ipnojV6qCQpZaodJNawL3AUA=
-----END PUBLIC KEY-----'

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*" >&2; }

usage() {
  cat <<'EOF'
usage: install.sh --channel URL-or-DIR [--version V] [--prefix P] [--pubkey PEM]
  --channel   the release channel: an http(s) URL or a local directory
  --version   the version to install (default: the channel's latest.json)
  --prefix    where to install (default: /usr/local as root, else ~/.local)
  --pubkey    the Ed25519 public key (PEM) the manifest must be signed with
EOF
}

channel="" version="" prefix="" pubkey=""
while [ $# -gt 0 ]; do
  case $1 in
    --channel) [ $# -ge 2 ] || die "--channel needs a value"; channel=$2; shift 2 ;;
    --version) [ $# -ge 2 ] || die "--version needs a value"; version=$2; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix=$2; shift 2 ;;
    --pubkey) [ $# -ge 2 ] || die "--pubkey needs a value"; pubkey=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
done
[ -n "$channel" ] || { usage >&2; die "--channel is required"; }
if [ -z "$prefix" ]; then
  if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix=$HOME/.local; fi
fi
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac

for tool in openssl tar zstd sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (Debian: apt install openssl tar zstd coreutils)"
done

case $(uname -s)/$(uname -m) in
  Linux/x86_64) arch=amd64 ;;
  *) die "no release is built for $(uname -s) $(uname -m)" ;;
esac

is_version() {
  printf '%s\n' "$1" | grep -Eqx '(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?'
}
[ -z "$version" ] || is_version "$version" || die "'$version' is not a version (MAJOR.MINOR.PATCH[-PRE])"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/banger-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

case $channel in
  http://* | https://*) remote=1; channel=${channel%/} ;;
  file://*) remote=0; channel=${channel#file://} ;;
  *) remote=0 ;;
esac
if [ "$remote" = 0 ]; then
  [ -d "$channel" ] || die "no channel directory $channel"
  channel=$(cd "$channel" && pwd)
else
  command -v curl >/dev/null 2>&1 || die "curl is needed to install from $channel"
fi

get() {
  curl -fsSL --proto '=http,https' --proto-redir '=http,https' --max-filesize "$3" -o "$2" "$1" ||
    die "cannot fetch $1"
}

# fetch PATH-IN-CHANNEL-OR-URL OUT MAX-BYTES
fetch() {
  case $1 in
    http://* | https://*) get "$1" "$2" "$3" ;;
    /*) cp "$1" "$2" 2>/dev/null || die "cannot read $1" ;;
    *) if [ "$remote" = 1 ]; then
         get "$channel/$1" "$2" "$3"
       else
         cp "$channel/$1" "$2" 2>/dev/null || die "cannot read $channel/$1"
       fi ;;
  esac
}

# --- the manifest, and its signature ---
if [ -n "$version" ]; then manifest=$version/manifest.json; else manifest=latest.json; fi
fetch "$manifest" "$tmp/manifest.json" 1048576
fetch "$manifest.sig" "$tmp/manifest.json.sig" 4096
if [ -n "$pubkey" ]; then
  cp "$pubkey" "$tmp/key.pem" 2>/dev/null || die "cannot read $pubkey"
else
  printf '%s\n' "$RELEASE_PUBKEY" >"$tmp/key.pem"
fi
openssl pkey -pubin -in "$tmp/key.pem" -noout -text 2>/dev/null | grep -q '^ED25519 Public-Key:' ||
  die "the public key is not an Ed25519 key (PEM)"
openssl pkeyutl -verify -rawin -pubin -inkey "$tmp/key.pem" -in "$tmp/manifest.json" \
  -sigfile "$tmp/manifest.json.sig" >/dev/null 2>&1 ||
  die "the signature of $manifest does not verify against the release key: not installing"

# --- what the (now trusted) manifest says ---
# field NAME TEXT: the value of "NAME": "..." or "NAME": 123 in TEXT.
field() {
  printf '%s\n' "$2" | sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\} *[,}].*/\1/p" | head -n 1
}
top=$(tr '\n' ' ' <"$tmp/manifest.json" | sed 's/"artifacts".*//')
[ "$(field schema "$top")" = 1 ] || die "$manifest: unknown schema (this install.sh reads schema 1)"
mversion=$(field version "$top")
is_version "$mversion" || die "$manifest: bad version '$mversion'"
[ -z "$version" ] || [ "$mversion" = "$version" ] || die "$manifest is for $mversion, not $version"
version=$mversion
artifact=$(grep -E "\"os\": *\"linux\", *\"arch\": *\"$arch\"" "$tmp/manifest.json" | head -n 1)
[ -n "$artifact" ] || die "release $version has no linux-$arch bundle"
name=$(field name "$artifact")
url=$(field url "$artifact")
size=$(field size "$artifact")
sha256=$(field sha256 "$artifact")
[ "$name" = "banger-$version-linux-$arch.tar.zst" ] || die "$manifest: unexpected bundle name '$name'"
printf '%s\n' "$size" | grep -Eqx '[0-9]+' || die "$manifest: bad size '$size'"
printf '%s\n' "$sha256" | grep -Eqx '[0-9a-f]{64}' || die "$manifest: bad sha256 '$sha256'"

# A relative url is relative to the manifest's own URL: beside latest.json
# or beside <version>/manifest.json (scripts/release puts it in both).
case $url in
  http://* | https://*) [ "$remote" = 1 ] || die "$manifest: a local channel names a remote bundle $url" ;;
  */* | ..* | "") die "$manifest: bundle url '$url' is neither absolute nor a file name" ;;
  *) base=${manifest%manifest.json}
     url=${base%latest.json}$url ;;
esac
say "installing banger $version into $prefix"
fetch "$url" "$tmp/$name" "$size"
got=$(wc -c <"$tmp/$name" | tr -d ' ')
[ "$got" = "$size" ] || die "$name is $got bytes, the signed manifest says $size: not installing"
got=$(sha256sum "$tmp/$name" | cut -d' ' -f1)
[ "$got" = "$sha256" ] || die "$name has sha256 $got, the signed manifest says $sha256: not installing"

# --- the bundle's entries: relative, no '..', files and directories only ---
zstd -dcq "$tmp/$name" >"$tmp/bundle.tar" || die "$name is not a zstd archive"
tar -tvf "$tmp/bundle.tar" >"$tmp/entries" || die "$name is not a tar archive"
bad=$(grep -Ev '^[-d]' "$tmp/entries" | head -n 1) || true
[ -z "$bad" ] || die "$name holds an entry that is not a file or directory: $bad"
tar -tf "$tmp/bundle.tar" >"$tmp/names"
bad=$(grep -E '^/|(^|/)\.\.(/|$)' "$tmp/names" | head -n 1) || true
[ -z "$bad" ] || die "$name holds an unsafe path: $bad"
grep -qx 'bin/banger' "$tmp/names" || die "$name has no bin/banger"

# --- unpack beside the other versions, check it runs, then switch ---
if [ -e "$prefix/bin/banger" ] && [ ! -L "$prefix/bin/banger" ]; then
  die "$prefix/bin/banger is not a symlink (an install by other means?): remove it and run install.sh again"
fi
root=$prefix/lib/banger
dest=$root/versions/$version
if [ -d "$dest" ]; then
  say "$version is already unpacked in $dest"
else
  mkdir -p "$root/versions"
  rm -rf "$dest.partial"
  mkdir "$dest.partial"
  tar -xf "$tmp/bundle.tar" -C "$dest.partial" --no-same-owner ||
    { rm -rf "$dest.partial"; die "cannot unpack $name"; }
  said=$("$dest.partial/bin/banger" version --json 2>/dev/null) ||
    { rm -rf "$dest.partial"; die "the unpacked banger does not run on this machine"; }
  said=$(printf '%s\n' "$said" | tr '\n' ' ')
  [ "$(field version "$said")" = "$version" ] ||
    { rm -rf "$dest.partial"; die "the unpacked banger calls itself $(field version "$said"), not $version"; }
  mv "$dest.partial" "$dest"
fi

# link NAME TARGET: points NAME at TARGET by renaming a new symlink over it.
link() {
  ln -sfn "$2" "$1.new"
  mv -T "$1.new" "$1"
}
old=$(readlink "$root/current" 2>/dev/null) || old=""
if [ "$old" != "versions/$version" ]; then
  link "$root/current" "versions/$version"
  [ -z "$old" ] || link "$root/previous" "$old"
fi
mkdir -p "$prefix/bin"
[ "$(readlink "$prefix/bin/banger" 2>/dev/null)" = ../lib/banger/current/bin/banger ] ||
  link "$prefix/bin/banger" ../lib/banger/current/bin/banger
# The channel this install came from: banger update reads it when config
# sets no update.channel.
if [ "$remote" = 1 ]; then from=$channel; else from=file://$channel; fi
if [ "$(cat "$root/channel" 2>/dev/null)" != "$from" ]; then
  printf '%s\n' "$from" >"$root/channel.new" && mv -f "$root/channel.new" "$root/channel"
fi
say "banger $version is installed: $prefix/bin/banger"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) say "$prefix/bin is not on your PATH: add it (for ~/.local/bin, Debian's ~/.profile does it at the next login)" ;;
esac
