#!/bin/sh
# embed-key.sh INSTALL_SH PUBKEY.pem: prints INSTALL_SH with the release key
# it trusts replaced by PUBKEY.pem (an Ed25519 key's PEM body is one line).
set -eu
body=$(grep -v '^-----' "$2")
[ "$(printf '%s\n' "$body" | wc -l)" = 1 ] || { echo "embed-key.sh: $2 is not a one-line PEM key" >&2; exit 1; }
awk -v body="$body" '
  replace { print body; replace = 0; done = 1; next }
  /^RELEASE_PUBKEY=.-----BEGIN PUBLIC KEY-----$/ { replace = 1 }
  { print }
  END { if (!done) { print "embed-key.sh: no RELEASE_PUBKEY in the script" > "/dev/stderr"; exit 1 } }
' "$1"
