#pragma once
// libnftables (the library behind the nft tool) for banger's own tables,
// shared by NAT (nat.cpp) and egress allow-lists (egress.cpp): a context,
// the lock that serialises changes to banger's tables, and the listing of
// the rules in one of them with their tags (comments).
#include <nftables/libnftables.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/file_lock.hpp"

namespace banger::net {

// Serialises read-modify-write cycles on banger's tables between banger
// processes (and the helper).
FileLock nft_lock();

class Nft {
 public:
  Nft();
  // Runs `cmd`; returns false with the error text in `err` on failure.
  bool try_run(const std::string& cmd, std::string* out, std::string* err, bool json = false);
  // Runs `cmd`; ENFT with nft's message on failure.
  void run(const std::string& cmd);

 private:
  struct CtxDeleter {
    void operator()(nft_ctx* c) const { nft_ctx_free(c); }
  };
  std::unique_ptr<nft_ctx, CtxDeleter> ctx_;
};

struct TaggedRule {
  std::string chain;
  long handle;
  std::string tag;
};

// The rules of table `family` `table` with their handles and comments, and
// the names of its sets; both empty when the table is absent.
struct TableListing {
  bool exists = false;
  std::vector<TaggedRule> rules;
  std::vector<std::string> sets;
};
TableListing list_table(Nft& nft, std::string_view family, std::string_view table);

inline std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace banger::net

namespace banger::net {

// Deletes the rules of `family table` tagged `tag` in the chains `in_chain`
// accepts, and the named sets, in one batch; drops the table once no rule
// is left in it. Returns how many rules were deleted. Call under nft_lock().
int delete_tagged(Nft& nft, std::string_view family, std::string_view table, std::string_view tag,
                  bool (*in_chain)(const std::string& chain), const std::vector<std::string>& sets = {});

}  // namespace banger::net
