#include "engine/net/dns_server.hpp"

namespace banger::dns {

bool Server::serve_once(std::chrono::milliseconds timeout, const Lookup& lookup) {
  auto query = listener_.receive(timeout);  // a signal wakes it (ECANCELED)
  if (!query) return false;
  std::string reply;
  std::exception_ptr failure;
  try {
    reply = respond(query->data, lookup);
  } catch (...) {
    failure = std::current_exception();
    reply = servfail(query->data);
  }
  if (!reply.empty()) listener_.send(reply, query->peer_ip, query->peer_port);
  if (failure) std::rethrow_exception(failure);
  return true;
}

}  // namespace banger::dns
