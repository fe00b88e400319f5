#pragma once
// The host side of the agent protocol (engine/guest/protocol.hpp).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/unique_fd.hpp"
#include "engine/guest/files.hpp"
#include "engine/guest/listeners.hpp"
#include "engine/guest/protocol.hpp"
#include "engine/guest/requests.hpp"

namespace banger::guest {

struct Endpoint {
  enum class Kind { unix_socket, vsock_uds, vsock };
  Kind kind = Kind::unix_socket;
  std::string path;        // unix_socket: QEMU's chardev socket; vsock_uds: firecracker's uds_path
  std::uint32_t cid = 0;   // vsock
  std::uint32_t port = 52; // vsock / vsock_uds
};

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V", added to the agent's base environment
  std::string cwd;
  std::optional<std::string> stdin_data;
  std::chrono::milliseconds timeout{0};  // above zero: SIGKILL to the command once it has run this long
};

struct ExecResult {
  int code = 0;    // exit code, or 128 + signal
  int signal = 0;  // terminating signal, 0 if it exited
  bool interrupted = false;  // Ctrl-C was forwarded to the command
  bool timed_out = false;    // the request's timeout passed and the command was killed
};

struct ReidentifyResult {
  std::string ssh_host_keys;  // "regenerated" | "none"
  std::int64_t took_ms = 0;
  bool repeated = false;      // the agent had applied this generation already
  std::map<std::string, std::int64_t> steps_ms;  // time per step ("clock", "net", "ssh-host-keys", ...)
};

using OutputFn = std::function<void(std::string_view)>;
// A source of bytes for put: the next chunk, or nullopt at the end.
using InputFn = std::function<std::optional<std::string>()>;

// Throws ENOTSUP unless the agent's hello_ok lists `name` (an older agent
// would skip a newer frame type and never answer).
void require_capability(const nlohmann::json& hello, const std::string& name);

// A greeted session handed over to a caller that multiplexes channels on it
// itself (AgentDialer): the descriptor, bytes already read past hello_ok,
// and hello_ok.
struct AgentStream {
  UniqueFd fd;
  FrameReader reader;
  nlohmann::json hello;
};

class AgentClient {
 public:
  // Connects and completes the handshake within `timeout`; throws
  // ETIMEDOUT if the agent does not answer (it may not have started yet).
  static std::unique_ptr<AgentClient> connect(const Endpoint& ep, std::chrono::milliseconds timeout);
  // Retries connect() until the agent answers or `timeout` passes (a guest
  // booting under TCG takes seconds). Ctrl-C ends the wait.
  static std::unique_ptr<AgentClient> wait_ready(const Endpoint& ep, std::chrono::milliseconds timeout);
  ~AgentClient();
  // Connects and greets like connect(), then gives the stream away.
  static AgentStream open_stream(const Endpoint& ep, std::chrono::milliseconds timeout);

  const nlohmann::json& hello() const { return hello_; }
  // Runs a command, streaming its output to the callbacks. On Ctrl-C the
  // command gets SIGINT (SIGKILL 5 s later) and the result says interrupted.
  ExecResult exec(const ExecRequest& req, const OutputFn& on_stdout, const OutputFn& on_stderr);
  void put(const std::string& path, std::string_view data, unsigned mode, unsigned uid, unsigned gid);
  // Streams `next`'s chunks to the file; returns the bytes written. When
  // `next` throws, the agent is told to drop the partial file (the target
  // stays as it was) and the error is passed on.
  std::uint64_t put(const std::string& path, const InputFn& next, unsigned mode, unsigned uid, unsigned gid);
  std::string get(const std::string& path);
  // Streams the file to `sink`, chunk by chunk; with `limit` the agent
  // sends at most that many bytes (protocol 1.3; an older agent sends all).
  // A sink that throws is not called again: the rest of the answer is read
  // and dropped, so the session stays usable, and the error is rethrown.
  void get(const std::string& path, const OutputFn& sink, std::optional<std::uint64_t> limit = std::nullopt);
  // A directory's entries, or the one entry of a non-directory (lstat; a
  // link is never followed). ENOTSUP from an agent before protocol 1.3.
  ListResult list(const std::string& path);
  // Removes a file, link or (empty, or with `recursive` any) directory
  // without following links. ENOTSUP from an agent before protocol 1.3.
  void remove(const std::string& path, bool recursive);
  // Returns the round trip; ETIMEDOUT when no pong came within `timeout`.
  std::chrono::microseconds ping(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void poweroff();
  // Makes a restored guest a new machine (docs/agent-protocol.md). A failed
  // step raises with the agent's code and a message naming the step; the
  // caller must then stop the VM. ENOTSUP from an agent without it.
  // time_ns 0: the host's CLOCK_REALTIME when sent; entropy "": 64 bytes of getrandom.
  ReidentifyResult reidentify(const ReidentifyRequest& r);
  // Mounts the disk with that virtio serial; returns the guest device.
  std::string mount(const MountRequest& m);
  // The guest's listening TCP and bound UDP sockets with their processes
  // (engine/guest/listeners.hpp). ENOTSUP from an agent before protocol 1.2.
  ListenersResult listeners();

 private:
  AgentClient(UniqueFd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
  void send(const std::string& bytes);
  Frame read_frame(std::chrono::steady_clock::time_point deadline);
  Frame expect(std::uint32_t ch, std::chrono::steady_clock::time_point deadline);
  [[noreturn]] void raise_error(const Frame& f);
  void handshake(std::chrono::milliseconds timeout);
  void require_capability(const std::string& name) const { guest::require_capability(hello_, name); }

  UniqueFd fd_;
  std::string what_;
  FrameReader reader_;
  nlohmann::json hello_;
  std::string session_;
  std::uint32_t next_channel_ = 1;
};

}  // namespace banger::guest
