#include "engine/guest/agent_dialer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/guest/connect_channel.hpp"

namespace banger::guest {

Endpoint forward_endpoint(const Endpoint& agent) {
  if (agent.kind != Endpoint::Kind::unix_socket) return agent;
  Endpoint ep = agent;
  auto slash = agent.path.rfind('/');
  ep.path = (slash == std::string::npos ? std::string() : agent.path.substr(0, slash + 1)) + "forward.sock";
  return ep;
}

namespace {

void set_nonblocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) throw Error::last("fcntl O_NONBLOCK");
}

Error agent_error(const Frame& f) {
  auto j = nlohmann::json::parse(f.payload, nullptr, false);
  if (!j.is_object()) return Error("EPROTO", "guest: malformed error frame");
  return Error(j.value("code", "EAGENT"), "guest: " + j.value("message", std::string("unknown error")));
}

}  // namespace

// One session and the thread that pumps its channels. Dials hand it
// requests through `mu_`; everything else is the thread's own.
class AgentDialer::Pump {
 public:
  Pump(AgentStream s, std::string what) : fd_(std::move(s.fd)), reader_(std::move(s.reader)), what_(std::move(what)) {
    set_nonblocking(fd_.get());
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) throw Error::last("eventfd");
    thread_ = std::thread([this] { run(); });
  }
  ~Pump() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    wake();
    thread_.join();
  }

  bool dead() {
    std::lock_guard lk(mu_);
    return dead_;
  }

  size_t open_channels() {
    std::lock_guard lk(mu_);
    return open_count_;
  }

  // Queues a connect; the future is ready when the agent answered. Throws
  // EPIPE when the session is gone already.
  std::future<void> submit(const ConnectRequest& req, UniqueFd ours, std::uint32_t& ch) {
    std::promise<void> done;
    std::future<void> f = done.get_future();
    {
      std::lock_guard lk(mu_);
      if (dead_) throw Error("EPIPE", "the agent session ended: " + dead_reason_);
      ch = next_channel_++;
      incoming_.push_back({ch, req, std::move(ours), std::move(done)});
    }
    wake();
    return f;
  }

  // The dial stopped waiting: the channel is closed whenever its answer comes.
  void abandon(std::uint32_t ch) {
    {
      std::lock_guard lk(mu_);
      abandoned_.push_back(ch);
    }
    wake();
  }

 private:
  struct Request {
    std::uint32_t ch;
    ConnectRequest req;
    UniqueFd ours;
    std::promise<void> done;
  };
  struct Waiting {
    UniqueFd ours;
    bool datagram;
    std::promise<void> done;
  };

  void wake() {
    std::uint64_t one = 1;
    ssize_t n = ::write(wake_.get(), &one, sizeof one);
    (void)n;  // a full counter still wakes the loop
  }

  void send(FrameType t, std::uint32_t ch, std::string_view payload) { out_ += encode(t, ch, payload); }

  void take_requests() {
    std::vector<Request> in;
    std::vector<std::uint32_t> gone;
    {
      std::lock_guard lk(mu_);
      in.swap(incoming_);
      gone.swap(abandoned_);
    }
    for (auto& r : in) {
      out_ += encode_json(FrameType::connect, r.ch, to_json(r.req));
      waiting_.emplace(r.ch, Waiting{std::move(r.ours), r.req.proto == "udp", std::move(r.done)});
    }
    for (std::uint32_t ch : gone) {
      if (waiting_.erase(ch)) send(FrameType::error, ch, R"({"code":"ECANCELED","message":"the dial gave up"})");
    }
  }

  void on_frame(const Frame& f) {
    if (f.channel == 0) return;  // hello_ok repeats, EFRAME about a torn frame: not about a channel
    if (auto it = waiting_.find(f.channel); it != waiting_.end()) {
      Waiting w = std::move(it->second);
      waiting_.erase(it);
      if (f.type == FrameType::ok) {
        set_nonblocking(w.ours.get());
        open_.emplace(f.channel, ConnectChannel(f.channel, std::move(w.ours), w.datagram));
        publish_count();
        w.done.set_value();
      } else if (f.type == FrameType::error) {
        w.done.set_exception(std::make_exception_ptr(agent_error(f)));
      } else {
        w.done.set_exception(std::make_exception_ptr(Error("EPROTO", "unexpected answer to connect")));
        send(FrameType::error, f.channel, R"({"code":"EPROTO","message":"unexpected answer to connect"})");
      }
      return;
    }
    if (auto it = open_.find(f.channel); it != open_.end()) {
      it->second.on_frame(f, sender());
      if (it->second.ended()) open_.erase(it);
      return;
    }
    // An answer to a dial that gave up: close what the agent opened.
    if (f.type == FrameType::ok) send(FrameType::error, f.channel, R"({"code":"ECANCELED","message":"the dial gave up"})");
  }

  void publish_count() {
    std::lock_guard lk(mu_);
    open_count_ = open_.size();
  }

  SendFrame sender() {
    return [this](FrameType t, std::uint32_t ch, std::string_view p) { send(t, ch, p); };
  }

  // Reads and writes the session; false once it is gone.
  bool pump_session(short revents, std::string& why) {
    if (revents & POLLOUT) {
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        why = "send: " + std::string(Error::last("send").what());
        return false;
      }
      if (n > 0) out_.erase(0, static_cast<size_t>(n));
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0) {
        why = "the " + what_ + " closed the connection";
        return false;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        why = Error::last("recv", what_).what();
        return false;
      }
      if (n > 0) reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
      while (auto f = reader_.next()) on_frame(*f);
    }
    return true;
  }

  void run() {
    std::string why;
    std::vector<pollfd> fds;
    std::vector<std::uint32_t> polled;
    for (;;) {
      {
        std::lock_guard lk(mu_);
        if (stop_) {
          why = "the dialer was closed";
          break;
        }
      }
      take_requests();
      fds.clear();
      polled.clear();
      fds.push_back({fd_.get(), static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0});
      fds.push_back({wake_.get(), POLLIN, 0});
      for (auto& [ch, c] : open_) {
        // Nothing to wait for: left out, or its hang-up would wake the poll for ever.
        short ev = c.events();
        if (!ev) continue;
        fds.push_back({c.fd(), ev, 0});
        polled.push_back(ch);
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        why = Error::last("poll").what();
        break;
      }
      if (fds[1].revents) {
        std::uint64_t n;
        ssize_t r = ::read(wake_.get(), &n, sizeof n);
        (void)r;
      }
      for (size_t i = 0; i < polled.size(); ++i) {
        if (!fds[i + 2].revents) continue;
        auto it = open_.find(polled[i]);
        if (it == open_.end()) continue;
        it->second.on_ready(fds[i + 2].revents, sender());
        if (it->second.ended()) open_.erase(it);
      }
      if (!pump_session(fds[0].revents, why)) break;
      publish_count();
    }
    // The session is gone: its channels end (their users read EOF) and
    // dials waiting for an answer fail.
    open_.clear();
    std::lock_guard lk(mu_);
    dead_ = true;
    dead_reason_ = why;
    open_count_ = 0;
    for (auto& r : incoming_) r.done.set_exception(std::make_exception_ptr(Error("EPIPE", "agent session: " + why)));
    incoming_.clear();
    for (auto& [ch, w] : waiting_) w.done.set_exception(std::make_exception_ptr(Error("EPIPE", "agent session: " + why)));
    waiting_.clear();
  }

  UniqueFd fd_;
  FrameReader reader_;
  std::string what_;
  UniqueFd wake_;
  std::thread thread_;

  std::mutex mu_;  // guards the fields below up to the thread's own
  bool stop_ = false;
  bool dead_ = false;
  std::string dead_reason_;
  std::uint32_t next_channel_ = 1;
  std::vector<Request> incoming_;
  std::vector<std::uint32_t> abandoned_;
  size_t open_count_ = 0;

  // The thread's own.
  std::string out_;  // frames not yet written; bounded by the channels' windows
  std::map<std::uint32_t, Waiting> waiting_;
  std::map<std::uint32_t, ConnectChannel> open_;
};

AgentDialer::AgentDialer(Endpoint ep, std::chrono::milliseconds timeout) : ep_(std::move(ep)), timeout_(timeout) {}

AgentDialer::~AgentDialer() = default;

std::shared_ptr<AgentDialer::Pump> AgentDialer::live_pump() {
  std::lock_guard lk(mu_);
  if (pump_ && !pump_->dead()) return pump_;
  pump_.reset();
  if (ep_.kind == Endpoint::Kind::unix_socket) {
    struct stat st {};
    if (::stat(ep_.path.c_str(), &st) != 0 && errno == ENOENT) {
      throw Error("ENOENT", "this VM has no port-forwarding channel (" + ep_.path +
                                " is missing: it was started by an older banger); restart the VM");
    }
  }
  AgentStream s = AgentClient::open_stream(ep_, timeout_);
  require_capability(s.hello, "connect");
  pump_ = std::make_shared<Pump>(std::move(s), ep_.kind == Endpoint::Kind::vsock ? "agent over vsock" : "agent at " + ep_.path);
  ++sessions_;
  return pump_;
}

void AgentDialer::connect() {
  try {
    live_pump();
  } catch (const Error& e) {
    if (e.code() != "ETIMEDOUT") throw;
    throw Error("ETIMEDOUT", std::string(e.what()) + " (on the VM's forwarding port: an agent older than banger's "
                             "forwarding through it does not serve that port; the image needs a newer banger-agent)");
  }
}

int AgentDialer::sessions() {
  std::lock_guard lk(mu_);
  return sessions_;
}

size_t AgentDialer::open_channels() {
  std::lock_guard lk(mu_);
  return pump_ ? pump_->open_channels() : 0;
}

UniqueFd AgentDialer::dial(net::ForwardProto proto, std::uint16_t guest_port) {
  bool udp = proto == net::ForwardProto::udp;
  ConnectRequest req{udp ? "udp" : "tcp", guest_port};
  for (int attempt = 0;; ++attempt) {
    std::shared_ptr<Pump> pump = live_pump();
    int sv[2];
    if (::socketpair(AF_UNIX, (udp ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0, sv) != 0)
      throw Error::last("socketpair");
    UniqueFd mine(sv[0]), ours(sv[1]);
    std::uint32_t ch = 0;
    std::future<void> answered;
    try {
      answered = pump->submit(req, std::move(ours), ch);
    } catch (const Error&) {
      // The session dropped since we looked: one fresh one.
      if (attempt == 0) continue;
      throw;
    }
    if (answered.wait_for(timeout_) != std::future_status::ready) {
      pump->abandon(ch);
      throw Error("ETIMEDOUT", "the guest agent did not answer connect " + req.proto + " " + std::to_string(guest_port));
    }
    answered.get();
    return mine;
  }
}

}  // namespace banger::guest
