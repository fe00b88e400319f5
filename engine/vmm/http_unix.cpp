#include "engine/vmm/http_unix.hpp"

#include <curl/curl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "engine/core/cancel.hpp"
#include "engine/core/curl_handles.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::vmm::http {
namespace {

size_t collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Lets Ctrl-C abort a request that is waiting on a stuck hypervisor.
int progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return cancel::requested() ? 1 : 0;
}

std::string describe(const std::string& socket_path, const Request& req) {
  return req.method + " " + req.path + " on " + socket_path;
}

}  // namespace

Response request(const std::string& socket_path, const Request& req) {
  curl::Easy easy = curl::make_easy();
  CURL* c = easy.get();

  Response res;
  std::string url = "http://localhost" + req.path;
  long timeout_ms = static_cast<long>(req.timeout.count());
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &res.body);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);

  curl::Headers headers;
  headers.append("Accept: application/json");
  // Firecracker's micro_http does not do 100-continue; never wait for it.
  headers.append("Expect:");
  if (!req.body.empty()) headers.append("Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  if (req.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  }

  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    std::string what = describe(socket_path, req) + ": " + curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_ABORTED_BY_CALLBACK: throw Error("ECANCELED", "interrupted: " + describe(socket_path, req));
      case CURLE_COULDNT_CONNECT: throw Error("ECONNREFUSED", what);
      case CURLE_OPERATION_TIMEDOUT: throw Error("ETIMEDOUT", what);
      default: throw Error("EIO", what);
    }
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
  return res;
}

bool can_connect(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) throw Error("ENAMETOOLONG", "socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw Error::last("socket");
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace banger::vmm::http
