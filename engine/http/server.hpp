#pragma once
// The HTTP/1.1 engine behind `banger serve` (docs/api.md).
//
// One libuv loop on one thread: libuv is the event loop Node.js and luv are
// built on, packaged in Debian, and needs no threads of ours; requests are
// parsed by Node's http-parser (Debian's libhttp-parser; llhttp is not
// packaged). The engine knows no routes: for each request whose head is
// parsed it asks a Router, which either answers at once (Reply) or names a
// worker process (Worker). A worker reads one line (`head`) and then the
// request body on its stdin, and writes its response on stdout: one JSON
// line {"status": n, "headers": {...}}, then body bytes, which the engine
// relays to the client with chunked transfer encoding. So a request that
// runs for minutes (a streamed exec) never blocks another one.
//
// Security lives here because it must hold whatever a router does: the Unix
// socket is made 0600 (under a umask, never chmod'ed), a peer whose uid is
// neither the owner's nor root's gets 403 (SO_PEERCRED); on TCP every
// request needs `Authorization: Bearer <token>`, compared in constant time.
// A head longer than max_header_bytes gets 431; a body longer than the
// worker's max_body gets 413 and the worker is killed. A client that goes
// away has its worker's process group SIGTERMed. Every response closes its
// connection (no keep-alive).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace banger::http {

struct Request {
  std::uint64_t id = 0;  // unique for the server's life; also the worker's id
  std::string method;
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::optional<std::uint64_t> content_length;
  std::string transport;  // "unix" or "tcp"
  std::optional<uid_t> peer_uid;  // Unix socket peers only
};

// An answer the engine sends at once (JSON unless content_type says otherwise).
struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

// A process that answers the request (see above).
struct Worker {
  std::vector<std::string> argv;
  std::string head;  // written as the first line of the worker's stdin
  std::uint64_t max_body = 0;  // request body bytes allowed (413 beyond)
  std::string group;  // counted by Server::active(group) while it runs
  std::chrono::milliseconds deadline{0};  // > 0: SIGTERM the worker after this long
};

using Decision = std::variant<Reply, Worker>;
using Router = std::function<Decision(const Request&)>;

struct Options {
  std::string unix_path;  // empty: no Unix socket
  std::optional<std::pair<std::string, std::uint16_t>> tcp;  // host (IPv4/IPv6 literal), port (0: any)
  std::string token;  // required when tcp is set
  uid_t owner_uid = 0;
  std::size_t max_header_bytes = 16 * 1024;
};

std::string reason_phrase(int status);
// A JSON error body: {"error": {"code": ..., "message": ...}}.
std::string error_body(const std::string& code, const std::string& message);
// Compares without an early exit, so the time taken does not tell how much
// of a guessed token was right.
bool constant_time_equal(const std::string& a, const std::string& b) noexcept;

class Server {
 public:
  // Binds the listeners (EADDRINUSE when another server holds the socket).
  Server(Options opts, Router router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Replaces the router (between runs, or from inside one).
  void set_router(Router router);
  // The TCP port bound (0 without TCP).
  std::uint16_t tcp_port() const;
  // Serves until stop() or a cancellation request (then throws ECANCELED
  // once every worker was signalled and every handle closed). An exception
  // from the router ends run() and is rethrown from it.
  void run();
  // Thread-safe: makes run() return.
  void stop();
  // Signals a running worker's process group; false when no such worker.
  bool signal(std::uint64_t id, int sig);
  // Workers of `group` running now.
  std::size_t active(const std::string& group) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace banger::http
