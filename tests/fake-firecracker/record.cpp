#include "record.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

namespace fakefc {

void record(const std::string& method, const std::string& path, const std::string& body, const nlohmann::json& status,
            bool injected) {
  const char* file = std::getenv("FAKE_FC_RECORD");
  if (!file || !*file) return;
  nlohmann::json b = nullptr;
  if (!body.empty()) {
    b = nlohmann::json::parse(body, nullptr, false);
    if (b.is_discarded()) b = body;
  }
  nlohmann::json line{{"method", method}, {"path", path}, {"body", b}, {"status", status}};
  if (injected) line["injected"] = true;
  std::string out = line.dump() + "\n";
  int fd = ::open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  // One write per line: O_APPEND keeps lines whole.
  if (::write(fd, out.data(), out.size()) < 0) {
    // nothing to do: the record is best effort
  }
  ::close(fd);
}

}  // namespace fakefc
