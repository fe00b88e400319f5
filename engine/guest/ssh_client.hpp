#pragma once
// An SSH client on libssh2 for banger's own use (exec, file upload), with
// the host key checked against banger's known_hosts before authenticating:
// a mismatch ends the connection before any credential or command is sent.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/guest/known_hosts.hpp"

namespace banger::ssh {

struct ConnectOptions {
  std::string host;  // IPv4 address
  int port = 22;
  std::string user = "root";
  std::string private_key;  // path; the public key is private_key + ".pub"
  std::string known_hosts;  // banger's file
  std::vector<std::string> extra_names;  // more names to pin under (e.g. "web.vm")
  std::string subject;      // for messages ("VM web")
  std::chrono::milliseconds timeout{15000};
};

struct ExecResult {
  int code = -1;
  std::string signal;  // set when the command died of a signal
  std::string out, err;
  bool interrupted = false;  // Ctrl-C was forwarded to the command
  bool timed_out = false;    // the timeout passed and the command was killed
};

class Client {
 public:
  explicit Client(const ConnectOptions& opts);  // connects, verifies/pins, authenticates
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool pinned_now() const { return pinned_now_; }
  const HostKey& host_key() const { return key_; }

  // Runs `command` (a shell command line) feeding `input` on its stdin.
  // Output is collected unless a callback takes it. Ctrl-C (the cancel
  // flag) is forwarded: SIGINT goes to the command's process group in the
  // guest, and its remaining output and exit status are still collected
  // (for up to 10 s, then ECANCELED). A `timeout` above zero kills the
  // command's process group (SIGKILL) once it has run that long; the
  // result then says timed_out.
  ExecResult exec(const std::string& command, const std::string& input = {},
                  const std::function<void(std::string_view)>& on_out = nullptr,
                  const std::function<void(std::string_view)>& on_err = nullptr,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Writes `data` to `path` in the guest with `mode` (SCP).
  void upload(const std::string& path, const std::string& data, int mode);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  HostKey key_;
  bool pinned_now_ = false;
};

}  // namespace banger::ssh
