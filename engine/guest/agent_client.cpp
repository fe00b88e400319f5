#include "engine/guest/agent_client.hpp"

#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <csignal>
#include <exception>
#include <thread>

#include "engine/core/build_info.hpp"
#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unix_socket.hpp"

namespace banger::guest {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string nonce() {
  unsigned char b[8];
  if (getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) throw Error::last("getrandom");
  std::string s;
  for (unsigned char c : b) {
    s += "0123456789abcdef"[c >> 4];
    s += "0123456789abcdef"[c & 15];
  }
  return s;
}

UniqueFd open_endpoint(const Endpoint& ep, std::chrono::milliseconds timeout) {
  switch (ep.kind) {
    case Endpoint::Kind::unix_socket: return net_unix::connect(ep.path, timeout);
    case Endpoint::Kind::vsock_uds: {
      // Firecracker's host side of vsock: a Unix socket speaking
      // "CONNECT <port>\n" / "OK <host port>\n" before the guest's bytes flow.
      UniqueFd fd = net_unix::connect(ep.path, timeout);
      net_unix::write_all(fd.get(), "CONNECT " + std::to_string(ep.port) + "\n", ep.path);
      std::string buf;
      std::string line = net_unix::read_line(fd.get(), buf, clock::now() + timeout, "vsock " + ep.path);
      if (line.rfind("OK ", 0) != 0) throw Error("ECONNREFUSED", "vsock " + ep.path + ": " + line);
      if (!buf.empty()) throw Error("EPROTO", "vsock " + ep.path + ": unexpected bytes after OK");
      return fd;
    }
    case Endpoint::Kind::vsock: {
      UniqueFd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd) throw Error::last("socket(AF_VSOCK)");
      sockaddr_vm addr{};
      addr.svm_family = AF_VSOCK;
      addr.svm_cid = ep.cid;
      addr.svm_port = ep.port;
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw Error::last("connect vsock", "cid " + std::to_string(ep.cid));
      return fd;
    }
  }
  throw Error("EINVAL", "unknown agent endpoint");
}

// An error about a torn frame left on the stream by an earlier host session
// (see the agent's hello handling): not about anything this host sent.
bool stale_frame_error(const Frame& f) {
  if (f.type != FrameType::error || f.channel != 0) return false;
  auto j = nlohmann::json::parse(f.payload, nullptr, false);
  return j.is_object() && j.value("code", "") == "EFRAME";
}

std::string describe(const Endpoint& ep) {
  return ep.kind == Endpoint::Kind::vsock ? "vsock cid " + std::to_string(ep.cid) : "agent at " + ep.path;
}

}  // namespace

std::unique_ptr<AgentClient> AgentClient::connect(const Endpoint& ep, std::chrono::milliseconds timeout) {
  std::unique_ptr<AgentClient> c(new AgentClient(open_endpoint(ep, timeout), describe(ep)));
  c->handshake(timeout);
  return c;
}

std::unique_ptr<AgentClient> AgentClient::wait_ready(const Endpoint& ep, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  std::string last = "no answer";
  for (;;) {
    cancel::check();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) throw Error("ETIMEDOUT", "the guest agent did not answer in time (" + last + ")");
    try {
      return connect(ep, std::min(left, std::chrono::milliseconds(5000)));
    } catch (const Error& e) {
      if (e.code() == "ECANCELED" || e.code() == "EPROTO") throw;
      last = e.what();
    }
    cancel::sleep_for(200ms);
  }
}

AgentClient::~AgentClient() = default;

AgentStream AgentClient::open_stream(const Endpoint& ep, std::chrono::milliseconds timeout) {
  std::unique_ptr<AgentClient> c = connect(ep, timeout);
  return {std::move(c->fd_), std::move(c->reader_), std::move(c->hello_)};
}

void AgentClient::send(const std::string& bytes) { net_unix::write_all(fd_.get(), bytes, what_); }

Frame AgentClient::read_frame(clock::time_point deadline) {
  for (;;) {
    if (auto f = reader_.next()) return *f;
    cancel::check();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) throw Error("ETIMEDOUT", "timed out waiting for the " + what_);
    pollfd p{fd_.get(), POLLIN, 0};
    if (cancel::poll(&p, 1, std::min(left, std::chrono::milliseconds(1000))) <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("read", what_);
    if (n == 0) throw Error("EPIPE", "the " + what_ + " closed the connection");
    reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

void AgentClient::raise_error(const Frame& f) {
  nlohmann::json j = f.json();
  throw Error(j.value("code", "EAGENT"), "guest: " + j.value("message", std::string("unknown error")));
}

Frame AgentClient::expect(std::uint32_t ch, clock::time_point deadline) {
  for (;;) {
    Frame f = read_frame(deadline);
    if (f.type == FrameType::hello_ok || stale_frame_error(f)) continue;  // leftovers of the handshake
    if (f.type == FrameType::error && (f.channel == ch || f.channel == 0)) raise_error(f);
    if (f.channel == ch) return f;
  }
}

void AgentClient::handshake(std::chrono::milliseconds timeout) {
  session_ = nonce();
  const std::string hello = encode_json(
      FrameType::hello, 0, {{"proto", kProtocolMajor}, {"host_version", build::version}, {"session", session_}});
  auto deadline = clock::now() + timeout;
  // On a serial port the agent may not be reading yet, and stale frames from
  // an earlier session may be queued: repeat the hello and wait for the
  // answer carrying our nonce.
  for (;;) {
    send(hello);
    auto round = std::min(deadline, clock::now() + 1000ms);
    try {
      for (;;) {
        Frame f = read_frame(round);
        if (stale_frame_error(f)) continue;
        if (f.type == FrameType::error && f.channel == 0) raise_error(f);
        if (f.type != FrameType::hello_ok) continue;
        nlohmann::json j = f.json();
        if (j.value("session", "") != session_) continue;
        if (j.value("proto", 0) != kProtocolMajor)
          throw Error("EPROTO", "the guest agent speaks protocol " + std::to_string(j.value("proto", 0)) +
                                    ", banger speaks " + std::to_string(kProtocolMajor));
        hello_ = j;
        return;
      }
    } catch (const Error& e) {
      if (e.code() != "ETIMEDOUT" || clock::now() >= deadline) throw;
    }
  }
}

ExecResult AgentClient::exec(const ExecRequest& req, const OutputFn& on_stdout, const OutputFn& on_stderr) {
  std::uint32_t ch = next_channel_++;
  nlohmann::json body = {{"argv", req.argv}, {"env", req.env}, {"stdin", req.stdin_data.has_value()}};
  if (!req.cwd.empty()) body["cwd"] = req.cwd;
  send(encode_json(FrameType::exec, ch, body));
  expect(ch, clock::now() + 30s);  // started (or an error, raised)
  if (req.stdin_data) {
    std::string_view rest = *req.stdin_data;
    while (!rest.empty()) {
      size_t n = std::min(rest.size(), kDataChunk);
      send(encode(FrameType::stdin_data, ch, rest.substr(0, n)));
      rest.remove_prefix(n);
    }
    send(encode(FrameType::stdin_eof, ch, {}));
  }
  ExecResult result;
  clock::time_point kill_at = clock::time_point::max();
  const clock::time_point timeout_at =
      req.timeout.count() > 0 ? clock::now() + req.timeout : clock::time_point::max();
  int received = 0;  // the signal that interrupted us, passed on to the command
  std::exception_ptr failed;  // an output callback's error, raised once the command is gone
  for (;;) {
    Frame f;
    // Woken for whichever comes first: the command's timeout, the SIGKILL
    // after a passed-on signal, or nothing for a day.
    const clock::time_point wake =
        std::min(clock::now() + 24h, result.timed_out ? kill_at : std::min(kill_at, timeout_at));
    try {
      f = expect(ch, wake);
    } catch (const Error& e) {
      // (read_frame's deadline check rounds to milliseconds: compare with the
      // deadline it was given, not the clock)
      if (e.code() == "ETIMEDOUT" && !result.timed_out && wake == timeout_at) {
        // The command's time is up: its process group is killed, and its
        // exit (and the output before it) is still read.
        result.timed_out = true;
        send(encode_json(FrameType::signal, ch, {{"signal", SIGKILL}}));
        continue;
      }
      if (e.code() == "ETIMEDOUT" && wake == kill_at) {
        send(encode_json(FrameType::signal, ch, {{"signal", SIGKILL}}));
        kill_at = clock::time_point::max();
        continue;
      }
      if (e.code() != "ECANCELED") throw;
      // SIGINT/SIGTERM: the command gets the same signal first, SIGKILL if it
      // lingers; we keep reading so its exit is still reported.
      if (!result.interrupted) {
        result.interrupted = true;
        received = cancel::signal() > 0 ? cancel::signal() : SIGINT;
        send(encode_json(FrameType::signal, ch, {{"signal", received}}));
        kill_at = clock::now() + 5s;
      }
      cancel::reset();
      continue;
    }
    if (result.interrupted && clock::now() > kill_at) {
      send(encode_json(FrameType::signal, ch, {{"signal", SIGKILL}}));
      kill_at = clock::time_point::max();
    }
    try {
      switch (f.type) {
        case FrameType::stdout_data:
          if (on_stdout && !failed) on_stdout(f.payload);
          break;
        case FrameType::stderr_data:
          if (on_stderr && !failed) on_stderr(f.payload);
          break;
        case FrameType::exit: {
          if (failed) std::rethrow_exception(failed);
          nlohmann::json j = f.json();
          result.code = j.value("code", 0);
          result.signal = j.value("signal", 0);
          if (result.interrupted) cancel::request(received);  // the caller still sees the signal
          return result;
        }
        default: break;
      }
    } catch (...) {
      if (f.type == FrameType::exit) throw;
      // An output callback failed: the caller will get its error, and the
      // command is killed and its exit read first, so the session is free
      // for the next request (the agent runs one command at a time).
      failed = std::current_exception();
      send(encode_json(FrameType::signal, ch, {{"signal", SIGKILL}}));
    }
  }
}

void AgentClient::put(const std::string& path, std::string_view data, unsigned mode, unsigned uid, unsigned gid) {
  std::uint32_t ch = next_channel_++;
  send(encode_json(FrameType::put, ch, {{"path", path}, {"mode", mode}, {"uid", uid}, {"gid", gid}}));
  while (!data.empty()) {
    size_t n = std::min(data.size(), kDataChunk);
    send(encode(FrameType::data, ch, data.substr(0, n)));
    data.remove_prefix(n);
  }
  send(encode(FrameType::data_eof, ch, {}));
  Frame f = expect(ch, clock::now() + 60s);
  if (f.type != FrameType::ok) throw Error("EPROTO", "unexpected answer to put " + path);
}

std::uint64_t AgentClient::put(const std::string& path, const InputFn& next, unsigned mode, unsigned uid,
                               unsigned gid) {
  std::uint32_t ch = next_channel_++;
  send(encode_json(FrameType::put, ch, {{"path", path}, {"mode", mode}, {"uid", uid}, {"gid", gid}}));
  std::uint64_t total = 0;
  try {
    while (std::optional<std::string> chunk = next()) {
      std::string_view rest = *chunk;
      total += rest.size();
      while (!rest.empty()) {
        size_t n = std::min(rest.size(), kDataChunk);
        send(encode(FrameType::data, ch, rest.substr(0, n)));
        rest.remove_prefix(n);
      }
    }
  } catch (...) {
    // The agent drops its temporary file; an error the agent sent meanwhile
    // (a failed open) is the caller's to see only if ours did not happen.
    send(encode_json(FrameType::error, ch, {{"code", "ECANCELED"}, {"message", "the host's data source failed"}}));
    throw;
  }
  send(encode(FrameType::data_eof, ch, {}));
  Frame f = expect(ch, clock::now() + 60s);
  if (f.type != FrameType::ok) throw Error("EPROTO", "unexpected answer to put " + path);
  return total;
}

std::string AgentClient::get(const std::string& path) {
  std::string out;
  get(path, [&out](std::string_view chunk) { out += chunk; });
  return out;
}

void AgentClient::get(const std::string& path, const OutputFn& sink, std::optional<std::uint64_t> limit) {
  std::uint32_t ch = next_channel_++;
  nlohmann::json req = {{"path", path}};
  if (limit) req["limit"] = *limit;
  send(encode_json(FrameType::get, ch, req));
  std::exception_ptr failed;
  for (;;) {
    Frame f = expect(ch, clock::now() + 60s);
    if (f.type == FrameType::data_eof) break;
    if (f.type != FrameType::data || failed) continue;
    try {
      sink(f.payload);
    } catch (...) {
      failed = std::current_exception();
    }
  }
  if (failed) std::rethrow_exception(failed);
}

ListResult AgentClient::list(const std::string& path) {
  require_capability("list");
  std::uint32_t ch = next_channel_++;
  send(encode_json(FrameType::list, ch, {{"path", path}}));
  Frame f = expect(ch, clock::now() + 60s);
  if (f.type != FrameType::ok) throw Error("EPROTO", "unexpected answer to list");
  return parse_list(f.json());
}

void AgentClient::remove(const std::string& path, bool recursive) {
  require_capability("remove");
  std::uint32_t ch = next_channel_++;
  send(encode_json(FrameType::remove, ch, {{"path", path}, {"recursive", recursive}}));
  // A big tree under TCG takes a while.
  Frame f = expect(ch, clock::now() + 300s);
  if (f.type != FrameType::ok) throw Error("EPROTO", "unexpected answer to remove");
}

std::chrono::microseconds AgentClient::ping(std::chrono::milliseconds timeout) {
  std::uint32_t ch = next_channel_++;
  auto sent = clock::now();
  send(encode(FrameType::ping, ch, "ping"));
  expect(ch, sent + timeout);
  return std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - sent);
}

void AgentClient::poweroff() {
  std::uint32_t ch = next_channel_++;
  send(encode_json(FrameType::poweroff, ch, nlohmann::json::object()));
  expect(ch, clock::now() + 10s);
}

void require_capability(const nlohmann::json& hello, const std::string& name) {
  auto caps = hello.find("capabilities");
  if (caps != hello.end() && caps->is_array()) {
    for (const auto& c : *caps) {
      if (c.is_string() && c.get<std::string>() == name) return;
    }
  }
  // An older agent would skip the unknown frame and never answer.
  throw Error("ENOTSUP", "the guest agent (" + hello.value("agent_version", std::string("?")) +
                             ") does not serve '" + name + "'; the image needs a newer banger-agent");
}

ReidentifyResult AgentClient::reidentify(const ReidentifyRequest& r) {
  require_capability("reidentify");
  ReidentifyRequest req = r;
  if (req.entropy.empty()) {
    req.entropy.resize(64);
    if (getrandom(req.entropy.data(), req.entropy.size(), 0) != static_cast<ssize_t>(req.entropy.size()))
      throw Error::last("getrandom");
  }
  // Sampled last, so the guest's clock is stepped to the host's within the transit time.
  if (req.time_ns == 0) {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    req.time_ns = static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
  std::uint32_t ch = next_channel_++;
  send(encode_json(FrameType::reidentify, ch, to_json(req)));
  // Regenerating SSH host keys under TCG takes seconds.
  Frame f = expect(ch, clock::now() + 120s);
  if (f.type != FrameType::ok) throw Error("EPROTO", "unexpected answer to reidentify");
  nlohmann::json j = f.json();
  ReidentifyResult res{j.value("ssh_host_keys", std::string("none")), j.value("took_ms", std::int64_t{0}),
                       j.value("repeated", false), {}};
  if (auto s = j.find("steps_ms"); s != j.end() && s->is_object()) {
    for (const auto& [name, ms] : s->items()) {
      if (ms.is_number_integer()) res.steps_ms[name] = ms.get<std::int64_t>();
    }
  }
  return res;
}

std::string AgentClient::mount(const MountRequest& m) {
  require_capability("mount");
  std::uint32_t ch = next_channel_++;
  send(encode_json(FrameType::mount, ch, to_json(m)));
  Frame f = expect(ch, clock::now() + std::chrono::milliseconds(m.timeout_ms) + 60s);
  if (f.type != FrameType::ok) throw Error("EPROTO", "unexpected answer to mount");
  return f.json().value("device", std::string());
}

ListenersResult AgentClient::listeners() {
  require_capability("listeners");
  std::uint32_t ch = next_channel_++;
  send(encode_json(FrameType::listeners, ch, nlohmann::json::object()));
  // Scanning /proc of a busy guest under TCG takes a while.
  Frame f = expect(ch, clock::now() + 60s);
  if (f.type != FrameType::ok) throw Error("EPROTO", "unexpected answer to listeners");
  return parse_listeners(f.json());
}

}  // namespace banger::guest
