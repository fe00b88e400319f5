#pragma once
// Owners for libcurl handles (easy, multi, header lists), so no path, an
// exception included, leaks one or frees one twice.
#include <curl/curl.h>

#include <memory>
#include <string>

#include "engine/core/error.hpp"

namespace banger::curl {

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct MultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};

using Easy = std::unique_ptr<CURL, EasyDeleter>;
using Multi = std::unique_ptr<CURLM, MultiDeleter>;

// curl_global_init once per process (it is not thread-safe to repeat).
inline void global_init() {
  static const bool inited = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!inited) throw Error("EINTERNAL", "curl_global_init failed");
}

inline Easy make_easy() {
  global_init();
  Easy h(curl_easy_init());
  if (!h) throw Error("ENOMEM", "curl_easy_init");
  return h;
}

inline Multi make_multi() {
  global_init();
  Multi m(curl_multi_init());
  if (!m) throw Error("ENOMEM", "curl_multi_init");
  return m;
}

// What every banger transfer sets the same way: the URL, redirects (registries
// send blobs to storage hosts; curl drops an Authorization header when the
// host changes), which schemes may be fetched and followed (a redirect never
// leaves http/https, whatever the first URL was), where curl writes its error,
// and the stall limits: a server that sends nothing for low_speed_time_s
// seconds ends the transfer instead of hanging banger.
struct TransferLimits {
  long connect_timeout_s = 30;
  long low_speed_time_s = 60;
  long total_timeout_s = 0;  // 0: none
};

inline void set_common_options(CURL* h, const std::string& url, const char* protocols, char* errbuf,
                               const TransferLimits& limits) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, limits.connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, limits.low_speed_time_s);
  if (limits.total_timeout_s > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT, limits.total_timeout_s);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "banger");
}

// Throws unless a curl_multi_* call succeeded.
inline void check(CURLMcode rc, const char* what) {
  if (rc != CURLM_OK) throw Error("EFETCH", std::string(what) + ": " + curl_multi_strerror(rc));
}

// A header list. append() keeps the list on failure (curl_slist_append
// returns NULL then, and the old list would be lost if assigned).
class Headers {
 public:
  void append(const std::string& line) {
    curl_slist* next = curl_slist_append(list_.get(), line.c_str());
    if (!next) throw Error("ENOMEM", "curl_slist_append");
    list_.release();
    list_.reset(next);
  }
  curl_slist* get() const { return list_.get(); }

 private:
  std::unique_ptr<curl_slist, SlistDeleter> list_;
};

}  // namespace banger::curl
