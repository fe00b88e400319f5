#include "engine/net/nftables.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "engine/core/error.hpp"

namespace banger::net {
namespace {

// /run/banger-root is root's alone (the helper's unit declares it as a
// RuntimeDirectory, so it is writable under ProtectSystem=strict); the
// owner's /run/banger is not used for this, so its owner cannot plant a
// FIFO or a link where root takes the lock.
constexpr const char* kLockDir = "/run/banger-root";
constexpr const char* kLockPath = "/run/banger-root/nat.lock";

}  // namespace

FileLock nft_lock() {
  if (::mkdir(kLockDir, 0700) != 0 && errno != EEXIST) throw Error::last("mkdir", kLockDir);
  return FileLock(kLockPath, true, std::chrono::seconds(30));
}

Nft::Nft() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
  if (!ctx_) throw Error("ENOMEM", "cannot create an nftables context");
  nft_ctx_buffer_output(ctx_.get());
  nft_ctx_buffer_error(ctx_.get());
}

bool Nft::try_run(const std::string& cmd, std::string* out, std::string* err, bool json) {
  nft_ctx_output_set_flags(ctx_.get(), json ? (NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE) : 0);
  int rc = nft_run_cmd_from_buffer(ctx_.get(), cmd.c_str());
  if (out) *out = nft_ctx_get_output_buffer(ctx_.get());
  std::string e = nft_ctx_get_error_buffer(ctx_.get());
  if (err) *err = e;
  return rc == 0;
}

void Nft::run(const std::string& cmd) {
  std::string err;
  if (!try_run(cmd, nullptr, &err)) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    throw Error("ENFT", "nftables refused the change: " + err);
  }
}

TableListing list_table(Nft& nft, std::string_view family, std::string_view table) {
  std::string out;
  TableListing l;
  l.exists = nft.try_run("list table " + std::string(family) + " " + std::string(table), &out, nullptr, true);
  if (!l.exists) return l;
  auto doc = nlohmann::json::parse(out, nullptr, false);
  if (!doc.is_object() || !doc.contains("nftables")) throw Error("ENFT", "unexpected nft JSON output");
  for (const auto& item : doc["nftables"]) {
    if (item.contains("rule")) {
      const auto& r = item["rule"];
      l.rules.push_back({r.value("chain", ""), r.value("handle", -1L), r.value("comment", "")});
    } else if (item.contains("set")) {
      l.sets.push_back(item["set"].value("name", ""));
    }
  }
  return l;
}

}  // namespace banger::net

namespace banger::net {

int delete_tagged(Nft& nft, std::string_view family, std::string_view table, std::string_view tag,
                  bool (*in_chain)(const std::string& chain), const std::vector<std::string>& sets) {
  TableListing l = list_table(nft, family, table);
  if (!l.exists) return 0;
  const std::string t = std::string(family) + " " + std::string(table);
  std::string batch;
  int removed = 0;
  std::size_t kept = 0;
  for (const auto& r : l.rules) {
    if (r.tag == tag && in_chain(r.chain)) {
      batch += "delete rule " + t + " " + r.chain + " handle " + std::to_string(r.handle) + "\n";
      ++removed;
    } else {
      ++kept;
    }
  }
  for (const auto& s : sets) {
    for (const auto& have : l.sets) {
      if (have == s) batch += "delete set " + t + " " + s + "\n";
    }
  }
  if (kept == 0) batch = "delete table " + t + "\n";
  if (!batch.empty()) nft.run(batch);
  return removed;
}

}  // namespace banger::net
