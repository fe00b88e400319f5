#pragma once
// HTTP/1.1 over a Unix socket (libcurl, CURLOPT_UNIX_SOCKET_PATH): how banger
// talks to a hypervisor's control API. One connection per request: callers
// are stateless (a later CLI process reconnects through the recorded socket).
#include <chrono>
#include <string>

namespace banger::vmm::http {

struct Response {
  long status = 0;
  std::string body;
};

struct Request {
  std::string method = "GET";  // GET | PUT | PATCH
  std::string path = "/";      // absolute path on the server
  std::string body;            // sent as application/json when not empty
  std::chrono::milliseconds timeout{10000};
};

// Sends one request and returns whatever status the server answered.
// Transport failures throw banger::Error: ECONNREFUSED when nothing accepts
// on `socket_path` (or it does not exist), ETIMEDOUT, ECANCELED on Ctrl-C,
// EIO otherwise. Messages name the socket and the request.
Response request(const std::string& socket_path, const Request& req);

// True when something accepts connections on the Unix socket `path` now.
bool can_connect(const std::string& path);

}  // namespace banger::vmm::http
