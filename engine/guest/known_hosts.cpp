#include "engine/guest/known_hosts.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "engine/core/atomic_file.hpp"
#include "engine/core/base64.hpp"
#include "engine/core/error.hpp"
#include "engine/core/file_lock.hpp"
#include "engine/core/paths.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::ssh {
namespace {

// A pinned key that is no valid base64 matches nothing.
std::string unbase64(const std::string& b64) {
  try {
    return base64_decode(b64);
  } catch (const Error&) {
    return {};
  }
}

std::string sha256_raw(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

struct Line {
  std::vector<std::string> hosts;
  std::string type, key_b64, rest;  // rest: comment, kept as written
  std::string raw;                  // lines we do not parse are kept verbatim
  bool parsed = false;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

// Reads the file without following a symlink at its path; a missing file is empty.
std::vector<Line> load(const std::string& path) {
  std::vector<Line> lines;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return lines;
    if (errno == ELOOP) throw Error("ELOOP", "refusing " + path + ": it is a symlink");
    throw Error::last("open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error::last("fstat", path);
  if (!S_ISREG(st.st_mode)) throw Error("EINVAL", "refusing " + path + ": not a regular file");
  if (st.st_uid != ::geteuid()) throw Error("EPERM", "refusing " + path + ": owned by uid " + std::to_string(st.st_uid));
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) throw Error::last("read", path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  for (const auto& raw : split(text, '\n')) {
    Line l;
    l.raw = raw;
    std::istringstream in(raw);
    std::string hosts;
    if (!raw.empty() && raw[0] != '#' && raw[0] != '@' && (in >> hosts >> l.type >> l.key_b64)) {
      l.hosts = split(hosts, ',');
      std::getline(in, l.rest);
      l.parsed = true;
    }
    lines.push_back(std::move(l));
  }
  while (!lines.empty() && lines.back().raw.empty()) lines.pop_back();
  return lines;
}

void save(const std::string& path, const std::vector<Line>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!l.parsed) {
      out += l.raw + "\n";
      continue;
    }
    if (l.hosts.empty()) continue;
    std::string hosts;
    for (const auto& h : l.hosts) hosts += (hosts.empty() ? "" : ",") + h;
    out += hosts + " " + l.type + " " + l.key_b64 + l.rest + "\n";
  }
  atomic_write_file(path, out, 0600);
}

std::string dir_of(const std::string& path) { return path.substr(0, path.find_last_of('/')); }

bool names(const Line& l, const std::vector<std::string>& hosts) {
  for (const auto& h : l.hosts) {
    for (const auto& want : hosts) {
      if (h == want) return true;
    }
  }
  return false;
}

}  // namespace

std::string fingerprint(const HostKey& key) {
  std::string b = base64_encode(sha256_raw(key.blob));
  while (!b.empty() && b.back() == '=') b.pop_back();
  return "SHA256:" + b;
}

std::string host_pattern(const std::string& host, int port) {
  return port == 22 ? host : "[" + host + "]:" + std::to_string(port);
}

Verdict check_and_pin(const std::string& path, const std::vector<std::string>& hosts, const HostKey& key,
                      const std::string& subject) {
  paths::ensure_private_dir(dir_of(path));
  FileLock lock(path + ".lock", true, std::chrono::seconds(30));
  auto lines = load(path);
  const std::string b64 = base64_encode(key.blob);
  bool matched = false;
  for (const auto& l : lines) {
    if (!l.parsed || l.type != key.type || !names(l, hosts)) continue;
    if (l.key_b64 != b64) {
      HostKey pinned{l.type, unbase64(l.key_b64)};
      throw Error("EHOSTKEY", "host key of " + subject + " changed: POSSIBLE MAN-IN-THE-MIDDLE ATTACK. Pinned " +
                                  key.type + " " + fingerprint(pinned) + ", offered " + fingerprint(key) +
                                  ". If the VM was re-created or re-keyed on purpose, remove the pin with "
                                  "`banger vm ssh --forget` or delete the VM (pins live in " + path + ")");
    }
    matched = true;
  }
  if (matched) return Verdict::matches;
  Line l;
  l.hosts = hosts;
  l.type = key.type;
  l.key_b64 = b64;
  l.parsed = true;
  lines.push_back(l);
  save(path, lines);
  return Verdict::pinned_now;
}

int forget(const std::string& path, const std::vector<std::string>& hosts) {
  if (::access(dir_of(path).c_str(), F_OK) != 0) return 0;
  FileLock lock(path + ".lock", true, std::chrono::seconds(30));
  auto lines = load(path);
  int dropped = 0;
  for (auto& l : lines) {
    if (!l.parsed) continue;
    std::vector<std::string> keep;
    for (const auto& h : l.hosts) {
      bool drop = false;
      for (const auto& gone : hosts) drop = drop || h == gone;
      if (drop) {
        ++dropped;
      } else {
        keep.push_back(h);
      }
    }
    l.hosts = keep;
  }
  if (dropped > 0) save(path, lines);
  return dropped;
}

}  // namespace banger::ssh
