#include "engine/image/push.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>

#include "engine/core/cancel.hpp"
#include "engine/core/curl_handles.hpp"
#include "engine/core/error.hpp"
#include "engine/core/sha256.hpp"

namespace banger::image {
namespace {

using json = nlohmann::json;
constexpr std::uint64_t kReplyMax = 1 << 20;

// What a request sends: nothing, bytes in memory, or a file (hashed as it
// goes, so a layer changed since it was written cannot slip through).
struct Body {
  std::string data;
  std::string file;
  std::uint64_t file_size = 0;
  std::string file_digest;  // what the file must hash to
  PushProgressFn progress;
};

struct Transfer {
  Client::Response* r;
  const Body* body;
  std::string_view pending;  // what is left of body->data
  int fd = -1;
  Sha256 hash;
  std::uint64_t sent = 0;
  std::exception_ptr err;
  std::chrono::steady_clock::time_point next_progress;
};

size_t on_body(char* p, size_t size, size_t n, void* u) {
  auto* t = static_cast<Transfer*>(u);
  size_t len = size * n;
  if (t->r->body.size() + len > kReplyMax) return 0;
  t->r->body.append(p, len);
  return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* u) {
  auto* t = static_cast<Transfer*>(u);
  size_t cap = size * n;
  if (t->fd < 0) {
    size_t k = std::min(cap, t->pending.size());
    std::copy_n(t->pending.data(), k, buf);
    t->pending.remove_prefix(k);
    return k;
  }
  for (;;) {
    ssize_t got = ::read(t->fd, buf, cap);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      t->err = std::make_exception_ptr(Error::last("read", t->body->file));
      return CURL_READFUNC_ABORT;
    }
    t->hash.update(buf, static_cast<size_t>(got));
    t->sent += static_cast<std::uint64_t>(got);
    return static_cast<size_t>(got);
  }
}

int on_progress(void* u, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  if (cancel::requested()) return 1;
  auto* t = static_cast<Transfer*>(u);
  if (!t->body->progress || t->err) return t->err ? 1 : 0;
  auto now = std::chrono::steady_clock::now();
  if (now < t->next_progress) return 0;
  t->next_progress = now + std::chrono::milliseconds(100);
  try {
    t->body->progress(static_cast<std::uint64_t>(ulnow), t->body->file_size);
  } catch (...) {
    t->err = std::current_exception();
    return 1;
  }
  return 0;
}

// curl_easy_perform, but through a multi handle polled every 100 ms, so
// Ctrl-C ends even a transfer the server has stalled at once (an easy
// handle's progress callback may run only once a second then).
CURLcode perform(CURL* h) {
  curl::Multi m = curl::make_multi();
  curl::check(curl_multi_add_handle(m.get(), h), "curl_multi_add_handle");
  struct Remove {
    CURLM* m;
    CURL* h;
    ~Remove() { curl_multi_remove_handle(m, h); }
  } remove{m.get(), h};
  for (int running = 1;;) {
    curl::check(curl_multi_perform(m.get(), &running), "curl_multi_perform");
    if (!running) break;
    if (cancel::requested()) return CURLE_ABORTED_BY_CALLBACK;
    curl::check(curl_multi_poll(m.get(), nullptr, 0, 100, nullptr), "curl_multi_poll");
  }
  CURLcode rc = CURLE_OK;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(m.get(), &left))
    if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
  return rc;
}

class Pusher {
 public:
  explicit Pusher(Client& c) : c_(c), who_("image " + c.reference().str()) {}

  // One request, repeated once with credentials after a 401.
  Client::Response send(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                        const Body& body = {}) {
    Client::Response r = once(method, url, headers, body);
    if (r.status == 401) {
      c_.authenticate(r);
      r = once(method, url, headers, body);
    }
    return r;
  }

  [[noreturn]] void failed(const std::string& what, const Client::Response& r) {
    std::string code;
    std::string detail = registry_errors(r.body, &code);
    if (detail.empty()) detail = "HTTP " + std::to_string(r.status);
    if (r.status == 401 || r.status == 403 || code == "UNAUTHORIZED" || code == "DENIED")
      throw Error("EACCES", who_ + ": " + what + ": access denied: " + detail);
    if (code == "NAME_UNKNOWN") throw Error("ENOENT", who_ + ": " + what + ": " + detail);
    if (r.status == 429 || code == "TOOMANYREQUESTS") throw Error("EAGAIN", who_ + ": registry rate limit: " + detail);
    throw Error("EFETCH", who_ + ": " + what + " failed: " + detail);
  }

  const std::string& who() const { return who_; }

 private:
  Client::Response once(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                        const Body& body) {
    curl::Easy c = curl::make_easy();
    CURL* h = c.get();
    Client::Response r;
    Transfer t{&r, &body, body.data, -1, {}, 0, nullptr, {}};
    struct FdCloser {
      int& fd;
      ~FdCloser() {
        if (fd >= 0) ::close(fd);
      }
    } closer{t.fd};
    char errbuf[CURL_ERROR_SIZE] = {};
    curl::Headers hdrs;
    for (const auto& line : headers) hdrs.append(line);
    if (!c_.authorization().empty()) hdrs.append("Authorization: " + c_.authorization());
    const ClientOptions& o = c_.options();
    // Blobs may take long: only manifests and empty requests get a total limit.
    curl::set_common_options(h, url, "http,https", errbuf,
                             {.connect_timeout_s = o.connect_timeout_s,
                              .low_speed_time_s = o.low_speed_time_s,
                              .total_timeout_s = body.file.empty() ? o.request_timeout_s : 0});
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // a 202 or 201 carries a Location not to follow
    if (method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (method == "POST") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (method == "PUT") {
      std::uint64_t len = body.data.size();
      if (!body.file.empty()) {
        t.fd = ::open(body.file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (t.fd < 0) throw Error::last("open", body.file);
        len = body.file_size;
      }
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(h, CURLOPT_READDATA, &t);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(len));
      hdrs.append("Expect:");  // no 100-continue round trip
    } else {
      throw Error("EINVAL", "unsupported method " + method);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs.get());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_response_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    CURLcode rc = perform(h);
    if (t.err) std::rethrow_exception(t.err);
    if (rc != CURLE_OK) {
      if (cancel::requested()) throw Error("ECANCELED", "interrupted");
      throw Error(rc == CURLE_OPERATION_TIMEDOUT ? "ETIMEDOUT" : "EFETCH",
                  who_ + ": " + url + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    if (t.fd >= 0 && r.status != 401) {
      // What was sent must be what was written (the registry checks too).
      std::string got = "sha256:" + t.hash.hex();
      if (t.sent != body.file_size || got != body.file_digest)
        throw Error("EDIGEST", who_ + ": " + body.file + " changed since it was written (" + got + ", " +
                                   std::to_string(t.sent) + " bytes)");
    }
    return r;
  }

  Client& c_;
  std::string who_;
};

std::string absolute(const Reference& ref, const std::string& location) {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
  if (location.empty() || location[0] != '/') return {};
  return ref.scheme() + "://" + ref.api_host() + location;
}

// HEAD, then (when missing) POST + monolithic PUT. True when uploaded.
bool put_blob(Pusher& p, const Reference& ref, const std::string& digest, std::uint64_t size, Body body) {
  std::string base = ref.base_url() + "/blobs/";
  Client::Response head = p.send("HEAD", base + digest, {});
  if (head.status == 200) return false;
  if (head.status != 404) p.failed("checking blob " + digest, head);
  Client::Response start = p.send("POST", base + "uploads/", {});
  if (start.status != 202) p.failed("starting the upload of " + digest, start);
  std::string url = absolute(ref, start.location);
  if (url.empty()) throw Error("EFETCH", p.who() + ": the registry started an upload without a usable Location (\"" + start.location + "\")");
  url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
  body.file_size = body.file.empty() ? body.data.size() : size;
  body.file_digest = digest;
  Client::Response put = p.send("PUT", url, {"Content-Type: application/octet-stream"}, body);
  if (put.status != 201) p.failed("uploading " + digest, put);
  return true;
}

}  // namespace

std::string one_layer_manifest(const std::string& config_digest, std::uint64_t config_size, const PushLayer& layer) {
  json m = {{"schemaVersion", 2},
            {"mediaType", media::oci_manifest},
            {"config", {{"mediaType", oci_config_media}, {"digest", config_digest}, {"size", config_size}}},
            {"layers", json::array({{{"mediaType", oci_layer_gzip_media}, {"digest", layer.digest}, {"size", layer.size}}})}};
  return m.dump();
}

PushResult push_image(Client& client, const PushLayer& layer, const std::string& config, const PushProgressFn& progress) {
  const Reference& ref = client.reference();
  if (!ref.digest.empty() || ref.tag.empty())
    throw Error("EINVAL", "image push needs a tag to push to, not a digest: " + ref.str());
  check_digest(layer.digest, "layer");
  struct stat st {};
  if (::stat(layer.path.c_str(), &st) != 0) throw Error::last("stat", layer.path);
  if (static_cast<std::uint64_t>(st.st_size) != layer.size)
    throw Error("EDIGEST", layer.path + " is " + std::to_string(st.st_size) + " bytes, expected " + std::to_string(layer.size));
  client.want_push();
  Pusher p(client);
  PushResult res;
  Body lb;
  lb.file = layer.path;
  lb.progress = progress;
  res.layer_uploaded = put_blob(p, ref, layer.digest, layer.size, lb);
  if (res.layer_uploaded) res.uploaded_bytes += layer.size;
  if (progress) progress(layer.size, layer.size);
  res.config_digest = "sha256:" + sha256_hex(config);
  Body cb;
  cb.data = config;
  res.config_uploaded = put_blob(p, ref, res.config_digest, config.size(), cb);
  if (res.config_uploaded) res.uploaded_bytes += config.size();
  res.manifest = one_layer_manifest(res.config_digest, config.size(), layer);
  Body mb;
  mb.data = res.manifest;
  Client::Response put = p.send("PUT", ref.base_url() + "/manifests/" + ref.tag,
                                {std::string("Content-Type: ") + media::oci_manifest}, mb);
  if (put.status != 201) p.failed("putting the manifest", put);
  res.digest = "sha256:" + sha256_hex(res.manifest);
  if (!put.docker_digest.empty() && put.docker_digest != res.digest)
    throw Error("EDIGEST", p.who() + ": the registry stored the manifest as " + put.docker_digest + ", expected " + res.digest);
  return res;
}

}  // namespace banger::image
