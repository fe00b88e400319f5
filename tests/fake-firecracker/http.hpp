#pragma once
// A tiny HTTP/1.1 request parser and response writer: just enough of what
// Firecracker's micro_http accepts (Content-Length bodies, keep-alive,
// origin-form or absolute-form targets).
#include <string>

namespace fakefc {

struct HttpRequest {
  std::string method;
  std::string path;  // absolute path, query string dropped
  std::string body;
  bool has_body = false;  // Content-Length > 0
  bool close = false;  // Connection: close
};

enum class Parse { incomplete, complete, bad };

// Parses one request from the front of `buf`; on `complete` it is removed
// from `buf`. `bad` means the connection should get a 400 and be closed.
Parse parse_request(std::string& buf, HttpRequest& out, std::string& error);

std::string format_response(int status, const std::string& json_body);

}  // namespace fakefc
