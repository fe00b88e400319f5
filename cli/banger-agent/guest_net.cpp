// Raw rtnetlink rather than libnl-route (which banger uses on the host):
// linked statically, libnl pulls glibc's NSS resolver into the agent
// (getaddrinfo, +1.4 MB and link-time warnings) for five fixed requests.
#include "guest_net.hpp"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <netpacket/packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::agent {
namespace {

// One request being built: a netlink header, the family header, attributes.
class Message {
 public:
  Message(std::uint16_t type, std::uint16_t flags, const void* family_header, size_t size) {
    buf_.resize(NLMSG_LENGTH(size));
    auto* h = header();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
    std::memcpy(NLMSG_DATA(h), family_header, size);
    h->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
  }
  void attr(std::uint16_t type, const void* data, size_t size) {
    size_t at = NLMSG_ALIGN(buf_.size());
    buf_.resize(at + RTA_SPACE(size));
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + at);
    a->rta_type = type;
    a->rta_len = static_cast<std::uint16_t>(RTA_LENGTH(size));
    std::memcpy(RTA_DATA(a), data, size);
    header()->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
  }
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }

 private:
  std::vector<char> buf_;
};

class Rtnl {
 public:
  Rtnl() {
    fd_.reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd_) throw Error::last("open rtnetlink");
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) throw Error::last("bind rtnetlink");
  }

  // Sends with NLM_F_ACK; returns 0 or the kernel's negative errno.
  int request(Message& m) {
    int result = 1;
    exchange(m, NLM_F_ACK, [&](const nlmsghdr* h) {
      if (h->nlmsg_type == NLMSG_ERROR) result = static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
      return h->nlmsg_type != NLMSG_ERROR;
    });
    return result;
  }
  void must(Message& m, const std::string& what) {
    if (int rc = request(m); rc != 0) throw Error::sys(-rc, what);
  }
  // A dump: every answer until NLMSG_DONE goes to `each`.
  template <class Fn>
  void dump(Message& m, const std::string& what, Fn each) {
    int error = 0;
    exchange(m, NLM_F_DUMP, [&](const nlmsghdr* h) {
      if (h->nlmsg_type == NLMSG_DONE) return false;
      if (h->nlmsg_type == NLMSG_ERROR) {
        error = static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        return false;
      }
      each(h);
      return true;
    });
    if (error) throw Error::sys(-error, what);
  }

 private:
  template <class Fn>
  void exchange(Message& m, std::uint16_t flags, Fn on_message) {
    nlmsghdr* h = m.header();
    h->nlmsg_flags |= flags;
    h->nlmsg_seq = ++seq_;
    if (::send(fd_.get(), h, h->nlmsg_len, 0) != static_cast<ssize_t>(h->nlmsg_len)) throw Error::last("send rtnetlink");
    std::vector<char> buf(64 * 1024);
    for (;;) {
      ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error::last("receive rtnetlink");
      int left = static_cast<int>(n);
      for (auto* r = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(r, left); r = NLMSG_NEXT(r, left)) {
        if (r->nlmsg_seq != seq_) continue;
        if (!on_message(r)) return;
      }
    }
  }

  UniqueFd fd_;
  std::uint32_t seq_ = 0;
};

in_addr ipv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) throw Error("EINVAL", "not an IPv4 address: " + text);
  return a;
}

void set_link(Rtnl& nl, int ifindex, bool up, const std::string& dev) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = up ? IFF_UP : 0;
  ifi.ifi_change = IFF_UP;
  Message m(RTM_NEWLINK, 0, &ifi, sizeof ifi);
  nl.must(m, std::string("set ") + dev + (up ? " up" : " down"));
}

void mac_bytes(const std::string& mac, unsigned char (&bytes)[6]) {
  for (int i = 0; i < 6; ++i) bytes[i] = static_cast<unsigned char>(std::stoul(mac.substr(i * 3, 2), nullptr, 16));
}

void set_mac(Rtnl& nl, int ifindex, const std::string& mac, const std::string& dev) {
  unsigned char bytes[6];
  mac_bytes(mac, bytes);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  Message m(RTM_NEWLINK, 0, &ifi, sizeof ifi);
  m.attr(IFLA_ADDRESS, bytes, sizeof bytes);
  nl.must(m, "set the MAC of " + dev + " to " + mac);
}

struct OldAddress {
  unsigned char prefix;
  in_addr local, address;
};

void remove_ipv4(Rtnl& nl, int ifindex, const std::string& dev) {
  ifaddrmsg q{};
  q.ifa_family = AF_INET;
  Message list(RTM_GETADDR, 0, &q, sizeof q);
  std::vector<OldAddress> old;
  nl.dump(list, "list the addresses of " + dev, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR) return;
    const auto* ifa = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
    if (static_cast<int>(ifa->ifa_index) != ifindex || ifa->ifa_family != AF_INET) return;
    OldAddress a{ifa->ifa_prefixlen, {}, {}};
    int len = static_cast<int>(IFA_PAYLOAD(h));
    for (const rtattr* r = IFA_RTA(ifa); RTA_OK(r, len); r = RTA_NEXT(r, len)) {
      if (r->rta_type == IFA_LOCAL) std::memcpy(&a.local, RTA_DATA(r), sizeof a.local);
      if (r->rta_type == IFA_ADDRESS) std::memcpy(&a.address, RTA_DATA(r), sizeof a.address);
    }
    old.push_back(a);
  });
  for (const OldAddress& a : old) {
    ifaddrmsg d{};
    d.ifa_family = AF_INET;
    d.ifa_prefixlen = a.prefix;
    d.ifa_index = static_cast<std::uint32_t>(ifindex);
    Message m(RTM_DELADDR, 0, &d, sizeof d);
    m.attr(IFA_LOCAL, &a.local, sizeof a.local);
    m.attr(IFA_ADDRESS, &a.address, sizeof a.address);
    // Secondary addresses may go with their primary.
    if (int rc = nl.request(m); rc != 0 && rc != -EADDRNOTAVAIL && rc != -ENOENT) {
      char text[INET_ADDRSTRLEN] = {};
      inet_ntop(AF_INET, &a.local, text, sizeof text);
      throw Error::sys(-rc, std::string("remove ") + text + " from " + dev);
    }
  }
}

void add_ipv4(Rtnl& nl, int ifindex, const guest::NetConfig& net) {
  in_addr a = ipv4(net.address);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = static_cast<unsigned char>(net.prefix);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<std::uint32_t>(ifindex);
  Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof ifa);
  m.attr(IFA_LOCAL, &a, sizeof a);
  m.attr(IFA_ADDRESS, &a, sizeof a);
  nl.must(m, "add " + net.address + "/" + std::to_string(net.prefix) + " to " + net.dev);
}

void default_route(Rtnl& nl, int ifindex, const guest::NetConfig& net) {
  in_addr gw = ipv4(net.gateway);
  rtmsg rt{};
  rt.rtm_family = AF_INET;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  Message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof rt);
  m.attr(RTA_GATEWAY, &gw, sizeof gw);
  std::uint32_t oif = static_cast<std::uint32_t>(ifindex);
  m.attr(RTA_OIF, &oif, sizeof oif);
  nl.must(m, "add the default route via " + net.gateway + " on " + net.dev);
}

// A gratuitous ARP (a request for our own address from our own MAC, to
// everyone), a few times: the host's neighbour entry for this address may
// still name the MAC of the VM that had it before (a deleted VM, or this
// guest's source), and without the announcement the host keeps sending there
// until the entry times out (seen: SSH to a restored VM unanswered for 30 s).
// Linux's arp_notify would not do it here: it announces on a MAC change of
// a link that is up, and the MAC is changed while the link is down.
void announce(int ifindex, const guest::NetConfig& net) {
  struct __attribute__((packed)) {
    std::uint16_t htype, ptype;
    std::uint8_t hlen, plen;
    std::uint16_t oper;
    unsigned char sha[6];
    in_addr spa;
    unsigned char tha[6];
    in_addr tpa;
  } arp{};
  arp.htype = htons(ARPHRD_ETHER);
  arp.ptype = htons(ETH_P_IP);
  arp.hlen = 6;
  arp.plen = 4;
  arp.oper = htons(ARPOP_REQUEST);
  unsigned char mac[6];
  mac_bytes(net.mac, mac);
  std::memcpy(arp.sha, mac, sizeof mac);
  const in_addr self = ipv4(net.address);
  std::memcpy(&arp.spa, &self, sizeof self);
  std::memcpy(&arp.tpa, &self, sizeof self);
  UniqueFd fd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP)));
  if (!fd) throw Error::last("socket", "AF_PACKET for a gratuitous ARP on " + net.dev);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  int sent = 0;
  for (int i = 0; i < 3; ++i) {
    if (::sendto(fd.get(), &arp, sizeof arp, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == sizeof arp) ++sent;
    if (i < 2) ::usleep(20 * 1000);
  }
  if (sent == 0) throw Error::last("sendto", "a gratuitous ARP on " + net.dev);
}

}  // namespace

void readdress(const guest::NetConfig& net) {
  int ifindex = static_cast<int>(::if_nametoindex(net.dev.c_str()));
  if (ifindex == 0) throw Error("ENODEV", "no network interface " + net.dev);
  Rtnl nl;
  set_link(nl, ifindex, false, net.dev);
  set_mac(nl, ifindex, net.mac, net.dev);
  remove_ipv4(nl, ifindex, net.dev);
  add_ipv4(nl, ifindex, net);
  set_link(nl, ifindex, true, net.dev);
  if (!net.gateway.empty()) default_route(nl, ifindex, net);
  announce(ifindex, net);
}

}  // namespace banger::agent
