#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1 for the OCI client tests: it can lie
// (wrong bytes for a digest), demand auth, or trickle a body slowly. One
// thread per connection, Connection: close, requests recorded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace banger::test {

struct HttpRequest {
  std::string method, path, authorization;
  std::string body;  // as long as its Content-Length says
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  size_t chunk = 0;  // >0: send the body in chunks of this size...
  int delay_ms = 0;  // ...sleeping this long between them
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  explicit HttpServer(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0)
      throw std::runtime_error("test server: bind/listen failed");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~HttpServer() {
    stop_ = true;
    thread_.join();
    for (auto& t : conns_) t.join();
    ::close(fd_);
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  // Body bytes sent so far, over all requests.
  size_t bytes_sent() const { return sent_; }
  std::vector<HttpRequest> requests() {
    std::lock_guard lk(mu_);
    return reqs_;
  }
  size_t count(const std::string& path_prefix) {
    std::lock_guard lk(mu_);
    size_t n = 0;
    for (auto& r : reqs_) n += r.path.rfind(path_prefix, 0) == 0;
    return n;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      conns_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (stop_ || ::poll(&p, 1, 2000) <= 0) break;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    HttpRequest req;
    size_t content_length = 0;
    auto sp1 = in.find(' '), sp2 = in.find(' ', sp1 + 1);
    if (sp1 != std::string::npos && sp2 != std::string::npos) {
      req.method = in.substr(0, sp1);
      req.path = in.substr(sp1 + 1, sp2 - sp1 - 1);
    }
    for (size_t pos = in.find("\r\n"); pos != std::string::npos;) {
      size_t end = in.find("\r\n", pos + 2);
      if (end == std::string::npos) break;
      std::string line = in.substr(pos + 2, end - pos - 2);
      std::string lower = line;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower.rfind("content-length:", 0) == 0) content_length = std::stoul(line.substr(15));
      if (lower.rfind("authorization:", 0) == 0) {
        req.authorization = line.substr(14);
        while (!req.authorization.empty() && req.authorization.front() == ' ') req.authorization.erase(0, 1);
      }
      pos = end;
    }
    size_t body_at = in.find("\r\n\r\n");
    if (body_at != std::string::npos) {
      req.body = in.substr(body_at + 4);
      while (req.body.size() < content_length && !stop_) {
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 2000) <= 0) break;
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.body.append(buf, static_cast<size_t>(n));
      }
    }
    {
      std::lock_guard lk(mu_);
      reqs_.push_back(req);
    }
    HttpResponse r = handler_(req);
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " X\r\nConnection: close\r\nContent-Length: " +
                       std::to_string(r.body.size()) + "\r\n";
    for (auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
    head += "\r\n";
    send_all(c, head);
    if (req.method != "HEAD") {
      size_t step = r.chunk ? r.chunk : r.body.size();
      for (size_t off = 0; off < r.body.size() && !stop_; off += step) {
        if (!send_all(c, r.body.substr(off, step))) break;
        sent_ += std::min(step, r.body.size() - off);
        if (r.delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(r.delay_ms));
      }
    }
    ::close(c);
  }
  static bool send_all(int c, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> sent_{0};
  std::thread thread_;
  std::vector<std::thread> conns_;  // only touched by the accept thread until the destructor joins it
  std::mutex mu_;
  std::vector<HttpRequest> reqs_;
};

}  // namespace banger::test
