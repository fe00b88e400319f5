#include "http.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace fakefc {
namespace {

constexpr size_t kMaxHeader = 16 * 1024;
constexpr size_t kMaxBody = 1 << 20;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    default: return "Internal Server Error";
  }
}

}  // namespace

Parse parse_request(std::string& buf, HttpRequest& out, std::string& error) {
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (buf.size() > kMaxHeader) {
      error = "request header too large";
      return Parse::bad;
    }
    return Parse::incomplete;
  }
  std::string head = buf.substr(0, head_end);
  size_t line_end = head.find("\r\n");
  std::string request_line = head.substr(0, line_end);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = request_line.find(' ', sp1 == std::string::npos ? sp1 : sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || request_line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    error = "malformed request line";
    return Parse::bad;
  }
  out = HttpRequest{};
  out.method = request_line.substr(0, sp1);
  std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.rfind("http://", 0) == 0) {  // absolute form: drop scheme and host
    size_t slash = target.find('/', 7);
    target = slash == std::string::npos ? "/" : target.substr(slash);
  }
  out.path = target.substr(0, target.find('?'));

  size_t content_length = 0;
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string::npos) next = head.size();
    std::string line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      error = "malformed header";
      return Parse::bad;
    }
    std::string name = lower(trim(line.substr(0, colon)));
    std::string value = trim(line.substr(colon + 1));
    if (name == "content-length") {
      char* end = nullptr;
      unsigned long long n = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n > kMaxBody) {
        error = "bad Content-Length";
        return Parse::bad;
      }
      content_length = static_cast<size_t>(n);
    } else if (name == "transfer-encoding") {
      error = "chunked bodies are not supported";
      return Parse::bad;
    } else if (name == "connection" && lower(value) == "close") {
      out.close = true;
    }
  }
  size_t total = head_end + 4 + content_length;
  if (buf.size() < total) return Parse::incomplete;
  out.body = buf.substr(head_end + 4, content_length);
  out.has_body = content_length > 0;
  buf.erase(0, total);
  return Parse::complete;
}

std::string format_response(int status, const std::string& json_body) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\nServer: Firecracker API\r\n";
  r += "Connection: keep-alive\r\n";
  if (!json_body.empty()) {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(json_body.size()) + "\r\n\r\n" + json_body;
  } else {
    r += "Content-Length: 0\r\n\r\n";
  }
  return r;
}

}  // namespace fakefc
