#!/usr/bin/env bash
# Writes an OCI image layout from layer tars (oldest first), gzip-compressed
# the way image builders do it (gzip -6), with a config whose diff_ids are
# the uncompressed digests. Used by bench/pull.sh; not a test fixture (the
# tests' hand-built image is tests/fixtures/make-oci-image.sh).
#   bench/oci-layout.sh <layout-dir> <tag> <layer.tar>...
set -euo pipefail
oci="$1" tag="$2"
shift 2
mkdir -p "$oci/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"

put() {  # put <file>: into the blob store; prints "digest size"
  local h s
  h=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  mv "$1" "$oci/blobs/sha256/$h"
  echo "sha256:$h $s"
}

diffs="" layers=""
for t in "$@"; do
  diffs+="\"sha256:$(sha256sum "$t" | cut -d' ' -f1)\","
  gzip -6 -n -c "$t" >"$oci/layer.tmp"
  read -r d s < <(put "$oci/layer.tmp")
  layers+="{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$s},"
done
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "${diffs%,}" >"$oci/config.tmp"
read -r cd cs < <(put "$oci/config.tmp")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
  "$cd" "$cs" "${layers%,}" >"$oci/manifest.tmp"
read -r md ms < <(put "$oci/manifest.tmp")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$md" "$ms" "$tag" >"$oci/index.json"
