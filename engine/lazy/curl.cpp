// libcurl, loaded when banger first makes an HTTP request (registry pulls,
// downloads, the Firecracker API).
#include <curl/curl.h>

#include "engine/lazy/loader.hpp"

namespace {
constexpr const char* kLib = "libcurl.so.4";
}

BANGER_LAZY(kLib, void, curl_easy_cleanup, (CURL * curl), (curl))
BANGER_LAZY(kLib, char*, curl_easy_escape, (CURL * handle, const char* string, int length), (handle, string, length))
BANGER_LAZY(kLib, CURL*, curl_easy_init, (void), ())
BANGER_LAZY(kLib, CURLcode, curl_easy_perform, (CURL * curl), (curl))
BANGER_LAZY(kLib, const char*, curl_easy_strerror, (CURLcode code), (code))
BANGER_LAZY(kLib, void, curl_free, (void* p), (p))
BANGER_LAZY(kLib, CURLcode, curl_global_init, (long flags), (flags))
BANGER_LAZY(kLib, CURLMcode, curl_multi_add_handle, (CURLM * multi, CURL* easy), (multi, easy))
BANGER_LAZY(kLib, CURLMcode, curl_multi_cleanup, (CURLM * multi), (multi))
BANGER_LAZY(kLib, CURLMsg*, curl_multi_info_read, (CURLM * multi, int* msgs_in_queue), (multi, msgs_in_queue))
BANGER_LAZY(kLib, CURLM*, curl_multi_init, (void), ())
BANGER_LAZY(kLib, CURLMcode, curl_multi_perform, (CURLM * multi, int* running), (multi, running))
BANGER_LAZY(kLib, CURLMcode, curl_multi_poll,
            (CURLM * multi, struct curl_waitfd extra_fds[], unsigned int extra_nfds, int timeout_ms, int* ret),
            (multi, extra_fds, extra_nfds, timeout_ms, ret))
BANGER_LAZY(kLib, CURLMcode, curl_multi_remove_handle, (CURLM * multi, CURL* easy), (multi, easy))
BANGER_LAZY(kLib, const char*, curl_multi_strerror, (CURLMcode code), (code))
BANGER_LAZY(kLib, struct curl_slist*, curl_slist_append, (struct curl_slist * list, const char* data), (list, data))
BANGER_LAZY(kLib, void, curl_slist_free_all, (struct curl_slist * list), (list))

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "forwarding curl's variadic functions assumes the x86-64 or arm64 calling convention"
#endif

// The two variadic ones take exactly one more argument: a long, a
// curl_off_t, a pointer or a function pointer, all passed the way a pointer
// is (one integer register or stack slot on x86-64 and arm64), so it is
// taken as one and handed on unchanged.
extern "C" CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  static const auto real =
      reinterpret_cast<CURLcode (*)(CURL*, CURLoption, ...)>(banger::lazy::symbol(kLib, "curl_easy_setopt"));
  va_list ap;
  va_start(ap, option);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return real(curl, option, arg);
}

extern "C" CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  static const auto real =
      reinterpret_cast<CURLcode (*)(CURL*, CURLINFO, ...)>(banger::lazy::symbol(kLib, "curl_easy_getinfo"));
  va_list ap;
  va_start(ap, info);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return real(curl, info, arg);
}
