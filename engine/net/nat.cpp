// nftables through libnftables (the library behind the nft tool), with one
// exception: the accept rules for hosts whose FORWARD chain drops. Those
// must live in iptables' own chains (Docker's DOCKER-USER, or FORWARD), and
// an nftables accept in banger's table cannot override a drop verdict in
// another table. Docker and the iptables tooling parse those chains as
// xtables rules, so they are written with the iptables binary itself, in
// the encoding those tools expect.
#include "engine/net/nat.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <set>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/net/egress.hpp"
#include "engine/net/nftables.hpp"

namespace banger::net {
namespace {

constexpr const char* kIptables = "/usr/sbin/iptables";

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

bool nat_chain(const std::string& chain) { return chain == "postrouting"; }

// The tap's NAT rules (and, unless `nat_only`, its egress rules and set:
// a VM's teardown removes both through remove_nat).
int remove_locked(Nft& nft, std::string_view tap, bool nat_only) {
  int removed = delete_tagged(nft, "ip", kNatTable, tap, nat_chain);
  if (!nat_only) removed += remove_egress_locked(nft, tap);
  return removed + remove_iptables(tap);
}

// What banger's tables hold: the ip table (NAT, egress) and the bridge
// table (egress's per-tap source checks).
std::vector<TaggedRule> all_rules(Nft& nft, bool* any_table) {
  TableListing ip = list_table(nft, "ip", kNatTable);
  TableListing br = list_table(nft, "bridge", kNatTable);
  *any_table = ip.exists || br.exists;
  ip.rules.insert(ip.rules.end(), br.rules.begin(), br.rules.end());
  return ip.rules;
}

}  // namespace

void ensure_nat(std::string_view tap, std::string_view guest_ip, std::string_view bridge) {
  FileLock lock = nft_lock();
  Nft nft;
  remove_locked(nft, tap, true);
  const std::string t = "ip " + std::string(kNatTable);
  nft.run("add table " + t + "\n" +
          "add chain " + t + " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n" +
          "add rule " + t + " postrouting ip saddr " + std::string(guest_ip) + " oifname != " + quoted(bridge) +
          " masquerade comment " + quoted(tap) + "\n");
  add_iptables(tap, guest_ip, bridge);
  write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
}

int remove_nat(std::string_view tap) {
  FileLock lock = nft_lock();
  Nft nft;
  return remove_locked(nft, tap, false);
}

int remove_all_nat() {
  FileLock lock = nft_lock();
  Nft nft;
  int removed = 0;
  for (std::string_view family : {"ip", "bridge"}) {
    TableListing l = list_table(nft, family, kNatTable);
    removed += static_cast<int>(l.rules.size());
    if (l.exists) nft.run("delete table " + std::string(family) + " " + std::string(kNatTable) + "\n");
  }
  return removed + remove_iptables("");
}

std::vector<std::string> nat_taps() {
  Nft nft;
  bool exists = false;
  std::set<std::string> taps;
  for (const auto& r : all_rules(nft, &exists)) {
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
  for (const auto& r : all_rules(nft, &inv.table)) {
    ++inv.table_rules;
    if (!r.tag.empty()) taps.insert(r.tag);
  }
  inv.taps.assign(taps.begin(), taps.end());
  return inv;
}

}  // namespace banger::net
