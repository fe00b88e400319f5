// forward-probe SOCKET PORT REQUEST [CHANNELS]: the end-to-end specs' driver
// for AgentDialer (tests/lua/e2e_agent_forward_spec.lua). Dials the guest's
// TCP PORT CHANNELS times (2) at once through the agent session on SOCKET (a VM's
// forward.sock), sends REQUEST on both, half-closes, and prints each answer
// after a line "== channel N"; errors go to stderr as "CODE: message", exit 1.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/guest/agent_dialer.hpp"

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: forward-probe SOCKET PORT REQUEST [CHANNELS]\n");
    return 2;
  }
  try {
    banger::guest::AgentDialer dialer({banger::guest::Endpoint::Kind::unix_socket, argv[1], 0, 52});
    auto port = static_cast<std::uint16_t>(std::stoi(argv[2]));
    std::vector<banger::UniqueFd> fds;
    int channels = argc == 5 ? std::stoi(argv[4]) : 2;
    for (int i = 0; i < channels; ++i) fds.push_back(dialer.dial(banger::net::ForwardProto::tcp, port));
    std::string request = argv[3];
    std::vector<std::string> answers(fds.size());
    std::vector<std::thread> readers;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (::send(fds[i].get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
        throw banger::Error::last("send");
      ::shutdown(fds[i].get(), SHUT_WR);
      readers.emplace_back([&, i] {
        char buf[4096];
        for (ssize_t n; (n = ::read(fds[i].get(), buf, sizeof buf)) > 0;) answers[i].append(buf, static_cast<size_t>(n));
      });
    }
    for (auto& r : readers) r.join();
    for (size_t i = 0; i < answers.size(); ++i) std::printf("== channel %zu\n%s\n", i + 1, answers[i].c_str());
    std::printf("== sessions %d\n", dialer.sessions());
    return 0;
  } catch (const banger::Error& e) {
    std::fprintf(stderr, "%s: %s\n", e.code().c_str(), e.what());
    return 1;
  }
}
