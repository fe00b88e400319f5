// The HTTP engine of `banger serve` (engine/http/server.hpp) with libcurl as
// the client and /bin/sh workers: replies, the chunked relay of a worker's
// output, body and head limits, the TCP token, and a client that goes away
// having its worker killed.
#include <catch2/catch.hpp>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "engine/http/server.hpp"
#include "test_util.hpp"

using namespace banger;

namespace {

struct Response {
  long status = 0;
  std::string body;
  std::string headers;
  CURLcode rc = CURLE_OK;
};

struct Client {
  std::string unix_path;
  std::string base = "http://localhost";
  std::size_t abort_after = 0;  // > 0: hang up once this many body bytes arrived
};

std::size_t collect(char* p, std::size_t size, std::size_t n, void* ud) {
  auto* r = static_cast<std::pair<Response*, std::size_t>*>(ud);
  r->first->body.append(p, size * n);
  if (r->second > 0 && r->first->body.size() >= r->second) return 0;
  return size * n;
}

// libcurl's sockets are not close-on-exec: a worker spawned meanwhile would
// hold the client's end open, and a hang-up would never reach the server.
int cloexec_socket(void*, curl_socket_t fd, curlsocktype) {
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return CURL_SOCKOPT_OK;
}

std::size_t collect_header(char* p, std::size_t size, std::size_t n, void* ud) {
  static_cast<Response*>(ud)->headers.append(p, size * n);
  return size * n;
}

Response fetch(const Client& c, const std::string& method, const std::string& path, const std::string& body = {},
               std::vector<std::string> headers = {}) {
  Response r;
  CURL* h = curl_easy_init();
  REQUIRE(h);
  std::string url = c.base + path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  if (!c.unix_path.empty()) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c.unix_path.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty()) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_slist* list = nullptr;
  headers.push_back("Expect:");  // send bodies at once, as most clients do
  for (auto& hd : headers) list = curl_slist_append(list, hd.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  std::pair<Response*, std::size_t> sink{&r, c.abort_after};
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, cloexec_socket);
  r.rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(h);
  return r;
}

http::Worker sh_worker(const std::string& script, std::uint64_t max_body = 1 << 20) {
  http::Worker w;
  w.argv = {"/bin/sh", "-c", script};
  w.head = R"({"hello":"worker"})";
  w.max_body = max_body;
  w.group = "g";
  return w;
}

// A server on a Unix socket in `dir`, run on its own thread.
struct Running {
  std::unique_ptr<http::Server> server;
  std::thread thread;
  explicit Running(http::Options o, http::Router router) {
    server = std::make_unique<http::Server>(std::move(o), std::move(router));
    thread = std::thread([this] { server->run(); });
  }
  ~Running() {
    server->stop();
    thread.join();
  }
};

http::Options unix_options(const test::TempDir& dir) {
  http::Options o;
  o.unix_path = dir / "api.sock";
  o.owner_uid = ::geteuid();
  return o;
}

}  // namespace

TEST_CASE("http: constant-time comparison", "[http]") {
  CHECK(http::constant_time_equal("abc", "abc"));
  CHECK_FALSE(http::constant_time_equal("abc", "abd"));
  CHECK_FALSE(http::constant_time_equal("abc", "abcd"));
  CHECK_FALSE(http::constant_time_equal("", "a"));
  CHECK(http::constant_time_equal("", ""));
}

TEST_CASE("http: a routed reply, with the request parsed", "[http]") {
  test::TempDir dir;
  std::atomic<int> calls{0};
  http::Request seen;
  Running s(unix_options(dir), [&](const http::Request& r) -> http::Decision {
    ++calls;
    seen = r;
    return http::Reply{418, R"({"x":1})"};
  });
  struct stat st {};
  REQUIRE(::stat((dir / "api.sock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto r = fetch({dir / "api.sock"}, "GET", "/v1/thing?a=b", {}, {"X-Custom: Yes"});
  CHECK(r.status == 418);
  CHECK(r.body == R"({"x":1})");
  CHECK(r.headers.find("Connection: close") != std::string::npos);
  CHECK(calls == 1);
  CHECK(seen.method == "GET");
  CHECK(seen.target == "/v1/thing?a=b");
  CHECK(seen.transport == "unix");
  REQUIRE(seen.peer_uid);
  CHECK(*seen.peer_uid == ::geteuid());
  bool found = false;
  for (auto& [k, v] : seen.headers) found = found || (k == "x-custom" && v == "Yes");
  CHECK(found);
}

TEST_CASE("http: a worker gets the head line and the body, its output is relayed chunked", "[http]") {
  test::TempDir dir;
  Running s(unix_options(dir), [&](const http::Request&) -> http::Decision {
    return sh_worker(R"(read head; printf '{"status":201,"headers":{"X-From":"sh"}}\n'; echo "$head"; cat)");
  });
  std::string body(300000, 'b');
  for (std::size_t i = 0; i < body.size(); i += 7) body[i] = static_cast<char>('a' + i % 26);
  auto r = fetch({dir / "api.sock"}, "POST", "/w", body);
  CHECK(r.rc == CURLE_OK);
  CHECK(r.status == 201);
  CHECK(r.headers.find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(r.headers.find("X-From: sh") != std::string::npos);
  CHECK(r.body == std::string(R"({"hello":"worker"})") + "\n" + body);
}

TEST_CASE("http: a worker that fails after its head leaves the response incomplete", "[http]") {
  test::TempDir dir;
  Running s(unix_options(dir), [&](const http::Request&) -> http::Decision {
    return sh_worker("read head; echo '{\"status\":200}'; echo partial; exit 1");
  });
  auto r = fetch({dir / "api.sock"}, "GET", "/");
  CHECK(r.rc == CURLE_PARTIAL_FILE);
  CHECK(r.body == "partial\n");
}

TEST_CASE("http: a worker that writes no head is a 500, a bad head a 502", "[http]") {
  test::TempDir dir;
  std::string script;
  Running s(unix_options(dir), [&](const http::Request&) -> http::Decision { return sh_worker(script); });
  script = "exit 3";
  auto r = fetch({dir / "api.sock"}, "GET", "/");
  CHECK(r.status == 500);
  CHECK(r.body.find("EPROTO") != std::string::npos);
  script = R"(echo '{"status":200,"headers":{"Content-Length":"5"}}'; echo hi)";
  r = fetch({dir / "api.sock"}, "GET", "/");
  CHECK(r.status == 502);
}

TEST_CASE("http: bodies over the worker's limit get 413, declared or chunked", "[http]") {
  test::TempDir dir;
  std::atomic<int> started{0};
  std::string marker = dir / "started";
  Running s(unix_options(dir), [&](const http::Request&) -> http::Decision {
    return sh_worker("touch " + marker + "; read head; cat > /dev/null; echo '{\"status\":200}'", 1000);
  });
  auto r = fetch({dir / "api.sock"}, "POST", "/", std::string(1001, 'x'));
  CHECK(r.status == 413);
  CHECK(r.body.find("EFBIG") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(marker));  // refused before a worker started
  auto chunked = fetch({dir / "api.sock"}, "POST", "/", std::string(5000, 'x'), {"Transfer-Encoding: chunked"});
  CHECK(chunked.status == 413);
  auto fits = fetch({dir / "api.sock"}, "POST", "/", std::string(1000, 'x'));
  CHECK(fits.status == 200);
}

TEST_CASE("http: a head over max_header_bytes gets 431", "[http]") {
  test::TempDir dir;
  auto o = unix_options(dir);
  o.max_header_bytes = 1024;
  Running s(std::move(o), [&](const http::Request&) -> http::Decision { return http::Reply{200, "{}"}; });
  auto r = fetch({dir / "api.sock"}, "GET", "/", {}, {"X-Big: " + std::string(2000, 'h')});
  CHECK(r.status == 431);
  auto ok = fetch({dir / "api.sock"}, "GET", "/", {}, {"X-Small: h"});
  CHECK(ok.status == 200);
}

TEST_CASE("http: a client that hangs up has its worker's process group terminated", "[http]") {
  test::TempDir dir;
  std::string pidfile = dir / "pid";
  Running s(unix_options(dir), [&](const http::Request&) -> http::Decision {
    // The child sleep is in the worker's group: it must die too.
    return sh_worker("read head; echo '{\"status\":200}'; sleep 100 & echo $! > " + pidfile +
                     "; echo started; wait");
  });
  Client c{dir / "api.sock"};
  c.abort_after = 1;
  auto r = fetch(c, "GET", "/stream");
  CHECK(r.rc == CURLE_WRITE_ERROR);  // we hung up after the first bytes
  REQUIRE(test::eventually([&] { return std::filesystem::exists(pidfile); }));
  pid_t sleeper = 0;
  REQUIRE(test::eventually([&] {
    std::ifstream in(pidfile);
    return static_cast<bool>(in >> sleeper);
  }));
  // Gone, or a zombie waiting for its reaper (its parent sh died first).
  auto dead = [&] {
    std::ifstream stat("/proc/" + std::to_string(sleeper) + "/stat");
    std::string pid, comm, state;
    return !(stat >> pid >> comm >> state) || state == "Z";
  };
  CHECK(test::eventually(dead, std::chrono::seconds(10)));
}

TEST_CASE("http: TCP needs the bearer token", "[http]") {
  http::Options o;
  o.tcp = std::make_pair(std::string("127.0.0.1"), std::uint16_t{0});
  o.token = "s3cret-token";
  o.owner_uid = ::geteuid();
  Running s(std::move(o), [&](const http::Request& r) -> http::Decision {
    CHECK(r.transport == "tcp");
    return http::Reply{200, "{}"};
  });
  Client c;
  c.base = "http://127.0.0.1:" + std::to_string(s.server->tcp_port());
  CHECK(fetch(c, "GET", "/").status == 401);
  CHECK(fetch(c, "GET", "/", {}, {"Authorization: Bearer s3cret-tokem"}).status == 401);
  CHECK(fetch(c, "GET", "/", {}, {"Authorization: Bearer s3cret"}).status == 401);
  CHECK(fetch(c, "GET", "/", {}, {"Authorization: Bearer s3cret-token"}).status == 200);
}

TEST_CASE("http: a live socket is not stolen, and is removed at the end", "[http]") {
  test::TempDir dir;
  auto o = unix_options(dir);
  {
    Running s(o, [](const http::Request&) -> http::Decision { return http::Reply{200, "{}"}; });
    CHECK(test::error_code_of([&] { http::Server again(o, {}); }) == "EADDRINUSE");
  }
  CHECK_FALSE(std::filesystem::exists(o.unix_path));  // removed at the end
}

TEST_CASE("http: a worker past its deadline is terminated and its response cut short", "[http]") {
  test::TempDir dir;
  Running s(unix_options(dir), [&](const http::Request&) -> http::Decision {
    auto w = sh_worker("read head; echo '{\"status\":200}'; echo before; exec sleep 100");
    w.deadline = std::chrono::milliseconds(300);
    return w;
  });
  auto start = std::chrono::steady_clock::now();
  auto r = fetch({dir / "api.sock"}, "GET", "/");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.rc == CURLE_PARTIAL_FILE);  // no final chunk: the client knows it is incomplete
  CHECK(r.status == 200);
  CHECK(r.body == "before\n");
  CHECK(took < std::chrono::seconds(20));
}
