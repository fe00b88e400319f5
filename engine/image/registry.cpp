#include "engine/image/registry.hpp"

#include <curl/curl.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "engine/core/cancel.hpp"
#include "engine/core/curl_handles.hpp"
#include "engine/core/error.hpp"
#include "engine/core/sha256.hpp"
#include "engine/core/base64.hpp"
#include "engine/image/auth.hpp"

namespace banger::image {
namespace {

using json = nlohmann::json;
constexpr std::uint64_t kManifestMax = 4 << 20;
constexpr std::uint64_t kTokenMax = 1 << 20;

struct Sink {
  Client::Response* r;
  std::uint64_t max;
  bool too_big = false;
};

size_t on_body(char* p, size_t size, size_t n, void* u) {
  auto* s = static_cast<Sink*>(u);
  size_t len = size * n;
  if (s->r->body.size() + len > s->max) {
    s->too_big = true;
    return 0;
  }
  s->r->body.append(p, len);
  return len;
}

std::string trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return std::string(v);
}

std::string manifest_accept() {
  return std::string("Accept: ") + media::oci_index + ", " + media::oci_manifest + ", " + media::docker_list + ", " +
         media::docker_manifest;
}

bool is_index(const std::string& mt) { return mt == media::oci_index || mt == media::docker_list; }
bool is_manifest(const std::string& mt) { return mt == media::oci_manifest || mt == media::docker_manifest; }

Descriptor descriptor(const json& d, const std::string& what) {
  if (!d.is_object()) throw Error("EINVAL", what + ": descriptor is not an object");
  Descriptor out;
  if (!d.contains("digest") || !d["digest"].is_string()) throw Error("EINVAL", what + ": descriptor without digest");
  out.digest = d["digest"].get<std::string>();
  check_digest(out.digest, what);
  if (!d.contains("size") || !d["size"].is_number_unsigned()) throw Error("EINVAL", what + ": descriptor without a valid size");
  out.size = d["size"].get<std::uint64_t>();
  if (d.contains("mediaType") && d["mediaType"].is_string()) out.media_type = d["mediaType"].get<std::string>();
  return out;
}

}  // namespace

size_t on_response_header(char* p, size_t size, size_t n, void* u) {
  auto* r = static_cast<Client::Response*>(u);
  std::string_view line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect): forget the old headers
    r->content_type.clear();
    r->docker_digest.clear();
    r->www_authenticate.clear();
    r->location.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string value = trim(line.substr(colon + 1));
  if (name == "content-type") {
    r->content_type = value.substr(0, value.find(';'));
  } else if (name == "docker-content-digest") {
    r->docker_digest = value;
  } else if (name == "location") {
    r->location = value;
  } else if (name == "www-authenticate") {
    // Several challenges may come in several headers; keep them all.
    r->www_authenticate += (r->www_authenticate.empty() ? "" : ", ") + value;
  }
  return size * n;
}

int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) { return cancel::requested() ? 1 : 0; }

std::string registry_errors(const std::string& body, std::string* first_code) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array()) return {};
  std::string out;
  for (auto& e : j["errors"]) {
    if (!e.is_object()) continue;
    std::string code = e.value("code", "");
    std::string msg = e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    if (first_code && first_code->empty()) *first_code = code;
    if (!out.empty()) out += "; ";
    out += code + (msg.empty() ? "" : ": " + msg);
  }
  return out.substr(0, 1000);
}

Platform parse_platform(std::string_view text) {
  Platform p;
  std::vector<std::string> parts;
  size_t s = 0;
  for (;;) {
    size_t n = text.find('/', s);
    parts.emplace_back(text.substr(s, n == std::string_view::npos ? std::string_view::npos : n - s));
    if (n == std::string_view::npos) break;
    s = n + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) throw Error("EINVAL", "invalid platform \"" + std::string(text) + "\" (want os/arch[/variant])");
  for (auto& x : parts) {
    if (x.empty() || x.size() > 64 || !std::isalnum(static_cast<unsigned char>(x[0]))) throw Error("EINVAL", "invalid platform \"" + std::string(text) + "\"");
    for (char c : x)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
        throw Error("EINVAL", "invalid platform \"" + std::string(text) + "\"");
  }
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

Client::Client(Reference ref, ClientOptions opts) : ref_(std::move(ref)), opts_(std::move(opts)) {
  curl::global_init();
}

Client::Response Client::get(const std::string& url, const std::string& accept, std::uint64_t max_bytes) {
  curl::Easy c = curl::make_easy();
  Response r;
  Sink sink{&r, max_bytes};
  char errbuf[CURL_ERROR_SIZE] = {};
  curl::Headers hdrs;
  if (!accept.empty()) hdrs.append(accept);
  if (!auth_.empty()) hdrs.append("Authorization: " + auth_);
  CURL* h = c.get();
  curl::set_common_options(h, url, "http,https", errbuf,
                           {.connect_timeout_s = opts_.connect_timeout_s,
                            .low_speed_time_s = opts_.low_speed_time_s,
                            .total_timeout_s = opts_.request_timeout_s});
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_response_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    if (cancel::requested()) throw Error("ECANCELED", "interrupted");
    if (sink.too_big) throw Error("EFBIG", url + ": response larger than " + std::to_string(max_bytes) + " bytes");
    throw Error(rc == CURLE_OPERATION_TIMEDOUT ? "ETIMEDOUT" : "EFETCH", url + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

void Client::authenticate(const Response& unauthorized) {
  auto creds = docker_credentials(ref_.registry, opts_.docker_config_dir);
  auto challenges = parse_www_authenticate(unauthorized.www_authenticate);
  const Challenge* bearer = nullptr;
  const Challenge* basic = nullptr;
  for (auto& c : challenges) {
    if (c.scheme == "bearer" && !bearer) bearer = &c;
    if (c.scheme == "basic" && !basic) basic = &c;
  }
  std::string who = "image " + ref_.str();
  if (bearer) {
    auto realm = bearer->params.find("realm");
    if (realm == bearer->params.end() || realm->second.empty())
      throw Error("EACCES", who + ": registry asked for a bearer token without a realm");
    const std::string& rurl = realm->second;
    if (rurl.rfind("https://", 0) != 0 && rurl.rfind("http://", 0) != 0)
      throw Error("EACCES", who + ": token realm is not an http(s) URL: " + rurl);
    curl::Easy esc = curl::make_easy();
    auto escape = [&](const std::string& v) {
      char* e = curl_easy_escape(esc.get(), v.c_str(), static_cast<int>(v.size()));
      std::string s = e ? e : "";
      curl_free(e);
      return s;
    };
    std::string url = rurl + (rurl.find('?') == std::string::npos ? "?" : "&");
    std::string sep;
    if (auto s = bearer->params.find("service"); s != bearer->params.end()) {
      url += "service=" + escape(s->second);
      sep = "&";
    }
    auto sc = bearer->params.find("scope");
    std::string scope = push_                        ? "repository:" + ref_.repository + ":pull,push"
                        : sc != bearer->params.end() ? sc->second
                                                     : "repository:" + ref_.repository + ":pull";
    url += sep + "scope=" + escape(scope);
    auth_ = creds ? "Basic " + base64_encode(creds->user + ":" + creds->password) : "";
    Response t = get(url, "Accept: application/json", kTokenMax);
    auth_.clear();
    if (t.status != 200)
      throw Error("EACCES", who + ": token request to " + rurl + " failed with HTTP " + std::to_string(t.status) +
                                (creds ? " (with credentials from docker config)" : " (anonymous)"));
    json j = json::parse(t.body, nullptr, false);
    std::string token;
    if (j.is_object()) {
      if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
      if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) token = j["access_token"].get<std::string>();
    }
    if (token.empty()) throw Error("EACCES", who + ": token response from " + rurl + " has no token");
    for (char ch : token)
      if (static_cast<unsigned char>(ch) < 0x21 || static_cast<unsigned char>(ch) > 0x7e)
        throw Error("EACCES", who + ": token from " + rurl + " contains invalid characters");
    auth_ = "Bearer " + token;
    return;
  }
  if (basic) {
    if (!creds) throw Error("EACCES", who + ": registry " + ref_.registry + " requires credentials (none in docker config.json)");
    auth_ = "Basic " + base64_encode(creds->user + ":" + creds->password);
    return;
  }
  throw Error("EACCES", who + ": registry answered 401 without a usable challenge");
}

Client::Response Client::get_authed(const std::string& url, const std::string& accept, std::uint64_t max_bytes) {
  Response r = get(url, accept, max_bytes);
  if (r.status == 401) {
    authenticate(r);
    r = get(url, accept, max_bytes);
  }
  return r;
}

void Client::prepare() {
  if (!auth_.empty()) return;
  Response r = get(ref_.scheme() + "://" + ref_.api_host() + "/v2/", "", 1 << 20);
  if (r.status == 401) authenticate(r);
}

BlobRequest Client::blob_request(const Descriptor& d) const {
  check_digest(d.digest, "blob of " + ref_.str());
  BlobRequest b;
  b.digest = d.digest;
  b.size = d.size;
  b.url = ref_.base_url() + "/blobs/" + d.digest;
  if (!auth_.empty()) b.headers.push_back("Authorization: " + auth_);
  return b;
}

std::string Client::fetch_manifest(const std::string& mref, const std::string& want_digest, std::string& media_type,
                                   std::string& digest) {
  std::string url = ref_.base_url() + "/manifests/" + mref;
  Response r = get_authed(url, manifest_accept(), kManifestMax);
  std::string who = "image " + ref_.str();
  if (r.status != 200) {
    std::string code;
    std::string detail = registry_errors(r.body, &code);
    if (detail.empty()) detail = "HTTP " + std::to_string(r.status);
    if (r.status == 404 || code == "MANIFEST_UNKNOWN" || code == "NAME_UNKNOWN" || code == "NOT_FOUND")
      throw Error("ENOENT", who + " not found: " + detail);
    if (r.status == 401 || r.status == 403 || code == "UNAUTHORIZED" || code == "DENIED")
      throw Error("EACCES", who + ": access denied: " + detail);
    if (r.status == 429 || code == "TOOMANYREQUESTS") throw Error("EAGAIN", who + ": registry rate limit: " + detail);
    throw Error("EFETCH", who + ": manifest request failed: " + detail);
  }
  digest = "sha256:" + sha256_hex(r.body);
  if (!want_digest.empty() && digest != want_digest)
    throw Error("EDIGEST", who + ": manifest hashes to " + digest + ", expected " + want_digest);
  if (want_digest.empty() && !r.docker_digest.empty() && r.docker_digest.rfind("sha256:", 0) == 0 && r.docker_digest != digest)
    throw Error("EDIGEST", who + ": manifest hashes to " + digest + ", registry says " + r.docker_digest);
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error("EINVAL", who + ": manifest is not a JSON object");
  media_type = r.content_type;
  if (j.contains("mediaType") && j["mediaType"].is_string()) media_type = j["mediaType"].get<std::string>();
  if (j.value("schemaVersion", 0) == 1 || media_type.rfind("application/vnd.docker.distribution.manifest.v1", 0) == 0)
    throw Error("ENOTSUP", who + ": schema 1 manifests are not supported");
  if (!is_index(media_type) && !is_manifest(media_type)) {
    // Some registries omit mediaType in the body and send a generic content type.
    if (j.contains("manifests")) {
      media_type = media::oci_index;
    } else if (j.contains("layers")) {
      media_type = media::oci_manifest;
    } else {
      throw Error("ENOTSUP", who + ": unsupported manifest type \"" + media_type + "\"");
    }
  }
  return r.body;
}

void parse_manifest(std::string_view body, Resolved& out) {
  std::string who = "image " + out.ref.str();
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error("EINVAL", who + ": manifest is not a JSON object");
  if (!j.contains("config")) throw Error("EINVAL", who + ": manifest has no config");
  out.config = descriptor(j["config"], who + " config");
  if (!j.contains("layers") || !j["layers"].is_array()) throw Error("EINVAL", who + ": manifest has no layers");
  out.layers.clear();
  for (auto& l : j["layers"]) out.layers.push_back(descriptor(l, who + " layer"));
  if (out.layers.size() > 1000) throw Error("EINVAL", who + ": more than 1000 layers");
}

Resolved Client::resolve(const Platform& platform) {
  Resolved out;
  out.ref = ref_;
  std::string mt, digest;
  std::string body = fetch_manifest(ref_.manifest_ref(), ref_.digest, mt, digest);
  if (is_index(mt)) {
    out.index_digest = digest;
    json j = json::parse(body);
    if (!j.contains("manifests") || !j["manifests"].is_array()) throw Error("EINVAL", "image " + ref_.str() + ": index has no manifests");
    std::string available;
    const json* pick = nullptr;
    for (auto& m : j["manifests"]) {
      if (!m.is_object() || !m.contains("platform") || !m["platform"].is_object()) continue;
      auto& p = m["platform"];
      std::string os = p.value("os", ""), arch = p.value("architecture", ""), var = p.value("variant", "");
      if (os == "unknown") continue;  // attestation manifests
      available += (available.empty() ? "" : ", ") + os + "/" + arch + (var.empty() ? "" : "/" + var);
      if (!pick && os == platform.os && arch == platform.architecture && (platform.variant.empty() || var == platform.variant)) pick = &m;
    }
    if (!pick)
      throw Error("ENOENT", "image " + ref_.str() + " has no " + platform.str() + " variant (available: " +
                                (available.empty() ? "none" : available) + ")");
    Descriptor d = descriptor(*pick, "image " + ref_.str() + " index entry");
    body = fetch_manifest(d.digest, d.digest, mt, digest);
    if (is_index(mt)) throw Error("ENOTSUP", "image " + ref_.str() + ": nested index");
  }
  out.digest = digest;
  out.media_type = mt;
  out.manifest = body;
  parse_manifest(body, out);
  return out;
}

}  // namespace banger::image
