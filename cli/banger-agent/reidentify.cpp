#include "reidentify.hpp"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "engine/core/atomic_file.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/core/write_all.hpp"
#include "guest_net.hpp"
#include "guest_system.hpp"
#include "ssh_host_keys.hpp"

namespace banger::agent {
namespace {

constexpr const char* kStateDir = "/run/banger-agent";
constexpr const char* kStateFile = "/run/banger-agent/reidentify.json";
constexpr const char* kLockFile = "/run/banger-agent/reidentify.lock";

// Runs one named step, timing it into `steps` (the reply's steps_ms).
void step(nlohmann::json& steps, const char* name, const std::function<void()>& fn) {
  const long long start = monotonic_ms();
  try {
    fn();
    steps[name] = monotonic_ms() - start;
  } catch (const Error& e) {
    throw StepError(name, e);
  } catch (const std::exception& e) {
    throw StepError(name, Error("EIO", e.what()));
  }
}

void set_clock(std::int64_t time_ns) {
  timespec ts{static_cast<time_t>(time_ns / 1000000000), static_cast<long>(time_ns % 1000000000)};
  if (::clock_settime(CLOCK_REALTIME, &ts) != 0) throw Error::last("clock_settime");
}

// Debian's cloud kernel has no CONFIG_VMGENID, so nothing tells it that it
// was cloned: credit the host's bytes and reseed the CRNG now, before any
// key below is made.
void add_entropy(const std::string& bytes) {
  UniqueFd fd(::open("/dev/urandom", O_WRONLY | O_CLOEXEC));
  if (!fd) throw Error::last("open", "/dev/urandom");
  std::vector<std::uint32_t> storage(2 + (bytes.size() + 3) / 4);
  auto* info = reinterpret_cast<rand_pool_info*>(storage.data());
  info->entropy_count = static_cast<int>(bytes.size() * 8);
  info->buf_size = static_cast<int>(bytes.size());
  std::memcpy(info->buf, bytes.data(), bytes.size());
  const char* what = "RNDADDENTROPY";
  int rc = ::ioctl(fd.get(), RNDADDENTROPY, info);
  if (rc == 0) {
    what = "RNDRESEEDCRNG";
    rc = ::ioctl(fd.get(), RNDRESEEDCRNG);
  }
  if (rc != 0) throw Error::last(what, "/dev/urandom");
}

// Atomically, keeping the file's mode; a file that is a mount point (systemd
// bind-mounts a transient /run/machine-id there on a first boot) cannot be
// renamed over and is rewritten in place instead.
void replace_file(const std::string& path, const std::string& content, mode_t fallback_mode) {
  struct stat st {};
  mode_t mode = ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : fallback_mode;
  try {
    atomic_write_file(path, content, mode);
  } catch (const Error& e) {
    if (e.code() != "EBUSY") throw;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw Error::last("open", path);
    write_all(fd.get(), content, path);
    if (::fsync(fd.get()) != 0) throw Error::last("fsync", path);
  }
}

bool is_regular_file(const char* path) {
  struct stat st {};
  return ::lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void write_machine_id(const std::string& id) {
  replace_file("/etc/machine-id", id + "\n", 0444);
  // Older images keep a copy for D-Bus (usually a link to the file above).
  if (is_regular_file("/var/lib/dbus/machine-id")) replace_file("/var/lib/dbus/machine-id", id + "\n", 0444);
}

void set_hostname(const std::string& name) {
  if (::sethostname(name.data(), name.size()) != 0) throw Error::last("sethostname", name);
  // Only where the image keeps one (banger's images take the name from the kernel command line).
  if (is_regular_file("/etc/hostname")) replace_file("/etc/hostname", name + "\n", 0644);
}

void write_resolv_conf(const std::vector<std::string>& servers) {
  std::string text = "# Written by banger-agent for this VM.\n";
  for (const auto& s : servers) text += "nameserver " + s + "\n";
  // Renamed over whatever is there, a link to a resolver stub included.
  atomic_write_file("/etc/resolv.conf", text, 0644);
}

class StateLock {
 public:
  StateLock() {
    ::mkdir(kStateDir, 0700);
    fd_.reset(::open(kLockFile, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd_) throw Error::last("open", kLockFile);
    // One reidentify at a time (socket transports serve sessions in parallel).
    while (::flock(fd_.get(), LOCK_EX) != 0) {
      if (errno != EINTR) throw Error::last("lock", kLockFile);
    }
  }

 private:
  UniqueFd fd_;  // closing it releases the lock
};

nlohmann::json applied_state() {
  UniqueFd fd(::open(kStateFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return nullptr;
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_object() ? j : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json reidentify(const guest::ReidentifyRequest& r) {
  const long long start = monotonic_ms();
  nlohmann::json steps = nlohmann::json::object();
  std::unique_ptr<StateLock> lock;
  step(steps, "lock", [&] { lock = std::make_unique<StateLock>(); });
  nlohmann::json applied = applied_state();
  auto gen = applied.is_object() ? applied.find("generation") : applied.end();
  if (gen != applied.end() && gen->is_string() && gen->get<std::string>() == r.generation &&
      applied.contains("reply") && applied["reply"].is_object()) {
    nlohmann::json reply = applied["reply"];
    reply["repeated"] = true;
    return reply;
  }
  step(steps, "clock", [&] { set_clock(r.time_ns); });
  step(steps, "entropy", [&] { add_entropy(r.entropy); });
  step(steps, "machine-id", [&] { write_machine_id(r.machine_id); });
  step(steps, "hostname", [&] { set_hostname(r.hostname); });
  if (r.net) step(steps, "net", [&] { readdress(*r.net); });
  if (r.dns) step(steps, "dns", [&] { write_resolv_conf(*r.dns); });
  std::string keys = "none";
  if (r.ssh_host_keys) step(steps, "ssh-host-keys", [&] { keys = regenerate_ssh_host_keys(); });
  nlohmann::json reply = {
      {"ssh_host_keys", keys}, {"took_ms", monotonic_ms() - start}, {"repeated", false}, {"steps_ms", steps}};
  step(steps, "state", [&] {
    atomic_write_file(kStateFile, nlohmann::json{{"generation", r.generation}, {"reply", reply}}.dump() + "\n", 0600);
  });
  return reply;
}

}  // namespace banger::agent
