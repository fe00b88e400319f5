#include "engine/priv/ops.hpp"

#include <initializer_list>
#include <string>

#include <unistd.h>

#include "engine/core/build_info.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/net/nat.hpp"
#include "engine/net/netlink.hpp"
#include "engine/priv/validate.hpp"

namespace banger::priv {

using nlohmann::json;

// A request must be an object holding exactly the expected fields: a typo
// or an extra field is refused rather than ignored, so what the caller meant
// and what the helper checked cannot drift apart.
void expect_fields(const json& p, std::initializer_list<std::string_view> names) {
  if (!p.is_object()) throw Error("EINVAL", "request parameters must be an object");
  for (auto it = p.begin(); it != p.end(); ++it) {
    bool known = false;
    for (auto n : names) known = known || it.key() == n;
    if (!known) throw Error("EINVAL", "unexpected field '" + it.key() + "'");
  }
  for (auto n : names) {
    if (!p.contains(std::string(n))) throw Error("EINVAL", "missing field '" + std::string(n) + "'");
  }
}

std::string str(const json& p, const char* key) {
  const auto& v = p.at(key);
  if (!v.is_string()) throw Error("EINVAL", std::string("field '") + key + "' must be a string");
  return v.get<std::string>();
}

long integer(const json& p, const char* key) {
  const auto& v = p.at(key);
  if (!v.is_number_integer()) throw Error("EINVAL", std::string("field '") + key + "' must be an integer");
  return v.get<long>();
}

namespace {

Result ensure_bridge(const json& p, const Caller&, Fds&) {
  expect_fields(p, {"bridge", "ip", "prefix"});
  auto bridge = str(p, "bridge");
  auto ip = str(p, "ip");
  validate::bridge_name(bridge);
  long prefix = integer(p, "prefix");
  validate::bridge_address(ip, prefix);
  net::ensure_bridge(bridge, ip, static_cast<int>(prefix));
  return Result{};
}

Result delete_bridge(const json& p, const Caller&, Fds&) {
  expect_fields(p, {"bridge"});
  auto bridge = str(p, "bridge");
  validate::bridge_name(bridge);
  return {{{"deleted", net::delete_link(bridge, "bridge")}}, UniqueFd{}};
}

struct TapRequest {
  std::string tap, bridge, alias;
};

TapRequest tap_request(const json& p) {
  expect_fields(p, {"tap", "bridge", "home"});
  TapRequest r{str(p, "tap"), str(p, "bridge"), str(p, "home")};
  validate::tap_name(r.tap);
  validate::bridge_name(r.bridge);
  validate::home_tag(r.alias);
  r.alias = std::string(validate::kHomeMarkPrefix) + r.alias;
  return r;
}

Result create_tap(const json& p, const Caller& caller, Fds&) {
  auto r = tap_request(p);
  net::create_tap(r.tap, r.bridge, caller.uid, r.alias);
  return Result{};
}

Result open_tap(const json& p, const Caller& caller, Fds&) {
  auto r = tap_request(p);
  return {json::object(), net::open_tap(r.tap, r.bridge, caller.uid, r.alias)};
}

Result delete_tap(const json& p, const Caller&, Fds&) {
  expect_fields(p, {"tap"});
  auto tap = str(p, "tap");
  validate::tap_name(tap);
  return {{{"deleted", net::delete_link(tap, "tun")}}, UniqueFd{}};
}

Result ensure_nat(const json& p, const Caller&, Fds&) {
  expect_fields(p, {"tap", "guest_ip", "bridge"});
  auto tap = str(p, "tap");
  auto ip = str(p, "guest_ip");
  auto bridge = str(p, "bridge");
  validate::tap_name(tap);
  validate::unicast_ipv4(ip);
  validate::bridge_name(bridge);
  net::ensure_nat(tap, ip, bridge);
  return Result{};
}

Result remove_nat(const json& p, const Caller&, Fds&) {
  expect_fields(p, {"tap"});
  auto tap = str(p, "tap");
  validate::tap_name(tap);
  return {{{"removed", net::remove_nat(tap)}}, UniqueFd{}};
}

Result flush_nat(const json& p, const Caller&, Fds&) {
  expect_fields(p, {});
  return {{{"removed", net::remove_all_nat()}}, UniqueFd{}};
}

// Read only: what the host-object census needs to find NAT rules no VM
// accounts for. Only tags that are banger tap names are reported.
Result list_nat(const json& p, const Caller&, Fds&) {
  expect_fields(p, {});
  net::NatInventory inv = net::nat_inventory();
  json taps = json::array();
  for (const auto& tap : inv.taps) {
    try {
      validate::tap_name(tap);
    } catch (const Error&) {
      continue;
    }
    taps.push_back(tap);
  }
  return {{{"table", inv.table}, {"table_rules", inv.table_rules}, {"taps", taps}}, UniqueFd{}};
}

// systemd-resolved is the one resolver banger configures itself, and only
// for its own bridge: queries for ~vm go to banger's responder.
bool resolved_running() { return ::access("/run/systemd/resolve/io.systemd.Resolve", F_OK) == 0; }

std::string resolver_address(const json& p) {
  auto addr = str(p, "resolver");
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) throw Error("EINVAL", "invalid resolver '" + addr + "': expected IPv4:port");
  validate::ipv4(addr.substr(0, colon));
  long port = 0;
  for (char c : addr.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) throw Error("EINVAL", "invalid resolver port in '" + addr + "'");
    port = port * 10 + (c - '0');
  }
  if (colon + 1 == addr.size() || port < 1 || port > 65535) throw Error("EINVAL", "invalid resolver port in '" + addr + "'");
  return addr;
}

void resolvectl(std::vector<std::string> args) {
  process::SpawnOptions o;
  o.argv = {"resolvectl"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.out = process::Stdio::null();
  o.err = process::Stdio::pipe();
  auto r = process::run(o, {}, std::chrono::seconds(15));
  if (r.status.shell_code() != 0) throw Error("ERESOLVED", "resolvectl " + args[0] + " failed: " + r.err);
}

Result route_vm_dns(const json& p, const Caller&, Fds&) {
  expect_fields(p, {"bridge", "resolver"});
  auto bridge = str(p, "bridge");
  validate::bridge_name(bridge);
  auto resolver = resolver_address(p);
  if (!resolved_running()) return {{{"routed", false}, {"reason", "systemd-resolved is not running"}}, UniqueFd{}};
  resolvectl({"dns", bridge, resolver});
  resolvectl({"domain", bridge, "~vm"});
  return {{{"routed", true}}, UniqueFd{}};
}

Result unroute_vm_dns(const json& p, const Caller&, Fds&) {
  expect_fields(p, {"bridge"});
  auto bridge = str(p, "bridge");
  validate::bridge_name(bridge);
  if (!resolved_running()) return {{{"routed", false}}, UniqueFd{}};
  resolvectl({"revert", bridge});
  return {{{"routed", false}}, UniqueFd{}};
}

Result ping(const json& p, const Caller& caller, Fds&) {
  expect_fields(p, {});
  return {{{"pid", ::getpid()}, {"version", build::version}, {"commit", build::commit},
           {"helper_protocol", build::helper_protocol}, {"caller_uid", caller.uid}}, UniqueFd{}};
}

}  // namespace

const std::vector<Operation>& operations() {
  static const std::vector<Operation> ops = {
      {"ensure_bridge", "bridge is br-fc or br-fc-*; ip is dotted-quad IPv4, unicast (not 0/8, "
                        "127/8, 224/4, 240/4), neither the network nor the broadcast address of ip/prefix; "
                        "prefix is 8..31; an existing link of that name must be a bridge", ensure_bridge},
      {"delete_bridge", "bridge is br-fc or br-fc-* and is a bridge", delete_bridge},
      {"create_tap", "tap is bgtap + [0-9a-z] (at most 15 bytes); bridge is br-fc or br-fc-* and exists; "
                     "home is 16 hex digits, set as the tap's alias banger:<home>; the tap is owned by the caller's uid", create_tap},
      {"open_tap", "as create_tap; returns an open queue of the tap (passed over SCM_RIGHTS by the helper)",
       open_tap},
      {"delete_tap", "tap is bgtap + [0-9a-z] and is a tun/tap device", delete_tap},
      {"ensure_nat", "tap is a banger tap name; guest_ip is unicast dotted-quad IPv4; bridge is br-fc or br-fc-*; "
                     "rules only in nftables table ip banger (and tagged accepts in DOCKER-USER/FORWARD)",
       ensure_nat},
      {"remove_nat", "tap is a banger tap name; removes only rules tagged with it (NAT and egress, in tables "
                     "ip banger and bridge banger) and its set egress_<tap>", remove_nat},
      {"ensure_egress", "tap is a banger tap name, an existing tun/tap device owned by the caller's uid and a port of "
                        "bridge; bridge is br-fc or br-fc-* with an IPv4 address; guest_ip is unicast dotted-quad IPv4, "
                        "a host address of the bridge's network other than the bridge's own; resolver_port is "
                        "1024..65535; rules tagged with the tap only in tables ip banger and bridge banger, and the set "
                        "egress_<tap>", ensure_egress},
      {"egress_allow", "tap is a banger tap name, an existing tun/tap device owned by the caller's uid, whose set "
                       "egress_<tap> exists; addresses is an array of 1..64 unicast dotted-quad IPv4 addresses; ttl is "
                       "1..86400 seconds; adds them to that set with that timeout", egress_allow},
      {"flush_nat", "no parameters; drops tables ip banger and bridge banger and the iptables rules tagged banger:* (uninstall)",
       flush_nat},
      {"list_nat", "no parameters; read only: whether table ip banger or bridge banger exists, their rule count, and the banger tap "
                   "names its rules and the iptables rules tagged banger:* carry (the host-object census)",
       list_nat},
      {"route_vm_dns", "bridge is br-fc or br-fc-*; resolver is dotted-quad IPv4:port (1..65535); only when "
                       "systemd-resolved runs: resolvectl dns/domain ~vm on that bridge only", route_vm_dns},
      {"unroute_vm_dns", "bridge is br-fc or br-fc-*; resolvectl revert on that bridge only", unroute_vm_dns},
      {"launch_vmm", "QEMU only: binary passes root_executable and is named qemu-system-*; argv is built by "
                     "the helper from typed fields (name a VM name, vcpus 1..64, memory_mib 64..1048576, accel kvm "
                     "or tcg, cmdline printable ASCII up to 4096 bytes, mac empty or lower-case xx:xx:xx:xx:xx:xx, "
                     "generation empty or a UUID, incoming a boolean (-S -incoming defer), "
                     "1..4 disks with ids [a-z0-9], format raw or qcow2, each with a backing chain of at most 16 "
                     "images, raw or qcow2, only below qcow2 ones); every file arrives as a descriptor of its "
                     "kind, each named exactly once (kernel and initrd regular files, copied into sealed memfds "
                     "unless readable by others; "
                     "disks regular files opened read-write unless read-only, each writable one also reopened "
                     "read-only by the helper; backing images regular files; qmp, agent and forward (the "
                     "port-forwarding serial port) listening Unix stream sockets; console and log writable regular files; tap a /dev/net/tun queue of a banger tap; "
                     "memory, if any, a regular file of the caller's, opened read-write, exactly memory_mib MiB, "
                     "mapped shared, its VMM uid given rw by a POSIX ACL entry only until QEMU has it mapped); "
                     "runs as an unused uid of the VMM range with its own gid (plus /dev/kvm's group for kvm), "
                     "no_new_privs, in a new session",
       launch_vmm, true},
      {"signal_vmm", "signal is TERM or KILL; the pid's real uid is in the helper's VMM range and its cmdline "
                     "is qemu-system-* with -name banger-*; sent through a pidfd opened before the check",
       signal_vmm},
      {"ping", "no parameters; reports the helper's pid, version, commit and helper_protocol (status)", ping},
  };
  return ops;
}

Result execute(std::string_view op, const json& params, const Caller& caller, Fds fds) {
  for (const auto& o : operations()) {
    if (o.name != op) continue;
    if (!o.takes_fds && !fds.empty()) throw Error("EINVAL", std::string(op) + " takes no descriptors");
    return o.run(params, caller, fds);
  }
  throw Error("ENOSYS", "unknown privileged operation '" + std::string(op) + "'");
}

}  // namespace banger::priv
