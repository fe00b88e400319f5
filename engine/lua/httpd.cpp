// banger.native.httpd: the HTTP/1.1 engine of `banger serve` (engine/http/server.hpp).
//   httpd.open{ socket = path | nil, host = "127.0.0.1" | nil, port = n | nil, token = string | nil,
//               owner_uid = n, max_header_bytes = n | nil }
//       -> server handle; binds now (EADDRINUSE when another server holds the socket)
//   server:port() -> the TCP port bound (0 without TCP)
//   server:run(router) -> true when stopped; raises what the router raised;
//       nil, "interrupted", "ECANCELED" on SIGINT/SIGTERM (workers signalled first)
//       router(request) is called for each request whose head is parsed:
//         request = { id, method, target, headers = { [lower-case name] = value },
//                     content_length?, transport = "unix"|"tcp", peer_uid? }
//       and returns either an answer { status, body, content_type? } or a worker
//         { argv = {...}, head = "one line", max_body = n, group = "name", deadline_ms? }
//   server:signal(id, signame) -> true, or false when no worker has that id
//   server:active(group) -> workers of that group running now
//   server:stop() -> true (run returns once workers and connections are closed)
#include <csignal>

#include "engine/core/error.hpp"
#include "engine/http/server.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"

namespace banger::lua {

template <>
struct HandleTraits<http::Server> {
  static constexpr const char* name = "banger.httpd.server";
};

namespace {

void push_request(lua_State* L, const http::Request& r) {
  lua_createtable(L, 0, 8);
  set_field(L, "id", static_cast<lua_Integer>(r.id));
  set_field(L, "method", r.method);
  set_field(L, "target", r.target);
  set_field(L, "transport", r.transport);
  if (r.content_length) set_field(L, "content_length", static_cast<lua_Integer>(*r.content_length));
  if (r.peer_uid) set_field(L, "peer_uid", static_cast<lua_Integer>(*r.peer_uid));
  lua_createtable(L, 0, static_cast<int>(r.headers.size()));
  for (auto& [k, v] : r.headers) {
    // A repeated header is one value, joined as RFC 9110 section 5.3 allows.
    if (lua_getfield(L, -1, k.c_str()) == LUA_TSTRING) {
      std::string joined = std::string(lua_tostring(L, -1)) + ", " + v;
      lua_pop(L, 1);
      set_field(L, k.c_str(), joined);
    } else {
      lua_pop(L, 1);
      set_field(L, k.c_str(), v);
    }
  }
  lua_setfield(L, -2, "headers");
}

http::Decision decision_at(lua_State* L, int idx) {
  if (!lua_istable(L, idx)) throw Raise("the router must return a table");
  if (auto argv = field_string_list(L, idx, "argv")) {
    http::Worker w;
    w.argv = std::move(*argv);
    w.head = field_string(L, idx, "head").value_or("{}");
    if (w.head.find('\n') != std::string::npos) throw Raise("bad option 'head' (one line expected)");
    w.max_body = field_int<std::uint64_t>(L, idx, "max_body", 0).value_or(0);
    w.group = field_string(L, idx, "group").value_or("");
    w.deadline = std::chrono::milliseconds(field_int<lua_Integer>(L, idx, "deadline_ms", 0).value_or(0));
    return w;
  }
  http::Reply r;
  r.status = field_int<int>(L, idx, "status", 100, 599).value_or(200);
  r.body = field_string(L, idx, "body").value_or("");
  if (auto t = field_string(L, idx, "content_type")) r.content_type = *t;
  return r;
}

int l_open(lua_State* L) {
  check_table(L, 1);
  http::Options o;
  o.unix_path = field_string(L, 1, "socket").value_or("");
  if (auto host = field_string(L, 1, "host")) {
    o.tcp = std::make_pair(*host, field_int<std::uint16_t>(L, 1, "port").value_or(0));
    o.token = field_string(L, 1, "token").value_or("");
  }
  auto owner = field_int<uid_t>(L, 1, "owner_uid");
  if (!owner) throw Raise("bad option 'owner_uid' (integer expected)");
  o.owner_uid = *owner;
  if (auto m = field_int<std::size_t>(L, 1, "max_header_bytes", 256, 1 << 20)) o.max_header_bytes = *m;
  if (o.unix_path.empty() && !o.tcp) throw Raise("httpd.open needs 'socket' or 'host'");
  // The router is attached by run(): until then every request would be a 503.
  auto server = std::make_unique<http::Server>(std::move(o), [](const http::Request&) -> http::Decision {
    return http::Reply{503, http::error_body("EAGAIN", "the server is starting"), "application/json"};
  });
  push_handle(L, std::move(server));
  return 1;
}

int l_port(lua_State* L) {
  lua_pushinteger(L, check_handle<http::Server>(L, 1).tcp_port());
  return 1;
}

int l_run(lua_State* L) {
  auto& server = check_handle<http::Server>(L, 1);
  if (!lua_isfunction(L, 2)) raise_arg(L, 2, "function");
  Callback router(L, 2);
  server.set_router([&](const http::Request& req) -> http::Decision {
    http::Decision d;
    router.call(1, [&](lua_State* S) {
      push_request(S, req);
      return 1;
    });
    try {
      d = decision_at(L, lua_gettop(L));
    } catch (...) {
      lua_pop(L, 1);
      throw;
    }
    lua_pop(L, 1);
    return d;
  });
  struct Detach {
    http::Server& s;
    ~Detach() {
      s.set_router([](const http::Request&) -> http::Decision {
        return http::Reply{503, http::error_body("EAGAIN", "the server is stopping"), "application/json"};
      });
    }
  } detach{server};
  server.run();
  lua_pushboolean(L, 1);
  return 1;
}

int signal_number(const std::string& name) {
  if (name == "TERM") return SIGTERM;
  if (name == "KILL") return SIGKILL;
  if (name == "INT") return SIGINT;
  if (name == "HUP") return SIGHUP;
  if (name == "0") return 0;  // only asks whether the worker still runs
  throw Raise("bad signal '" + name + "' (TERM, KILL, INT, HUP or 0)");
}

int l_signal(lua_State* L) {
  auto& server = check_handle<http::Server>(L, 1);
  auto id = check_int<std::uint64_t>(L, 2, 1);
  int sig = signal_number(opt_string(L, 3).value_or("TERM"));
  lua_pushboolean(L, server.signal(id, sig));
  return 1;
}

int l_active(lua_State* L) {
  auto& server = check_handle<http::Server>(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(server.active(check_string(L, 2))));
  return 1;
}

int l_stop(lua_State* L) {
  check_handle<http::Server>(L, 1).stop();
  lua_pushboolean(L, 1);
  return 1;
}

int open_httpd(lua_State* L) {
  static const luaL_Reg methods[] = {{"port", protect<l_port>},     {"run", protect<l_run>},
                                     {"signal", protect<l_signal>}, {"active", protect<l_active>},
                                     {"stop", protect<l_stop>},     {nullptr, nullptr}};
  define_handle<http::Server>(L, methods);
  static const luaL_Reg fns[] = {{"open", protect<l_open>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(httpd, open_httpd);
}  // namespace banger::lua
