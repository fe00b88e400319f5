#include "engine/net/dns_forward.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/net/dns_egress.hpp"
#include "engine/net/dns_message.hpp"

namespace banger::dns {
namespace {

sockaddr_in ipv4_address(const std::string& ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) throw Error("EINVAL", "invalid IPv4 address '" + ip + "'");
  return a;
}

sockaddr_in server_address(const std::string& server) {
  auto colon = server.find(':');
  if (colon == std::string::npos) return ipv4_address(server, 53);
  long port = 0;
  try {
    port = std::stol(server.substr(colon + 1));
  } catch (const std::exception&) {
    port = 0;
  }
  if (port < 1 || port > 65535) throw Error("EINVAL", "invalid DNS server '" + server + "'");
  return ipv4_address(server.substr(0, colon), static_cast<std::uint16_t>(port));
}

}  // namespace

UdpListener::UdpListener(const std::string& address, std::uint16_t port) {
  sockaddr_in addr = ipv4_address(address, port);
  fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw Error::last("socket");
  if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw Error::last("bind", address + ":" + std::to_string(port));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

std::optional<Datagram> UdpListener::receive(std::chrono::milliseconds timeout) {
  pollfd p{fd_.get(), POLLIN, 0};
  if (cancel::poll(&p, 1, timeout) <= 0) return std::nullopt;
  char buf[4096];
  sockaddr_in peer{};
  socklen_t plen = sizeof peer;
  ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer), &plen);
  if (n < 0) return std::nullopt;
  char ip[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
  return Datagram{std::string(buf, static_cast<size_t>(n)), ip, ntohs(peer.sin_port)};
}

void UdpListener::send(std::string_view data, const std::string& ip, std::uint16_t port) {
  sockaddr_in to = ipv4_address(ip, port);
  ::sendto(fd_.get(), data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
}

std::optional<std::string> forward(std::string_view query, const std::vector<std::string>& servers,
                                   std::chrono::milliseconds timeout) {
  auto q = parse_query(query);
  if (!q || !q->question) return std::nullopt;
  std::string question(query.substr(12, q->question_end - 12));
  for (const auto& server : servers) {
    sockaddr_in to = server_address(server);
    // A connected socket of its own per server: the kernel drops datagrams
    // from any other address, so only that server can answer.
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) throw Error::last("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) continue;
    if (::send(fd.get(), query.data(), query.size(), 0) < 0) continue;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd.get(), POLLIN, 0};
      if (cancel::poll(&p, 1, left) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      std::string reply(buf, static_cast<size_t>(n));
      auto a = parse_answer(reply, q->question->name);
      if (a && a->id == q->id && a->question == question) return reply;
    }
  }
  return std::nullopt;
}

}  // namespace banger::dns
