#include "engine/net/dns_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger::dns {

Server::Server(const std::string& address, std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    throw Error("EINVAL", "invalid DNS listen address '" + address + "'");
  }
  fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd_) throw Error::last("socket");
  if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw Error::last("bind", address + ":" + std::to_string(port));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

bool Server::serve_once(std::chrono::milliseconds timeout, const Lookup& lookup) {
  pollfd p{fd_.get(), POLLIN, 0};
  if (cancel::poll(&p, 1, timeout) <= 0) return false;  // a signal wakes it (ECANCELED)
  char buf[4096];  // queries are small; anything longer is truncated and fails to parse
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer), &plen);
  if (n < 0) return true;
  std::string_view packet(buf, static_cast<size_t>(n));
  std::string reply;
  std::exception_ptr failure;
  try {
    reply = respond(packet, lookup);
  } catch (...) {
    failure = std::current_exception();
    reply = servfail(packet);
  }
  if (!reply.empty()) {
    ::sendto(fd_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), plen);
  }
  if (failure) std::rethrow_exception(failure);
  return true;
}

}  // namespace banger::dns
