// rtnetlink via libnl-route-3: the library every netlink tool on Debian
// builds on. Taps are the exception: a persistent tap is made through
// /dev/net/tun's ioctls, which is the only interface the kernel offers.
#include "engine/net/netlink.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::net {
namespace {

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct CacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct LinkDeleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct AddrDeleter {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using Sock = std::unique_ptr<nl_sock, SockDeleter>;
using Cache = std::unique_ptr<nl_cache, CacheDeleter>;
using Link = std::unique_ptr<rtnl_link, LinkDeleter>;
using Addr = std::unique_ptr<rtnl_addr, AddrDeleter>;
using NlAddr = std::unique_ptr<nl_addr, NlAddrDeleter>;

// libnl returns negative NLE_* codes; map the ones callers branch on.
[[noreturn]] void fail(int nle, std::string_view what, std::string_view subject) {
  std::string code = "ENETLINK";
  if (nle == -NLE_EXIST) code = "EEXIST";
  if (nle == -NLE_OBJ_NOTFOUND || nle == -NLE_NODEV) code = "ENOENT";
  if (nle == -NLE_PERM) code = "EPERM";
  if (nle == -NLE_BUSY) code = "EBUSY";
  throw Error(code, std::string(what) + " " + std::string(subject) + ": " + nl_geterror(nle));
}

Sock connect() {
  Sock s(nl_socket_alloc());
  if (!s) throw Error("ENOMEM", "cannot allocate a netlink socket");
  if (int rc = nl_connect(s.get(), NETLINK_ROUTE); rc < 0) fail(rc, "cannot open", "rtnetlink");
  return s;
}

Cache links(nl_sock* s) {
  nl_cache* c = nullptr;
  if (int rc = rtnl_link_alloc_cache(s, AF_UNSPEC, &c); rc < 0) fail(rc, "cannot list", "links");
  return Cache(c);
}

Link find(nl_cache* cache, std::string_view name) {
  return Link(rtnl_link_get_by_name(cache, std::string(name).c_str()));
}

std::string kind_of(rtnl_link* l) {
  const char* t = rtnl_link_get_type(l);
  return t ? t : "";
}

std::vector<std::string> ipv4_of(nl_sock* s, int ifindex) {
  nl_cache* raw = nullptr;
  if (int rc = rtnl_addr_alloc_cache(s, &raw); rc < 0) fail(rc, "cannot list", "addresses");
  Cache cache(raw);
  std::vector<std::string> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != AF_INET) continue;
    char buf[64];
    out.emplace_back(nl_addr2str(rtnl_addr_get_local(a), buf, sizeof buf));
  }
  return out;
}

void set_up(nl_sock* s, rtnl_link* l, std::string_view name, const char* alias = nullptr) {
  Link change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (alias) rtnl_link_set_ifalias(change.get(), alias);
  if (int rc = rtnl_link_change(s, l, change.get(), 0); rc < 0) fail(rc, "cannot set up", name);
}

}  // namespace

std::optional<LinkInfo> link_info(std::string_view name) {
  Sock s = connect();
  Cache cache = links(s.get());
  Link l = find(cache.get(), name);
  if (!l) return std::nullopt;
  LinkInfo info;
  info.name = std::string(name);
  info.kind = kind_of(l.get());
  info.up = (rtnl_link_get_flags(l.get()) & IFF_UP) != 0;
  if (int master = rtnl_link_get_master(l.get()); master > 0) {
    char buf[IFNAMSIZ + 1] = {};
    if (rtnl_link_i2name(cache.get(), master, buf, sizeof buf)) info.master = buf;
  }
  info.ipv4 = ipv4_of(s.get(), rtnl_link_get_ifindex(l.get()));
  return info;
}

void ensure_bridge(std::string_view name, std::string_view address, int prefix) {
  Sock s = connect();
  Cache cache = links(s.get());
  Link br = find(cache.get(), name);
  if (br && kind_of(br.get()) != "bridge") {
    throw Error("EEXIST", "link " + std::string(name) + " exists and is a " + kind_of(br.get()) +
                              " device, not a bridge; banger will not reuse it");
  }
  if (!br) {
    if (int rc = rtnl_link_bridge_add(s.get(), std::string(name).c_str()); rc < 0 && rc != -NLE_EXIST) {
      fail(rc, "cannot create bridge", name);
    }
    cache = links(s.get());
    br = find(cache.get(), name);
    if (!br) throw Error("ENOENT", "bridge " + std::string(name) + " vanished right after creation");
  }
  std::string cidr = std::string(address) + "/" + std::to_string(prefix);
  bool has = false;
  for (const auto& a : ipv4_of(s.get(), rtnl_link_get_ifindex(br.get()))) has = has || a == cidr;
  if (!has) {
    nl_addr* raw = nullptr;
    if (int rc = nl_addr_parse(cidr.c_str(), AF_INET, &raw); rc < 0) fail(rc, "cannot parse", cidr);
    NlAddr local(raw);
    Addr addr(rtnl_addr_alloc());
    rtnl_addr_set_ifindex(addr.get(), rtnl_link_get_ifindex(br.get()));
    rtnl_addr_set_local(addr.get(), local.get());
    if (int rc = rtnl_addr_add(s.get(), addr.get(), 0); rc < 0 && rc != -NLE_EXIST) {
      fail(rc, "cannot add " + cidr + " to", name);
    }
  }
  set_up(s.get(), br.get(), name);
}

void create_tap(std::string_view name, std::string_view bridge, uid_t owner, std::string_view alias) {
  Sock s = connect();
  Cache cache = links(s.get());
  Link br = find(cache.get(), bridge);
  if (!br || kind_of(br.get()) != "bridge") {
    throw Error("ENOENT", "bridge " + std::string(bridge) + " does not exist (create it first)");
  }
  Link tap = find(cache.get(), name);
  if (tap) {
    if (kind_of(tap.get()) != "tun" || rtnl_link_get_master(tap.get()) != rtnl_link_get_ifindex(br.get())) {
      throw Error("EEXIST", "link " + std::string(name) + " exists and is not a tap on " + std::string(bridge));
    }
  } else {
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd) throw Error::last("cannot open", "/dev/net/tun");
    struct ifreq ifr = {};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof ifr.ifr_name - 1));
    int rc = ::ioctl(fd.get(), TUNSETIFF, &ifr);
    if (rc == 0) rc = ::ioctl(fd.get(), TUNSETOWNER, static_cast<unsigned long>(owner));
    if (rc == 0) rc = ::ioctl(fd.get(), TUNSETPERSIST, 1UL);
    if (rc != 0) throw Error::last("cannot create tap", name);
    fd.reset();  // TUNSETPERSIST keeps the tap without this descriptor
    cache = links(s.get());
    tap = find(cache.get(), name);
    if (!tap) throw Error("ENOENT", "tap " + std::string(name) + " vanished right after creation");
    if (int r = rtnl_link_enslave(s.get(), br.get(), tap.get()); r < 0) {
      rtnl_link_delete(s.get(), tap.get());
      fail(r, "cannot attach to " + std::string(bridge) + ":", name);
    }
  }
  set_up(s.get(), tap.get(), name, std::string(alias).c_str());
}

UniqueFd open_tap(std::string_view name, std::string_view bridge, uid_t owner, std::string_view alias) {
  create_tap(name, bridge, owner, alias);
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) throw Error::last("cannot open", "/dev/net/tun");
  struct ifreq ifr = {};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof ifr.ifr_name - 1));
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) throw Error::last("cannot attach to tap", name);
  return fd;
}

bool delete_link(std::string_view name, std::string_view kind) {
  Sock s = connect();
  Cache cache = links(s.get());
  Link l = find(cache.get(), name);
  if (!l) return false;
  if (kind_of(l.get()) != kind) {
    throw Error("EPERM", "link " + std::string(name) + " is a " + kind_of(l.get()) + " device, not a " +
                             std::string(kind) + "; refusing to delete it");
  }
  if (int rc = rtnl_link_delete(s.get(), l.get()); rc < 0 && rc != -NLE_OBJ_NOTFOUND && rc != -NLE_NODEV) {
    fail(rc, "cannot delete", name);
  }
  return true;
}

}  // namespace banger::net
