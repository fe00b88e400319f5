// nftables through libnftables (the library behind the nft tool), with one
// exception: the accept rules for hosts whose FORWARD chain drops. Those
// must live in iptables' own chains (Docker's DOCKER-USER, or FORWARD), and
// an nftables accept in banger's table cannot override a drop verdict in
// another table. Docker and the iptables tooling parse those chains as
// xtables rules, so they are written with the iptables binary itself, in
// the encoding those tools expect.
#include "engine/net/nat.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <nftables/libnftables.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/core/error.hpp"
#include "engine/core/file_lock.hpp"
#include "engine/core/process.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::net {
namespace {

// Serialises read-modify-write cycles on the ruleset between banger
// processes (and the helper): handles listed by one must not be deleted
// under another's feet, and an empty table is dropped only under the lock.
// /run/banger-root is root's alone (the helper's unit declares it as a
// RuntimeDirectory, so it is writable under ProtectSystem=strict); the
// owner's /run/banger is not used for this, so its owner cannot plant a
// FIFO or a link where root takes the lock.
constexpr const char* kLockDir = "/run/banger-root";
constexpr const char* kLockPath = "/run/banger-root/nat.lock";

FileLock nat_lock() {
  if (::mkdir(kLockDir, 0700) != 0 && errno != EEXIST) throw Error::last("mkdir", kLockDir);
  return FileLock(kLockPath, true, std::chrono::seconds(30));
}
constexpr const char* kIptables = "/usr/sbin/iptables";

struct CtxDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

class Nft {
 public:
  Nft() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
    if (!ctx_) throw Error("ENOMEM", "cannot create an nftables context");
    nft_ctx_buffer_output(ctx_.get());
    nft_ctx_buffer_error(ctx_.get());
  }
  // Runs `cmd`; returns false with the error text in `err` on failure.
  bool try_run(const std::string& cmd, std::string* out, std::string* err, bool json = false) {
    nft_ctx_output_set_flags(ctx_.get(), json ? (NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE) : 0);
    int rc = nft_run_cmd_from_buffer(ctx_.get(), cmd.c_str());
    if (out) *out = nft_ctx_get_output_buffer(ctx_.get());
    std::string e = nft_ctx_get_error_buffer(ctx_.get());
    if (err) *err = e;
    return rc == 0;
  }
  void run(const std::string& cmd) {
    std::string err;
    if (!try_run(cmd, nullptr, &err)) {
      while (!err.empty() && err.back() == '\n') err.pop_back();
      throw Error("ENFT", "nftables refused the change: " + err);
    }
  }

 private:
  std::unique_ptr<nft_ctx, CtxDeleter> ctx_;
};

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

struct TaggedRule {
  std::string chain;
  long handle;
  std::string tag;
};

// Rules in banger's table with their handles; empty when the table is absent.
std::vector<TaggedRule> table_rules(Nft& nft, bool* table_exists) {
  std::string out;
  std::vector<TaggedRule> rules;
  *table_exists = nft.try_run("list table ip " + std::string(kNatTable), &out, nullptr, true);
  if (!*table_exists) return rules;
  auto doc = nlohmann::json::parse(out, nullptr, false);
  if (!doc.is_object() || !doc.contains("nftables")) throw Error("ENFT", "unexpected nft JSON output");
  for (const auto& item : doc["nftables"]) {
    if (!item.contains("rule")) continue;
    const auto& r = item["rule"];
    rules.push_back({r.value("chain", ""), r.value("handle", -1L), r.value("comment", "")});
  }
  return rules;
}

void write_sysctl(const char* path, const char* value) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) throw Error::last("cannot open", path);
  if (::write(fd.get(), value, std::char_traits<char>::length(value)) < 0) throw Error::last("cannot write", path);
}

// --- iptables side (hosts whose FORWARD drops) ---

bool have_iptables() { return ::access(kIptables, X_OK) == 0; }

process::RunResult iptables(std::vector<std::string> args) {
  process::SpawnOptions o;
  o.argv = {kIptables, "-w"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.out = process::Stdio::pipe();
  o.err = process::Stdio::pipe();
  return process::run(o, {}, std::chrono::seconds(30));
}

bool chain_exists(const std::string& chain) { return iptables({"-S", chain}).status.code == 0; }

// Where the guest's forward accepts must go: Docker's DOCKER-USER chain (it
// is consulted first and Docker never rewrites it), else FORWARD when its
// policy drops; nowhere when forwarding is already accepted.
std::string accept_chain() {
  if (!have_iptables()) return {};
  if (chain_exists("DOCKER-USER")) return "DOCKER-USER";
  auto r = iptables({"-S", "FORWARD"});
  if (r.status.code == 0 && r.out.rfind("-P FORWARD ACCEPT", 0) != 0) return "FORWARD";
  return {};
}

std::string iptables_tag(std::string_view tap) { return "banger:" + std::string(tap); }

// The taps named by banger's tags in FORWARD and DOCKER-USER ("banger:<tap>",
// quoted or not, as iptables-nft and iptables-legacy print them).
std::set<std::string> iptables_taps() {
  std::set<std::string> taps;
  if (!have_iptables()) return taps;
  const std::string marker = "--comment ";
  for (const char* chain : {"DOCKER-USER", "FORWARD"}) {
    auto r = iptables({"-S", chain});
    if (r.status.code != 0) continue;
    for (size_t at = r.out.find(marker); at != std::string::npos; at = r.out.find(marker, at + 1)) {
      size_t p = at + marker.size();
      if (p < r.out.size() && r.out[p] == '"') ++p;
      const std::string tag = iptables_tag("");
      if (r.out.compare(p, tag.size(), tag) != 0) continue;
      p += tag.size();
      size_t end = r.out.find_first_of("\" \n", p);
      taps.insert(r.out.substr(p, end == std::string::npos ? std::string::npos : end - p));
    }
  }
  return taps;
}

// Deletes every iptables rule carrying our tag, in FORWARD and DOCKER-USER;
// with an empty tap, every rule banger tagged for any tap.
int remove_iptables(std::string_view tap) {
  if (!have_iptables()) return 0;
  int removed = 0;
  const std::string tag = iptables_tag(tap);  // "banger:" alone matches every tap
  for (const char* chain : {"DOCKER-USER", "FORWARD"}) {
    auto r = iptables({"-S", chain});
    if (r.status.code != 0) continue;
    size_t pos = 0;
    while (pos < r.out.size()) {
      size_t end = r.out.find('\n', pos);
      if (end == std::string::npos) end = r.out.size();
      std::string line = r.out.substr(pos, end - pos);
      pos = end + 1;
      // `-S` prints rules as "-A CHAIN <spec>" (iptables-nft quotes the
      // comment); the same spec after -D deletes exactly that rule. Our
      // rules hold no spaces in any word, so splitting on spaces and
      // dropping the quotes gives back the words they were made from.
      bool ours = tap.empty() ? (line.find("--comment \"" + tag) != std::string::npos ||
                                 line.find("--comment " + tag) != std::string::npos)
                              : (line.find("--comment \"" + tag + "\"") != std::string::npos ||
                                 line.find("--comment " + tag + " ") != std::string::npos);
      if (line.rfind("-A ", 0) != 0 || !ours) continue;
      std::vector<std::string> args = {"-D"};
      size_t p = 3;
      while (p < line.size()) {
        size_t q = line.find(' ', p);
        if (q == std::string::npos) q = line.size();
        std::string word = line.substr(p, q - p);
        if (word.size() >= 2 && word.front() == '"' && word.back() == '"') word = word.substr(1, word.size() - 2);
        args.push_back(word);
        p = q + 1;
      }
      if (iptables(args).status.code == 0) ++removed;
    }
  }
  return removed;
}

void add_iptables(std::string_view tap, std::string_view guest_ip, std::string_view bridge) {
  std::string chain = accept_chain();
  if (chain.empty()) return;
  const std::string tag = iptables_tag(tap);
  const std::vector<std::vector<std::string>> rules = {
      {"-s", std::string(guest_ip), "-i", std::string(bridge)},
      {"-d", std::string(guest_ip), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"},
  };
  for (const auto& match : rules) {
    std::vector<std::string> args = {"-I", chain, "1"};
    args.insert(args.end(), match.begin(), match.end());
    args.insert(args.end(), {"-m", "comment", "--comment", tag, "-j", "ACCEPT"});
    auto r = iptables(args);
    if (r.status.code != 0) {
      throw Error("ENFT", "iptables refused the forward rule in " + chain + ": " + r.err);
    }
  }
}

int remove_locked(Nft& nft, std::string_view tap) {
  bool exists = false;
  int removed = 0;
  std::string batch;
  size_t kept = 0;
  for (const auto& r : table_rules(nft, &exists)) {
    if (r.tag == tap) {
      batch += "delete rule ip " + std::string(kNatTable) + " " + r.chain + " handle " + std::to_string(r.handle) + "\n";
      ++removed;
    } else {
      ++kept;
    }
  }
  if (exists && kept == 0) batch = "delete table ip " + std::string(kNatTable) + "\n";
  if (!batch.empty()) nft.run(batch);
  return removed + remove_iptables(tap);
}

}  // namespace

void ensure_nat(std::string_view tap, std::string_view guest_ip, std::string_view bridge) {
  FileLock lock = nat_lock();
  Nft nft;
  remove_locked(nft, tap);
  const std::string t = "ip " + std::string(kNatTable);
  nft.run("add table " + t + "\n" +
          "add chain " + t + " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n" +
          "add rule " + t + " postrouting ip saddr " + std::string(guest_ip) + " oifname != " + quoted(bridge) +
          " masquerade comment " + quoted(tap) + "\n");
  add_iptables(tap, guest_ip, bridge);
  write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
}

int remove_nat(std::string_view tap) {
  FileLock lock = nat_lock();
  Nft nft;
  return remove_locked(nft, tap);
}

int remove_all_nat() {
  FileLock lock = nat_lock();
  Nft nft;
  bool exists = false;
  int removed = static_cast<int>(table_rules(nft, &exists).size());
  if (exists) nft.run("delete table ip " + std::string(kNatTable) + "\n");
  return removed + remove_iptables("");
}

std::vector<std::string> nat_taps() {
  Nft nft;
  bool exists = false;
  std::set<std::string> taps;
  for (const auto& r : table_rules(nft, &exists)) {
    if (!r.tag.empty()) taps.insert(r.tag);
  }
  return {taps.begin(), taps.end()};
}

NatInventory nat_inventory() {
  // No lock: a read changes nothing, and removals take it themselves (so a
  // read-only doctor run creates no lock directory either).
  Nft nft;
  NatInventory inv;
  std::set<std::string> taps = iptables_taps();
  for (const auto& r : table_rules(nft, &inv.table)) {
    ++inv.table_rules;
    if (!r.tag.empty()) taps.insert(r.tag);
  }
  inv.taps.assign(taps.begin(), taps.end());
  return inv;
}

}  // namespace banger::net
