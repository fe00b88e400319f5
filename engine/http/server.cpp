#include "engine/http/server.hpp"

#include <http_parser.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unix_socket.hpp"

namespace banger::http {

namespace {

// Above this many bytes queued towards a slow reader, the other side stops
// being read until the queue drains (bounded memory per request).
constexpr std::size_t kHighWater = 1 << 20;
// How long a connection we answered keeps being read (and discarded) after
// our response, so a client still sending its body reads our answer
// instead of a reset.
constexpr std::uint64_t kLingerMs = 2000;
// Kill with SIGKILL a worker still running this long after its SIGTERM.
constexpr std::uint64_t kKillGraceMs = 5000;
constexpr std::size_t kMaxWorkerHead = 64 * 1024;

Error uv_error(int rc, const std::string& what, const std::string& subject = {}) {
  std::string code = uv_err_name(rc);
  return Error(code, what + (subject.empty() ? "" : " " + subject) + ": " + uv_strerror(rc));
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

std::string error_body(const std::string& code, const std::string& message) {
  return nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump() + "\n";
}

bool constant_time_equal(const std::string& a, const std::string& b) noexcept {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

struct Job;

// One client connection. Freed when its stream handle and timer are closed.
struct Conn {
  Server::Impl* srv = nullptr;
  uv_stream_t* stream = nullptr;  // a uv_pipe_t or uv_tcp_t
  uv_timer_t linger{};
  http_parser parser{};
  Request req;
  std::string field, value;
  bool in_value = false;
  std::size_t head_bytes = 0;
  bool head_too_large = false;
  bool dispatched = false;
  bool answered = false;  // a Reply (or error) was queued: discard the rest
  bool closing = false;
  int open_handles = 2;  // stream + linger timer
  Job* job = nullptr;
  std::uint64_t body_bytes = 0;
};

// One worker process. Freed when its process, pipes and timer are closed.
struct Job {
  Server::Impl* srv = nullptr;
  std::uint64_t id = 0;
  std::string group;
  std::uint64_t max_body = 0;
  Conn* conn = nullptr;  // null once the client is gone
  uv_process_t proc{};
  uv_pipe_t in{}, out{};
  uv_timer_t deadline{};
  int open_handles = 0;
  bool exited = false;
  bool failed = false;  // exited non-zero or by a signal
  bool out_eof = false;
  bool in_closed = false;
  bool input_done = false;  // the whole request body was queued to stdin
  bool head_seen = false;
  bool reading_out = false;
  std::string head_buffer;
  bool terminated = false;
};

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

struct Server::Impl {
  Options opts;
  Router router;
  uv_loop_t loop{};
  bool loop_ready = false;
  uv_pipe_t unix_listener{};
  bool has_unix = false;
  uv_tcp_t tcp_listener{};
  bool has_tcp = false;
  std::uint16_t bound_port = 0;
  uv_async_t wake{};
  uv_timer_t cancel_poll{};
  bool stopping = false;
  std::exception_ptr failure;
  std::uint64_t next_id = 1;
  std::set<Conn*> conns;
  std::map<std::uint64_t, Job*> jobs;
  std::map<std::string, std::size_t> groups;
  http_parser_settings settings{};

  ~Impl() {
    if (!loop_ready) return;
    begin_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (has_unix) ::unlink(opts.unix_path.c_str());
  }

  void begin_stop() {
    if (stopping) return;
    stopping = true;
    if (has_unix) uv_close(reinterpret_cast<uv_handle_t*>(&unix_listener), nullptr);
    if (has_tcp) uv_close(reinterpret_cast<uv_handle_t*>(&tcp_listener), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&cancel_poll), nullptr);
    for (auto& [id, job] : jobs) terminate(job, SIGTERM);
    for (Conn* c : std::set<Conn*>(conns)) close_conn(c);
  }

  void fail(std::exception_ptr e) {
    if (!failure) failure = e;
    begin_stop();
  }

  // --- writing to a client -------------------------------------------------
  static void on_written(uv_write_t* req, int) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* c = static_cast<Conn*>(req->data);
    delete w;
    if (c && c->job && !c->closing && c->stream->write_queue_size < kHighWater / 4) c->srv->resume_out(c->job);
  }

  void send(Conn* c, std::string data) {
    if (c->closing || data.empty()) return;
    auto* w = new WriteReq;
    w->data = std::move(data);
    w->req.data = c;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, c->stream, &buf, 1, on_written) != 0) {
      delete w;
      close_conn(c);
    }
  }

  void reply(Conn* c, int status, const std::string& body, const std::string& type = "application/json") {
    if (c->answered) return;
    c->answered = true;
    send(c, "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\nContent-Type: " + type +
                "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    finish(c);
  }

  void reply_error(Conn* c, int status, const std::string& code, const std::string& message) {
    reply(c, status, error_body(code, message));
  }

  // The response is complete: send FIN once queued writes are out, keep
  // reading (and dropping) what the client still sends for a moment.
  void finish(Conn* c) {
    if (c->closing) return;
    auto* sreq = new uv_shutdown_t;
    sreq->data = c;
    if (uv_shutdown(sreq, c->stream, [](uv_shutdown_t* r, int) { delete r; }) != 0) {
      delete sreq;
      close_conn(c);
      return;
    }
    uv_timer_start(&c->linger, [](uv_timer_t* t) {
      auto* conn = static_cast<Conn*>(t->data);
      conn->srv->close_conn(conn);
    }, kLingerMs, 0);
  }

  void close_conn(Conn* c) {
    if (c->closing) return;
    c->closing = true;
    conns.erase(c);
    if (c->job) {
      // The client went away (or the server stops) before the response ended.
      Job* j = c->job;
      j->conn = nullptr;
      c->job = nullptr;
      terminate(j, SIGTERM);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(c->stream), [](uv_handle_t* h) {
      auto* conn = static_cast<Conn*>(h->data);
      std::free(h);
      if (--conn->open_handles == 0) delete conn;
    });
    uv_close(reinterpret_cast<uv_handle_t*>(&c->linger), [](uv_handle_t* h) {
      auto* conn = static_cast<Conn*>(h->data);
      if (--conn->open_handles == 0) delete conn;
    });
  }

  // --- accepting -------------------------------------------------------------
  void accept(uv_stream_t* listener, bool is_unix) {
    auto* c = new Conn;
    c->srv = this;
    uv_handle_t* h;
    if (is_unix) {
      auto* p = static_cast<uv_pipe_t*>(std::calloc(1, sizeof(uv_pipe_t)));
      uv_pipe_init(&loop, p, 0);
      h = reinterpret_cast<uv_handle_t*>(p);
    } else {
      auto* t = static_cast<uv_tcp_t*>(std::calloc(1, sizeof(uv_tcp_t)));
      uv_tcp_init(&loop, t);
      h = reinterpret_cast<uv_handle_t*>(t);
    }
    h->data = c;
    c->stream = reinterpret_cast<uv_stream_t*>(h);
    uv_timer_init(&loop, &c->linger);
    c->linger.data = c;
    conns.insert(c);
    if (uv_accept(listener, c->stream) != 0) {
      close_conn(c);
      return;
    }
    c->req.transport = is_unix ? "unix" : "tcp";
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (is_unix) {
      uv_os_fd_t fd = -1;
      ucred cred{};
      socklen_t len = sizeof cred;
      if (uv_fileno(h, &fd) != 0 || ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        close_conn(c);
        return;
      }
      c->req.peer_uid = cred.uid;
      if (cred.uid != 0 && cred.uid != opts.owner_uid) {
        // Refused: nothing it sends is parsed, and the connection closes
        // once the answer is out.
        reply_error(c, 403, "EACCES", "uid " + std::to_string(cred.uid) + " may not use this banger server");
        return;
      }
    }
    uv_read_start(c->stream, alloc, [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
      auto* conn = static_cast<Conn*>(s->data);
      conn->srv->on_client_read(conn, n, buf);
    });
  }

  static void alloc(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
    buf->base = static_cast<char*>(std::malloc(suggested));
    buf->len = buf->base ? suggested : 0;
  }

  void on_client_read(Conn* c, ssize_t n, const uv_buf_t* buf) {
    struct Free {
      const uv_buf_t* b;
      ~Free() { std::free(b->base); }
    } guard{buf};
    if (c->closing) return;
    if (n < 0) {
      close_conn(c);  // EOF or error: a running worker is terminated
      return;
    }
    // After our own answer: drain and drop. A worker that answered early
    // still gets the rest of the body.
    if (n == 0 || (c->answered && !c->job)) return;
    std::size_t used = http_parser_execute(&c->parser, &settings, buf->base, static_cast<std::size_t>(n));
    if (c->closing || (c->answered && !c->job)) return;
    if (c->head_too_large) {
      reply_error(c, 431, "EMSGSIZE", "request head larger than " + std::to_string(opts.max_header_bytes) + " bytes");
      return;
    }
    auto e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) return;  // the one request was read: what follows is dropped
    if (e != HPE_OK || used != static_cast<std::size_t>(n)) {
      if (e == HPE_HEADER_OVERFLOW) {
        reply_error(c, 431, "EMSGSIZE", "request head too large");
      } else if (c->job) {
        close_conn(c);
      } else {
        reply_error(c, 400, "EINVAL", std::string("malformed request: ") + http_errno_description(e));
      }
    }
  }

  // --- parser callbacks (C frames: nothing may throw through them) -----------
  static Conn* conn_of(http_parser* p) { return static_cast<Conn*>(p->data); }

  bool count_head(Conn* c, std::size_t n) {
    c->head_bytes += n;
    if (c->head_bytes > opts.max_header_bytes) {
      c->head_too_large = true;
      return false;
    }
    return true;
  }

  void end_header(Conn* c) {
    if (!c->field.empty() || !c->value.empty()) c->req.headers.emplace_back(lower(c->field), c->value);
    c->field.clear();
    c->value.clear();
    c->in_value = false;
  }

  int on_headers_complete(Conn* c) {
    end_header(c);
    c->req.method = http_method_str(static_cast<http_method>(c->parser.method));
    if (c->parser.flags & F_CONTENTLENGTH) c->req.content_length = c->parser.content_length;
    c->req.id = next_id++;
    c->dispatched = true;
    if (!authorized(c)) return 0;
    try {
      Decision d = router(c->req);
      if (auto* r = std::get_if<Reply>(&d)) {
        reply(c, r->status, r->body, r->content_type);
      } else {
        start_worker(c, std::get<Worker>(std::move(d)));
      }
    } catch (...) {
      fail(std::current_exception());
      return 1;
    }
    return 0;
  }

  bool authorized(Conn* c) {
    if (c->req.transport != "tcp") return true;
    std::string given;
    for (auto& [k, v] : c->req.headers) {
      if (k == "authorization") given = v;
    }
    const std::string prefix = "Bearer ";
    bool ok = given.size() > prefix.size() && given.compare(0, prefix.size(), prefix) == 0 &&
              constant_time_equal(given.substr(prefix.size()), opts.token);
    if (!ok) {
      reply_error(c, 401, "EACCES", given.empty() ? "this address needs 'Authorization: Bearer <token>'"
                                                  : "wrong token");
    }
    return ok;
  }

  int on_body(Conn* c, const char* at, std::size_t n) {
    if (!c->job) return 0;
    Job* j = c->job;
    c->body_bytes += n;
    if (c->body_bytes > j->max_body) {
      c->job = nullptr;
      j->conn = nullptr;
      terminate(j, SIGTERM);
      reply_error(c, 413, "EFBIG", "request body larger than " + std::to_string(j->max_body) + " bytes");
      return 0;
    }
    if (j->in_closed) return 0;
    auto* w = new WriteReq;
    w->data.assign(at, n);
    w->req.data = j;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&j->in), &buf, 1, on_stdin_written) != 0) {
      delete w;
      return 0;
    }
    if (j->in.write_queue_size > kHighWater) uv_read_stop(c->stream);  // resumed when stdin drains
    return 0;
  }

  static void on_stdin_written(uv_write_t* req, int) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* j = static_cast<Job*>(req->data);
    delete w;
    if (j->conn && !j->conn->closing && j->conn->job == j && j->in.write_queue_size < kHighWater / 4) {
      uv_read_start(j->conn->stream, alloc, [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* conn = static_cast<Conn*>(s->data);
        conn->srv->on_client_read(conn, n, buf);
      });
    }
  }

  int on_message_complete(Conn* c) {
    if (c->job) {
      c->job->input_done = true;
      close_stdin(c->job);
    }
    return 0;
  }

  // --- workers -----------------------------------------------------------
  void job_handle_closed(Job* j) {
    if (--j->open_handles == 0) delete j;
  }

  void start_worker(Conn* c, Worker w) {
    if (c->req.content_length && *c->req.content_length > w.max_body) {
      reply_error(c, 413, "EFBIG", "request body larger than " + std::to_string(w.max_body) + " bytes");
      return;
    }
    if (w.argv.empty()) {
      reply_error(c, 500, "EINVAL", "worker has no command");
      return;
    }
    auto* j = new Job;
    j->srv = this;
    j->id = c->req.id;
    j->group = w.group;
    j->max_body = w.max_body;
    uv_pipe_init(&loop, &j->in, 0);
    uv_pipe_init(&loop, &j->out, 0);
    uv_timer_init(&loop, &j->deadline);
    j->in.data = j->out.data = j->deadline.data = j->proc.data = j;
    j->open_handles = 3;
    std::vector<char*> args;
    for (auto& a : w.argv) args.push_back(a.data());
    args.push_back(nullptr);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
    stdio[0].data.stream = reinterpret_cast<uv_stream_t*>(&j->in);
    stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&j->out);
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    uv_process_options_t po{};
    po.file = args[0];
    po.args = args.data();
    po.stdio_count = 3;
    po.stdio = stdio;
    po.flags = UV_PROCESS_DETACHED;  // setsid: its own process group, signalled as one
    po.exit_cb = [](uv_process_t* p, int64_t status, int sig) {
      auto* job = static_cast<Job*>(p->data);
      job->srv->on_exit(job, status, sig);
    };
    int rc = uv_spawn(&loop, &j->proc, &po);
    auto closed = [](uv_handle_t* h) {
      auto* job = static_cast<Job*>(h->data);
      job->srv->job_handle_closed(job);
    };
    if (rc != 0) {
      j->open_handles = 4;  // uv_spawn leaves the process handle to close too
      uv_close(reinterpret_cast<uv_handle_t*>(&j->proc), closed);
      uv_close(reinterpret_cast<uv_handle_t*>(&j->in), closed);
      uv_close(reinterpret_cast<uv_handle_t*>(&j->out), closed);
      uv_close(reinterpret_cast<uv_handle_t*>(&j->deadline), closed);
      reply_error(c, 500, uv_err_name(rc), std::string("cannot start the worker: ") + uv_strerror(rc));
      return;
    }
    j->open_handles = 4;
    jobs[j->id] = j;
    ++groups[j->group];
    j->conn = c;
    c->job = j;
    if (w.deadline.count() > 0) {
      uv_timer_start(&j->deadline, [](uv_timer_t* t) {
        auto* job = static_cast<Job*>(t->data);
        job->srv->terminate(job, SIGTERM);
      }, static_cast<std::uint64_t>(w.deadline.count()), 0);
    }
    auto* head = new WriteReq;
    head->data = w.head + "\n";
    head->req.data = j;
    uv_buf_t buf = uv_buf_init(head->data.data(), static_cast<unsigned>(head->data.size()));
    if (uv_write(&head->req, reinterpret_cast<uv_stream_t*>(&j->in), &buf, 1, on_stdin_written) != 0) delete head;
    resume_out(j);
  }

  void resume_out(Job* j) {
    if (j->out_eof || j->reading_out) return;
    j->reading_out = true;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&j->out), alloc, [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
      auto* job = static_cast<Job*>(s->data);
      job->srv->on_worker_output(job, n, buf);
    });
  }

  void close_stdin(Job* j) {
    if (j->in_closed) return;
    j->in_closed = true;
    auto* sreq = new uv_shutdown_t;
    sreq->data = j;
    // Shut down after the queued body writes, then close.
    if (uv_shutdown(sreq, reinterpret_cast<uv_stream_t*>(&j->in), [](uv_shutdown_t* r, int) {
          auto* job = static_cast<Job*>(r->data);
          delete r;
          uv_close(reinterpret_cast<uv_handle_t*>(&job->in), [](uv_handle_t* h) {
            auto* jj = static_cast<Job*>(h->data);
            jj->srv->job_handle_closed(jj);
          });
        }) != 0) {
      delete sreq;
      uv_close(reinterpret_cast<uv_handle_t*>(&j->in), [](uv_handle_t* h) {
        auto* jj = static_cast<Job*>(h->data);
        jj->srv->job_handle_closed(jj);
      });
    }
  }

  void on_worker_output(Job* j, ssize_t n, const uv_buf_t* buf) {
    struct Free {
      const uv_buf_t* b;
      ~Free() { std::free(b->base); }
    } guard{buf};
    if (n == 0) return;
    if (n < 0) {
      j->out_eof = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&j->out), [](uv_handle_t* h) {
        auto* job = static_cast<Job*>(h->data);
        job->srv->job_handle_closed(job);
      });
      maybe_done(j);
      return;
    }
    Conn* c = j->conn;
    if (!c || c->closing || (!j->head_seen && c->answered)) return;  // nobody to tell: drop it
    std::string_view data(buf->base, static_cast<std::size_t>(n));
    if (!j->head_seen) {
      j->head_buffer.append(data);
      auto nl = j->head_buffer.find('\n');
      if (nl == std::string::npos) {
        if (j->head_buffer.size() > kMaxWorkerHead) {
          bad_head(j, "the worker's response head is too long");
        }
        return;
      }
      std::string line = j->head_buffer.substr(0, nl);
      std::string rest = j->head_buffer.substr(nl + 1);
      j->head_buffer.clear();
      if (!send_head(c, line)) {
        bad_head(j, "the worker sent an invalid response head");
        return;
      }
      j->head_seen = true;
      data = {};
      if (!rest.empty()) send_chunk(c, rest);
      return;
    }
    send_chunk(c, data);
  }

  void bad_head(Job* j, const std::string& why) {
    Conn* c = j->conn;
    j->conn = nullptr;
    if (c) c->job = nullptr;
    terminate(j, SIGTERM);
    if (c) reply_error(c, 502, "EPROTO", why);
  }

  bool send_head(Conn* c, const std::string& line) {
    auto head = nlohmann::json::parse(line, nullptr, false);
    if (head.is_discarded() || !head.is_object() || !head.contains("status") || !head["status"].is_number_integer())
      return false;
    int status = head["status"].get<int>();
    if (status < 100 || status > 599) return false;
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    bool typed = false;
    if (head.contains("headers") && head["headers"].is_object()) {
      for (auto& [k, v] : head["headers"].items()) {
        if (!v.is_string()) return false;
        auto name = lower(k);
        auto val = v.get<std::string>();
        bool clean = !name.empty() && name.find_first_of("\r\n: ") == std::string::npos &&
                     val.find_first_of("\r\n") == std::string::npos;
        if (!clean || name == "transfer-encoding" || name == "content-length" || name == "connection") return false;
        if (name == "content-type") typed = true;
        out += k + ": " + val + "\r\n";
      }
    }
    if (!typed) out += "Content-Type: application/json\r\n";
    out += "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    c->answered = true;
    send(c, std::move(out));
    return true;
  }

  void send_chunk(Conn* c, std::string_view data) {
    if (data.empty()) return;
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string frame = size;
    frame.append(data);
    frame += "\r\n";
    send(c, std::move(frame));
    if (c->job && c->stream->write_queue_size > kHighWater) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->job->out));
      c->job->reading_out = false;
    }
  }

  void on_exit(Job* j, int64_t status, int sig) {
    j->exited = true;
    j->failed = status != 0 || sig != 0;
    uv_timer_stop(&j->deadline);
    jobs.erase(j->id);
    if (--groups[j->group] == 0) groups.erase(j->group);
    if (!j->in_closed) close_stdin(j);
    uv_close(reinterpret_cast<uv_handle_t*>(&j->proc), [](uv_handle_t* h) {
      auto* job = static_cast<Job*>(h->data);
      job->srv->job_handle_closed(job);
    });
    uv_close(reinterpret_cast<uv_handle_t*>(&j->deadline), [](uv_handle_t* h) {
      auto* job = static_cast<Job*>(h->data);
      job->srv->job_handle_closed(job);
    });
    maybe_done(j);
  }

  // The response ends once the worker exited and its stdout is at EOF. A
  // worker that failed after its head (a download cut short) gets no final
  // chunk: the connection is closed, so the client sees an incomplete
  // response instead of a complete, truncated one.
  void maybe_done(Job* j) {
    if (!j->out_eof || !j->exited) return;
    Conn* c = j->conn;
    if (!c) return;
    j->conn = nullptr;
    c->job = nullptr;
    if (!j->head_seen) {
      reply_error(c, 500, "EPROTO", "the worker ended without a response");
      return;
    }
    if (j->failed) {
      close_conn(c);
      return;
    }
    send(c, "0\r\n\r\n");
    finish(c);
  }

  void terminate(Job* j, int sig) {
    resume_out(j);  // drain its stdout to EOF, so the pipe is closed
    if (j->exited) return;
    ::kill(-j->proc.pid, sig);
    if (sig == SIGTERM && !j->terminated) {
      j->terminated = true;
      uv_timer_start(&j->deadline, [](uv_timer_t* t) {
        auto* job = static_cast<Job*>(t->data);
        if (!job->exited) ::kill(-job->proc.pid, SIGKILL);
      }, kKillGraceMs, 0);
    }
  }
};

namespace {

Server::Impl* impl_of(http_parser* p) { return static_cast<Conn*>(p->data)->srv; }

void setup_settings(http_parser_settings& s) {
  http_parser_settings_init(&s);
  s.on_url = [](http_parser* p, const char* at, size_t n) {
    auto* c = static_cast<Conn*>(p->data);
    if (!impl_of(p)->count_head(c, n)) return 1;
    c->req.target.append(at, n);
    return 0;
  };
  s.on_header_field = [](http_parser* p, const char* at, size_t n) {
    auto* c = static_cast<Conn*>(p->data);
    if (!impl_of(p)->count_head(c, n)) return 1;
    if (c->in_value) impl_of(p)->end_header(c);
    c->field.append(at, n);
    return 0;
  };
  s.on_header_value = [](http_parser* p, const char* at, size_t n) {
    auto* c = static_cast<Conn*>(p->data);
    if (!impl_of(p)->count_head(c, n)) return 1;
    c->in_value = true;
    c->value.append(at, n);
    return 0;
  };
  s.on_headers_complete = [](http_parser* p) { return impl_of(p)->on_headers_complete(static_cast<Conn*>(p->data)); };
  s.on_body = [](http_parser* p, const char* at, size_t n) {
    return impl_of(p)->on_body(static_cast<Conn*>(p->data), at, n);
  };
  s.on_message_complete = [](http_parser* p) {
    auto* c = static_cast<Conn*>(p->data);
    impl_of(p)->on_message_complete(c);
    // One request per connection: anything after it is not parsed.
    http_parser_pause(p, 1);
    return 0;
  };
}

// A stale socket (its server died) is removed; a live one is refused.
void clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) throw Error("EEXIST", path + " exists and is not a socket");
  try {
    net_unix::connect(path, std::chrono::milliseconds(0));
  } catch (const Error&) {
    ::unlink(path.c_str());
    return;
  }
  throw Error("EADDRINUSE", "another server is listening on " + path);
}

}  // namespace

Server::Server(Options opts, Router router) : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.opts = std::move(opts);
  s.router = std::move(router);
  setup_settings(s.settings);
  if (s.opts.tcp && s.opts.token.empty()) throw Error("EINVAL", "a TCP listener needs a token");
  if (int rc = uv_loop_init(&s.loop); rc != 0) throw uv_error(rc, "uv_loop_init");
  s.loop_ready = true;
  uv_async_init(&s.loop, &s.wake, [](uv_async_t* a) { static_cast<Impl*>(a->data)->begin_stop(); });
  s.wake.data = &s;
  uv_timer_init(&s.loop, &s.cancel_poll);
  s.cancel_poll.data = &s;
  auto listen_cb = [](uv_stream_t* l, int status) {
    auto* impl = static_cast<Impl*>(l->data);
    if (status == 0 && !impl->stopping) impl->accept(l, l->type == UV_NAMED_PIPE);
  };
  if (!s.opts.unix_path.empty()) {
    clear_stale_socket(s.opts.unix_path);
    // Born 0600: the umask covers the bind, nothing is chmod'ed afterwards.
    mode_t old = ::umask(0177);
    UniqueFd fd;
    try {
      fd = net_unix::bind(s.opts.unix_path);
    } catch (...) {
      ::umask(old);
      throw;
    }
    ::umask(old);
    uv_pipe_init(&s.loop, &s.unix_listener, 0);
    s.unix_listener.data = &s;
    s.has_unix = true;
    if (int rc = uv_pipe_open(&s.unix_listener, fd.get()); rc != 0) throw uv_error(rc, "uv_pipe_open");
    fd.release();
    if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&s.unix_listener), 64, listen_cb); rc != 0)
      throw uv_error(rc, "listen", s.opts.unix_path);
  }
  if (s.opts.tcp) {
    auto& [host, port] = *s.opts.tcp;
    sockaddr_storage addr{};
    if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)
      throw Error("EINVAL", "not an IP address: " + host);
    uv_tcp_init(&s.loop, &s.tcp_listener);
    s.tcp_listener.data = &s;
    s.has_tcp = true;
    if (int rc = uv_tcp_bind(&s.tcp_listener, reinterpret_cast<sockaddr*>(&addr), 0); rc != 0)
      throw uv_error(rc, "bind", host + ":" + std::to_string(port));
    if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&s.tcp_listener), 64, listen_cb); rc != 0)
      throw uv_error(rc, "listen", host + ":" + std::to_string(port));
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&s.tcp_listener, reinterpret_cast<sockaddr*>(&bound), &len);
    s.bound_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                     : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
}

Server::~Server() = default;

void Server::set_router(Router router) { impl_->router = std::move(router); }

std::uint16_t Server::tcp_port() const { return impl_->bound_port; }

void Server::run() {
  auto& s = *impl_;
  // Writing to a worker or client that is gone must be an EPIPE, not the
  // end of the server.
  ::signal(SIGPIPE, SIG_IGN);
  uv_timer_start(&s.cancel_poll, [](uv_timer_t* t) {
    if (cancel::requested()) static_cast<Impl*>(t->data)->begin_stop();
  }, 50, 50);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  if (s.failure) std::rethrow_exception(s.failure);
  cancel::check();
}

void Server::stop() { uv_async_send(&impl_->wake); }

bool Server::signal(std::uint64_t id, int sig) {
  auto it = impl_->jobs.find(id);
  if (it == impl_->jobs.end() || it->second->exited) return false;
  ::kill(-it->second->proc.pid, sig);
  return true;
}

std::size_t Server::active(const std::string& group) const {
  auto it = impl_->groups.find(group);
  return it == impl_->groups.end() ? 0 : it->second;
}

}  // namespace banger::http
