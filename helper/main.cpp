// banger-helper: the narrow root helper. It serves the typed operations of
// engine/priv/ops.hpp on a Unix socket to one registered owner (and root),
// nothing else. See docs/privileges.md.
//
//   banger-helper --socket PATH --owner UID[:GID]
//   banger-helper --operations     list the operations and their gates (JSON)
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/log.hpp"
#include "engine/priv/ops.hpp"
#include "engine/priv/server.hpp"

namespace {

void on_signal(int sig) { banger::cancel::request(sig); }

unsigned long number(std::string_view s, const char* what) {
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    throw banger::Error("EINVAL", std::string("invalid ") + what + ": '" + std::string(s) + "'");
  }
  return v;
}

int usage() {
  std::fputs("usage: banger-helper --socket PATH --owner UID[:GID]\n       banger-helper --operations\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  std::string owner;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--operations") {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& op : banger::priv::operations()) list.push_back({{"name", op.name}, {"gate", op.gate}});
      std::cout << list.dump(2) << "\n";
      return 0;
    }
    if ((a == "--socket" || a == "--owner") && i + 1 < argc) {
      (a == "--socket" ? socket : owner) = argv[++i];
    } else {
      return usage();
    }
  }
  if (socket.empty() || owner.empty() || socket.front() != '/') return usage();
  banger::log::set_stderr_level(banger::log::Level::info);
  try {
    if (::geteuid() != 0) throw banger::Error("EPERM", "banger-helper must run as root");
    auto colon = owner.find(':');
    uid_t uid = static_cast<uid_t>(number(owner.substr(0, colon), "owner uid"));
    gid_t gid = colon == std::string::npos ? static_cast<gid_t>(uid)
                                           : static_cast<gid_t>(number(owner.substr(colon + 1), "owner gid"));
    if (uid == 0) throw banger::Error("EINVAL", "the owner must not be root (root uses banger in-process)");
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    {
      banger::priv::Server server({socket, uid, gid, 32});
      server.run();
    }  // closes and removes the socket, waits for the connection threads
    // SIGTERM/SIGINT are how a service is stopped: a clean stop exits 0, so
    // systemd does not mark the unit failed (it would for 143); docs/privileges.md.
    if (banger::cancel::requested()) {
      banger::log::write(banger::log::Level::info, "helper",
                         std::string("stopped by ") + (banger::cancel::signal() == SIGTERM ? "SIGTERM" : "SIGINT"));
    }
    return 0;
  } catch (const banger::Error& e) {
    std::fprintf(stderr, "banger-helper: %s\n", e.what());
    return 1;
  }
}
