// fake-firecracker: a stand-in for the Firecracker VMM for tests on hosts
// where it cannot run. It takes Firecracker's command line, serves the same
// HTTP API on the Unix socket given by --api-sock (created under the process
// umask, like Firecracker), enforces the same pre-/post-boot state machine
// and answers with the same status codes and fault messages. No guest runs.
//
// Test hooks (environment):
//   FAKE_FC_RECORD=<file>        every call as a JSON line (record.hpp)
//   FAKE_FC_FAIL=<path>          answer 400 on that path (message: FAKE_FC_FAIL_MESSAGE)
//   FAKE_FC_DIE_ON=<path>        SIGKILL itself when that path is requested
//   FAKE_FC_EXIT_AT_START=<code> exit at once with that code, before the socket
//   FAKE_FC_START_DELAY_MS=<ms>  wait before creating the API socket
//   FAKE_FC_CAD_DELAY_MS=<ms>    guest reset delay after SendCtrlAltDel (50)
//   FAKE_FC_IGNORE_CTRL_ALT_DEL=1 the guest ignores Ctrl-Alt-Del
//   FAKE_FC_VSOCK_BACKEND=<sock> the "guest" end of vsock connections (vsock.hpp)
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http.hpp"
#include "record.hpp"
#include "vmm.hpp"

namespace {

using namespace fakefc;

struct Options {
  std::string api_sock = "/run/firecracker.socket";
  std::string id = "anonymous-instance";
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "Arguments parsing error: %s\n\nFor more information try --help\n", msg.c_str());
  std::exit(153);
}

Options parse_args(int argc, char** argv) {
  // Firecracker's other flags: accepted (with their value) and ignored.
  static const std::set<std::string> with_value = {
      "--seccomp-filter", "--start-time-us", "--start-time-cpu-us", "--parent-cpu-time-us", "--metadata",
      "--log-path", "--level", "--module", "--metrics-path", "--http-api-max-payload-size", "--mmds-size-limit"};
  static const std::set<std::string> flags = {"--no-seccomp", "--show-level", "--show-log-origin", "--boot-timer",
                                              "--enable-pci"};
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error("The argument '" + a + "' requires a value but none was supplied");
      return argv[++i];
    };
    if (a == "--api-sock") {
      o.api_sock = value();
    } else if (a == "--id") {
      o.id = value();
    } else if (a == "--version") {
      std::printf("Firecracker v%s (fake-firecracker)\n", kVersion);
      std::exit(0);
    } else if (a == "--no-api" || a == "--config-file") {
      std::fprintf(stderr, "fake-firecracker: %s is not supported by the fake\n", a.c_str());
      std::exit(1);
    } else if (with_value.count(a)) {
      value();
    } else if (!flags.count(a)) {
      usage_error("Found argument '" + a + "' which wasn't expected, or isn't valid in this context.");
    }
  }
  // Firecracker's validate_instance_id: letters, digits, '-', 1..64.
  bool ok = !o.id.empty() && o.id.size() <= 64;
  for (unsigned char c : o.id) ok = ok && (std::isalnum(c) || c == '-');
  if (!ok) {
    std::fprintf(stderr, "Invalid instance ID: %s\n", o.id.c_str());
    std::exit(1);
  }
  return o;
}

int listen_api(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    std::fprintf(stderr, "Error: RunWithApi(FailedToBindAndRunHttpServer(path too long))\n");
    std::exit(1);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  // No chmod afterwards: the socket's mode comes from the umask, as in Firecracker.
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    if (errno == EADDRINUSE) {
      std::fprintf(stderr, "Error: RunWithApi(FailedToBindSocket(\"%s\"))\n", path.c_str());
    } else {
      std::fprintf(stderr, "Error: RunWithApi(FailedToBindAndRunHttpServer(%s))\n", std::strerror(errno));
    }
    std::exit(1);
  }
  return fd;
}

bool send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 1000);
      continue;
    }
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

Reply answer(Vmm& vmm, const HttpRequest& req) {
  if (env_or("FAKE_FC_DIE_ON", "") == req.path) {
    record(req.method, req.path, req.body, nullptr);
    std::fflush(stdout);
    ::kill(::getpid(), SIGKILL);
  }
  if (env_or("FAKE_FC_FAIL", "") == req.path) {
    Reply r = fault(env_or("FAKE_FC_FAIL_MESSAGE", "Injected failure (FAKE_FC_FAIL) on " + req.method + " " + req.path));
    record(req.method, req.path, req.body, r.status, true);
    return r;
  }
  Reply r;
  try {
    r = vmm.handle(req.method, req.path, req.body, req.has_body);
  } catch (const std::exception& e) {
    r = fault(std::string("fake-firecracker internal error: ") + e.what(), 500);
  }
  record(req.method, req.path, req.body, r.status);
  return r;
}

struct Conn {
  int fd;
  std::string in;
};

}  // namespace

int main(int argc, char** argv) {
  Options opts = parse_args(argc, argv);
  if (const char* code = std::getenv("FAKE_FC_EXIT_AT_START")) {
    std::fprintf(stderr, "fake-firecracker: exiting at start as asked (FAKE_FC_EXIT_AT_START=%s)\n", code);
    return std::atoi(code);
  }
  if (const char* delay = std::getenv("FAKE_FC_START_DELAY_MS")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
  }
  ::signal(SIGPIPE, SIG_IGN);
  int api = listen_api(opts.api_sock);
  std::printf("fake-firecracker v%s: instance %s, API on %s\n", kVersion, opts.id.c_str(), opts.api_sock.c_str());
  std::fflush(stdout);

  Vmm vmm(opts.id);
  std::vector<Conn> conns;
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    int timeout = 200;
    if (auto at = vmm.exit_at()) {
      if (now >= *at) {
        std::printf("fake-firecracker: exiting with code %d\n", vmm.exit_code());
        std::fflush(stdout);
        std::_Exit(vmm.exit_code());  // vsock threads may still run: no static destructors
      }
      timeout = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(*at - now).count()) + 1;
    }
    std::vector<pollfd> fds{{api, POLLIN, 0}};
    // Like a device whose vCPUs are not running yet, the vsock socket only
    // accepts (rather than queues) connections while the guest runs.
    bool vsock_live = vmm.state() == State::running && vmm.vsock().fd() >= 0;
    if (vsock_live) fds.push_back({vmm.vsock().fd(), POLLIN, 0});
    for (const auto& c : conns) fds.push_back({c.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR) continue;
      std::perror("poll");
      return 1;
    }
    if (fds[0].revents & POLLIN) {
      int c = ::accept4(api, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) conns.push_back({c, {}});
    }
    size_t first_conn = 1;
    if (vsock_live) {
      if (fds[1].revents & POLLIN) vmm.vsock().accept_one();
      first_conn = 2;
    }
    std::vector<int> closed;
    for (size_t i = first_conn; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      Conn& c = conns[i - first_conn];
      char buf[65536];
      ssize_t r = ::read(c.fd, buf, sizeof buf);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        closed.push_back(c.fd);
        continue;
      }
      c.in.append(buf, static_cast<size_t>(r));
      for (;;) {
        HttpRequest req;
        std::string err;
        Parse p = parse_request(c.in, req, err);
        if (p == Parse::incomplete) break;
        if (p == Parse::bad) {
          send_all(c.fd, format_response(400, fault(err).body));
          closed.push_back(c.fd);
          break;
        }
        Reply rep = answer(vmm, req);
        if (!send_all(c.fd, format_response(rep.status, rep.body)) || req.close) {
          closed.push_back(c.fd);
          break;
        }
      }
    }
    for (int fd : closed) {
      ::close(fd);
      std::erase_if(conns, [fd](const Conn& c) { return c.fd == fd; });
    }
  }
}
