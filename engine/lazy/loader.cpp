#include "engine/lazy/loader.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace banger::lazy {

void* symbol(const char* soname, const char* name) {
  static std::mutex mu;
  static std::map<std::string, void*> handles;
  std::lock_guard<std::mutex> lock(mu);
  void*& handle = handles[soname];
  if (!handle) handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    std::fprintf(stderr, "banger: cannot load %s: %s\n", soname, ::dlerror());
    std::abort();
  }
  void* fn = ::dlsym(handle, name);
  if (!fn) {
    std::fprintf(stderr, "banger: %s has no %s: %s\n", soname, name, ::dlerror());
    std::abort();
  }
  return fn;
}

}  // namespace banger::lazy
