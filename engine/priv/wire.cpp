#include "engine/priv/wire.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cstring>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger::priv {

using nlohmann::json;

std::string encode_request(std::string_view op, const json& params) {
  return json{{"op", op}, {"params", params}}.dump() + "\n";
}

std::string encode_ok(const json& result) { return json{{"ok", result}}.dump() + "\n"; }

std::string encode_error(std::string_view code, std::string_view message) {
  // Replace invalid UTF-8 rather than throw: messages may quote user input.
  return json{{"error", {{"code", code}, {"message", message}}}}.dump(-1, ' ', false,
                                                                      json::error_handler_t::replace) +
         "\n";
}

json decode_response(const std::string& line) {
  json r = json::parse(line, nullptr, false);
  if (r.is_discarded() || !r.is_object()) throw Error("EPROTO", "the root helper sent a malformed response");
  if (r.contains("ok")) return r["ok"];
  if (r.contains("error") && r["error"].is_object()) {
    const auto& e = r["error"];
    throw Error(e.value("code", "EPROTO"), "root helper: " + e.value("message", "unknown error"));
  }
  throw Error("EPROTO", "the root helper sent a response without a result or an error");
}

void send_line(int sock, std::string_view line, const std::vector<int>& fds) {
  if (fds.size() > kMaxFds) throw Error("EMSGSIZE", "too many descriptors for one message");
  size_t sent = 0;
  while (sent < line.size()) {
    iovec iov{const_cast<char*>(line.data() + sent), line.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))] = {};
    if (!fds.empty() && sent == 0) {  // the descriptors ride with the first byte
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
      std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    }
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error::last("sendmsg", "helper connection");
    }
    sent += static_cast<size_t>(n);
  }
}

std::string recv_line(int sock, std::string& buffer, std::vector<UniqueFd>& fds,
                      std::chrono::steady_clock::time_point deadline) {
  bool too_many = false;
  for (;;) {
    if (auto nl = buffer.find('\n'); nl != std::string::npos) {
      if (too_many) throw Error("EMSGSIZE", "more than " + std::to_string(kMaxFds) + " descriptors with one message");
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return line;
    }
    if (buffer.size() > kMaxLine) throw Error("EMSGSIZE", "oversized message on the helper connection");
    cancel::check();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw Error("ETIMEDOUT", "timed out waiting on the helper connection");
    pollfd p{sock, POLLIN, 0};
    if (cancel::poll(&p, 1, std::min(left, std::chrono::milliseconds(1000))) <= 0) continue;
    char data[4096];
    iovec iov{data, sizeof data};
    // Room for more than we accept, so an oversupply is seen (and closed)
    // rather than truncated by the kernel into descriptors we never see.
    alignas(cmsghdr) char control[CMSG_SPACE(2 * kMaxFds * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("recvmsg", "helper connection");
    if (msg.msg_flags & MSG_CTRUNC) too_many = true;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int got = -1;
        std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        UniqueFd owned(got);
        if (fds.size() < kMaxFds) {
          fds.push_back(std::move(owned));
        } else {
          too_many = true;  // `owned` closes it
        }
      }
    }
    if (n == 0) throw Error("EPIPE", "the helper connection was closed");
    buffer.append(data, static_cast<size_t>(n));
  }
}

}  // namespace banger::priv
