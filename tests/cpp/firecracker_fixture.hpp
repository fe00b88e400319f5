#pragma once
// Shared by the firecracker_*_test.cpp files: a VM spec over temporary
// directories, the fake-firecracker binary, its call record, and checks for
// leftover processes.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/process.hpp"
#include "engine/vmm/driver.hpp"
#include "engine/vmm/firecracker.hpp"
#include "engine/vmm/firecracker_process.hpp"
#include "test_util.hpp"

namespace banger::test {

inline std::string fake_firecracker() { return std::string(BANGER_TEST_BINARY_DIR) + "/tests/fake-firecracker/fake-firecracker"; }

// Pids (other than ours) whose command line contains `arg`.
inline std::vector<pid_t> processes_with_arg(const std::string& arg) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == ::getpid()) continue;
    for (const auto& a : process::cmdline(static_cast<pid_t>(pid))) {
      if (a.find(arg) != std::string::npos) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  ::closedir(d);
  return out;
}

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

inline mode_t mode_of(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_mode : 0;
}

struct FcFixture {
  TempDir tmp;
  std::string runtime = tmp / "run";
  std::string vmdir = tmp / "vm";
  std::string record = tmp / "record.jsonl";
  vmm::VmSpec spec;
  EnvVar record_env{"FAKE_FC_RECORD", record};

  FcFixture() {
    ::mkdir(runtime.c_str(), 0700);
    ::mkdir(vmdir.c_str(), 0700);
    write_file(tmp / "vmlinux", "not really a kernel");
    write_file(tmp / "rootfs.ext4", std::string(4096, 'r'));
    write_file(tmp / "work.ext4", std::string(4096, 'w'));
    spec.id = "0123abcd";
    spec.name = "testvm";
    spec.vcpus = 2;
    spec.memory_mib = 256;
    spec.kernel = tmp / "vmlinux";
    spec.cmdline = "console=ttyS0 reboot=k panic=-1";
    spec.disks = {{"rootfs", tmp / "rootfs.ext4", "raw", false, true}, {"work", tmp / "work.ext4", "raw", true, false}};
    spec.nics = {{"eth0", "tap-test0", "02:fc:00:00:00:01"}};
    spec.agent.kind = vmm::AgentTransport::Kind::vsock_uds;
    spec.agent.cid = 3;
    spec.agent.port = 52;
    spec.binary = fake_firecracker();
    spec.vm_dir = vmdir;
    spec.runtime_dir = runtime;
  }
  ~FcFixture() {
    // A failing test must not leave a fake behind.
    for (pid_t p : processes_with_arg(tmp.path())) ::kill(p, SIGKILL);
  }

  std::string api_socket() const { return runtime + "/fc.sock"; }
  std::string vsock_socket() const { return runtime + "/fc.vsock"; }

  std::vector<nlohmann::json> calls() const {
    std::vector<nlohmann::json> out;
    std::ifstream f(record);
    for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  // "PUT /drives/rootfs" for each recorded call, in order.
  std::vector<std::string> call_names() const {
    std::vector<std::string> out;
    for (const auto& c : calls()) out.push_back(c["method"].get<std::string>() + " " + c["path"].get<std::string>());
    return out;
  }
  bool no_leftover() const { return processes_with_arg(tmp.path()).empty(); }
};

}  // namespace banger::test
