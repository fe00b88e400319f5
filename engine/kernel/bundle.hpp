#pragma once
// Kernel bundles: one catalog kernel as <name>-<arch>.tar.zst, a tar
// (framed by libarchive, compressed with libzstd: engine/core/zstd_stream.hpp)
// of exactly manifest.json, vmlinux and initrd.img, for sharing a kernel
// through a catalog (docs/kernels.md). Modules travel inside initrd.img:
// the catalog keeps no other module tree.
//
// Reading treats the bundle as hostile: only those three names, regular
// files only (no links, devices or directories), each under a size limit,
// written O_EXCL|O_NOFOLLOW into a fresh staging directory that becomes the
// kernel only when everything checked out.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace banger::kernel {

struct ExportResult {
  std::string path;     // <out_dir>/<name>-<arch>.tar.zst
  std::uint64_t size = 0;
  std::string sha256;   // of the file, as a catalog entry records it
  nlohmann::json manifest;
};

// Writes kernel `name` of the catalog at `kernels_dir` as a bundle into
// `out_dir` (atomically: a failed export leaves no file), compressed at zstd
// `level` (1..19). Its vmlinux must still match its manifest's sha256.
ExportResult export_bundle(const std::string& kernels_dir, const std::string& name, const std::string& out_dir,
                           int level);

struct BundleImportOptions {
  std::string bundle;       // a downloaded, already verified .tar.zst
  std::string name;         // the local name
  std::string kernels_dir;
  std::string origin;       // recorded as the manifest's source
  bool replace = false;
};

// Unpacks a bundle into the catalog as `name`; returns the new manifest
// (the bundle's, with name, source, source_kind "bundle" and imported_at of
// this import). EUNSAFE for an entry that is not one of the three files,
// EFBIG past a file's limit, EINVAL for a bundle built for another
// architecture or a missing file, EDIGEST when vmlinux does not match the
// manifest's sha256.
nlohmann::json import_bundle(const BundleImportOptions& opts);

// This host's architecture as manifests record it (uname -m: "x86_64").
std::string host_arch();

}  // namespace banger::kernel
