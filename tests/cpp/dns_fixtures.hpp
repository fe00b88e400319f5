#pragma once
// Building DNS packets by hand for the responder's and the egress
// resolver's tests.
#include <string>

namespace test {

// "web.vm" as wire-format labels, ending with the root's zero byte.
inline std::string name_bytes(const std::string& dotted) {
  std::string out;
  size_t start = 0;
  while (start < dotted.size()) {
    size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    out.push_back(static_cast<char>(dot - start));
    out += dotted.substr(start, dot - start);
    start = dot + 1;
  }
  out.push_back('\0');
  return out;
}

}  // namespace test
