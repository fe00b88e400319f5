#include "engine/guest/ssh_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libssh2.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <mutex>
#include <utility>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::ssh {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (libssh2_init(0) != 0) throw Error("ESSH", "libssh2_init failed");
  });
}

const char* key_type_name(int type) {
  switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519";
    default: return nullptr;
  }
}

UniqueFd tcp_connect(const std::string& host, int port, std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) throw Error("EINVAL", "invalid address " + host);
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw Error::last("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    throw Error::last("connect", host + ":" + std::to_string(port));
  }
  pollfd p{fd.get(), POLLOUT, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r == 0) throw Error("ETIMEDOUT", "connecting to " + host + ":" + std::to_string(port) + " timed out");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (r < 0 || err != 0) throw Error::sys(err ? err : errno, "connect", host + ":" + std::to_string(port));
  int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The command runs as `sh -c` exec'd by the login shell sshd started, so it
// keeps that shell's pid, which sshd made a session and process-group
// leader; the pid is announced first on stderr (and filtered out) so a
// Ctrl-C can be sent to the whole group.
constexpr std::string_view kPidMarker = "\036banger-pid ";

std::string wrap(const std::string& command) {
  return "printf '\\036banger-pid %s\\n' $$ >&2; exec sh -c " + shell_quote(command);
}

}  // namespace

struct Client::Impl {
  UniqueFd sock;
  LIBSSH2_SESSION* session = nullptr;
  std::string what;

  ~Impl() {
    if (session) {
      libssh2_session_disconnect(session, "bye");
      libssh2_session_free(session);
    }
  }

  [[noreturn]] void fail(const std::string& doing) {
    char* msg = nullptr;
    libssh2_session_last_error(session, &msg, nullptr, 0);
    throw Error("ESSH", doing + " (" + what + "): " + (msg ? msg : "libssh2 error"));
  }

  // Waits until the socket is ready in the direction libssh2 needs (at most
  // 100 ms, so the caller can look at the cancel flag).
  void wait_socket() {
    int dir = libssh2_session_block_directions(session);
    pollfd p{sock.get(), 0, 0};
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND) p.events |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) p.events |= POLLOUT;
    ::poll(&p, 1, 100);
  }
};

Client::Client(const ConnectOptions& opts) : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->what = opts.subject.empty() ? opts.host : opts.subject;
  impl_->sock = tcp_connect(opts.host, opts.port, opts.timeout);
  impl_->session = libssh2_session_init();
  if (!impl_->session) throw Error("ENOMEM", "libssh2_session_init");
  libssh2_session_set_timeout(impl_->session, static_cast<long>(opts.timeout.count()));
  if (libssh2_session_handshake(impl_->session, impl_->sock.get()) != 0) impl_->fail("SSH handshake");

  size_t len = 0;
  int type = 0;
  const char* blob = libssh2_session_hostkey(impl_->session, &len, &type);
  const char* type_name = key_type_name(type);
  if (!blob || !type_name) throw Error("EHOSTKEY", "unsupported host key type from " + impl_->what);
  key_ = HostKey{type_name, std::string(blob, len)};
  std::vector<std::string> names = {host_pattern(opts.host, opts.port)};
  names.insert(names.end(), opts.extra_names.begin(), opts.extra_names.end());
  // Before authenticating: a mismatch must not even send our public key.
  pinned_now_ = check_and_pin(opts.known_hosts, names, key_, impl_->what) == Verdict::pinned_now;

  std::string pub = opts.private_key + ".pub";
  if (libssh2_userauth_publickey_fromfile(impl_->session, opts.user.c_str(), pub.c_str(), opts.private_key.c_str(),
                                          nullptr) != 0) {
    impl_->fail("public key authentication as " + opts.user);
  }
}

Client::~Client() = default;

ExecResult Client::exec(const std::string& command, const std::string& input,
                        const std::function<void(std::string_view)>& on_out,
                        const std::function<void(std::string_view)>& on_err, std::chrono::milliseconds timeout) {
  LIBSSH2_SESSION* s = impl_->session;
  const auto deadline = timeout.count() > 0 ? std::chrono::steady_clock::now() + timeout
                                            : std::chrono::steady_clock::time_point::max();
  libssh2_session_set_blocking(s, 1);
  LIBSSH2_CHANNEL* ch = libssh2_channel_open_session(s);
  if (!ch) impl_->fail("opening a channel");
  struct ChannelGuard {
    LIBSSH2_CHANNEL* ch;
    ~ChannelGuard() { libssh2_channel_free(ch); }
  } guard{ch};
  if (libssh2_channel_exec(ch, wrap(command).c_str()) != 0) impl_->fail("exec");

  // Non-blocking from here: stdin is fed while stdout and stderr drain, so
  // neither side can stall on a full window.
  libssh2_session_set_blocking(s, 0);
  ExecResult result;
  size_t sent = 0;
  bool eof_sent = false;
  std::string pid;             // the command's pid, once announced
  std::string err_head;        // stderr until the announcement has been seen
  bool head_done = false;
  std::chrono::steady_clock::time_point give_up{};
  auto emit_err = [&](std::string_view chunk) {
    if (chunk.empty()) return;
    on_err ? on_err(chunk) : (void)result.err.append(chunk);
  };
  char buf[32768];
  std::string pass_on;  // a signal ("INT", "TERM") still to pass on to the command
  for (;;) {
    if (cancel::requested() && !result.interrupted) {
      result.interrupted = true;
      give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      pass_on = cancel::signal() == SIGTERM ? "TERM" : "INT";
    }
    if (!result.timed_out && std::chrono::steady_clock::now() >= deadline) {
      result.timed_out = true;
      pass_on = "KILL";
    }
    // Sent once the command's pid is known: a signal that lands before the
    // pid's announcement has been read is passed on when it arrives.
    if (!pass_on.empty() && !pid.empty()) {
      std::string sig = std::exchange(pass_on, {});
      // A second channel on the same session carries the signal.
      libssh2_session_set_blocking(s, 1);
      if (LIBSSH2_CHANNEL* k = libssh2_channel_open_session(s)) {
        std::string kill = "kill -" + sig + " -- -" + pid + " 2>/dev/null || kill -" + sig + " " + pid;
        libssh2_channel_exec(k, kill.c_str());
        libssh2_channel_send_eof(k);
        libssh2_channel_wait_closed(k);
        libssh2_channel_free(k);
      }
      libssh2_session_set_blocking(s, 0);
    }
    if (result.interrupted && std::chrono::steady_clock::now() > give_up) {
      throw Error("ECANCELED", "interrupted; the command in " + impl_->what + " did not stop within 10 s");
    }
    bool progress = false;
    if (!eof_sent) {
      if (sent < input.size()) {
        ssize_t n = libssh2_channel_write(ch, input.data() + sent, input.size() - sent);
        if (n > 0) {
          sent += static_cast<size_t>(n);
          progress = true;
        } else if (n != LIBSSH2_ERROR_EAGAIN) {
          impl_->fail("writing stdin");
        }
      }
      if (sent == input.size()) {
        int r = libssh2_channel_send_eof(ch);
        if (r == 0) {
          eof_sent = true;
          progress = true;
        } else if (r != LIBSSH2_ERROR_EAGAIN) {
          impl_->fail("closing stdin");
        }
      }
    }
    for (int stream : {0, SSH_EXTENDED_DATA_STDERR}) {
      ssize_t n = libssh2_channel_read_ex(ch, stream, buf, sizeof buf);
      if (n > 0) {
        std::string_view chunk(buf, static_cast<size_t>(n));
        progress = true;
        if (stream == 0) {
          on_out ? on_out(chunk) : (void)result.out.append(chunk);
          continue;
        }
        if (head_done) {
          emit_err(chunk);
          continue;
        }
        err_head.append(chunk);
        auto nl = err_head.find('\n');
        if (nl == std::string::npos && err_head.size() < 64) continue;
        if (err_head.compare(0, kPidMarker.size(), kPidMarker) == 0 && nl != std::string::npos) {
          pid = err_head.substr(kPidMarker.size(), nl - kPidMarker.size());
          err_head.erase(0, nl + 1);
        }
        head_done = true;
        emit_err(err_head);
        err_head.clear();
      } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
        impl_->fail("reading output");
      }
    }
    if (libssh2_channel_eof(ch)) break;
    if (!progress) impl_->wait_socket();
  }
  emit_err(err_head);
  libssh2_session_set_blocking(s, 1);
  libssh2_channel_close(ch);
  libssh2_channel_wait_closed(ch);
  result.code = libssh2_channel_get_exit_status(ch);
  char* sig = nullptr;
  size_t siglen = 0;
  libssh2_channel_get_exit_signal(ch, &sig, &siglen, nullptr, nullptr, nullptr, nullptr);
  if (sig) {
    result.signal.assign(sig, siglen);
    libssh2_free(s, sig);
  }
  return result;
}

void Client::upload(const std::string& path, const std::string& data, int mode) {
  LIBSSH2_SESSION* s = impl_->session;
  libssh2_session_set_blocking(s, 1);
  LIBSSH2_CHANNEL* ch = libssh2_scp_send64(s, path.c_str(), mode & 0777, static_cast<libssh2_int64_t>(data.size()), 0, 0);
  if (!ch) impl_->fail("uploading " + path);
  struct ChannelGuard {
    LIBSSH2_CHANNEL* ch;
    ~ChannelGuard() { libssh2_channel_free(ch); }
  } guard{ch};
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = libssh2_channel_write(ch, data.data() + sent, data.size() - sent);
    if (n < 0) impl_->fail("uploading " + path);
    sent += static_cast<size_t>(n);
  }
  libssh2_channel_send_eof(ch);
  libssh2_channel_wait_eof(ch);
  libssh2_channel_wait_closed(ch);
}

}  // namespace banger::ssh
