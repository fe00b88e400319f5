// The in-process qcow2 writer (engine/vmm/qcow2.cpp) judged by QEMU's own
// tools: `qemu-img check` finds no errors, `qemu-img info` reads the sizes,
// backing file and format back, and `qemu-io` writes into the overlay and
// reads the base through it, over a raw base and over a qcow2 base.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/vmm/qcow2.hpp"
#include "test_util.hpp"

using namespace banger;

namespace {

process::RunResult run(std::vector<std::string> argv) {
  process::SpawnOptions o;
  o.argv = std::move(argv);
  return process::run(o);
}

// `qemu-img check` exits 0 only for an image without errors or leaks.
void require_clean(const std::string& image) {
  auto r = run({"qemu-img", "check", image});
  INFO(r.out << r.err);
  REQUIRE(r.status.shell_code() == 0);
  CHECK(r.out.find("No errors were found on the image.") != std::string::npos);
}

std::string info(const std::string& image) {
  auto r = run({"qemu-img", "info", "--output=json", image});
  INFO(r.err);
  REQUIRE(r.status.shell_code() == 0);
  return r.out;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// qemu-io returns 0 even when a pattern does not match; it says so.
void qemu_io(const std::string& image, const std::string& cmd) {
  auto r = run({"qemu-io", "-c", cmd, image});
  INFO(cmd << ": " << r.out << r.err);
  REQUIRE(r.status.shell_code() == 0);
  CHECK_FALSE(has(r.out + r.err, "Pattern verification failed"));
  CHECK_FALSE(has(r.out + r.err, "failed"));
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

}  // namespace

TEST_CASE("a qcow2 overlay of a raw base passes qemu-img check and reads the base", "[qcow2]") {
  test::TempDir t;
  const std::string base = t / "base.img";
  write_file(base, std::string(1 << 20, 'x'));
  const std::string overlay = t / "root.qcow2";
  vmm::create_qcow2_overlay(base, overlay, 8LL << 30);
  require_clean(overlay);
  std::string i = info(overlay);
  CHECK(has(i, "\"format\": \"qcow2\""));
  CHECK(has(i, "\"virtual-size\": 8589934592"));
  CHECK(has(i, "\"backing-filename\": \"" + base + "\""));
  CHECK(has(i, "\"backing-filename-format\": \"raw\""));
  CHECK(has(i, "\"cluster-size\": 65536"));
  CHECK(has(i, "\"compat\": \"1.1\""));  // version 3
  CHECK(vmm::qcow2_virtual_size(overlay) == (8ULL << 30));
  struct stat st {};
  REQUIRE(::stat(overlay.c_str(), &st) == 0);
  CHECK(st.st_blocks * 512 <= 3 * 65536 + 4096);  // metadata only: sparse and O(1)

  // The base shows through; QEMU allocates in the overlay, and the result
  // is still consistent; the base is untouched.
  qemu_io(overlay, "read -P 0x78 0 1M");
  qemu_io(overlay, "read -P 0 1M 64k");  // past the base's end: zeros
  qemu_io(overlay, "write -P 0xab 64k 64k");
  qemu_io(overlay, "write -P 0xcd 7G 4k");
  require_clean(overlay);
  qemu_io(overlay, "read -P 0xab 64k 64k");
  qemu_io(overlay, "read -P 0x78 0 64k");
  qemu_io(overlay, "read -P 0xcd 7G 4k");
  std::ifstream b(base, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
  CHECK(content == std::string(1 << 20, 'x'));
}

TEST_CASE("a qcow2 overlay of a qcow2 base (a snapshot's frozen layer)", "[qcow2]") {
  test::TempDir t;
  const std::string raw = t / "base.img";
  write_file(raw, std::string(2 << 20, 'x'));
  const std::string layer = t / "layer.qcow2";
  vmm::create_qcow2_overlay(raw, layer, 0);  // size 0: the base's
  CHECK(vmm::qcow2_virtual_size(layer) == (2u << 20));
  qemu_io(layer, "write -P 0x11 1M 64k");

  const std::string top = t / "next.qcow2";
  vmm::create_qcow2_overlay(layer, top, 0, "qcow2");
  require_clean(top);
  std::string i = info(top);
  CHECK(has(i, "\"virtual-size\": 2097152"));  // inherited from the qcow2 layer's header
  CHECK(has(i, "\"backing-filename\": \"" + layer + "\""));
  CHECK(has(i, "\"backing-filename-format\": \"qcow2\""));
  qemu_io(top, "read -P 0x78 0 1M");
  qemu_io(top, "read -P 0x11 1M 64k");
  qemu_io(top, "write -P 0x22 0 4k");
  require_clean(top);
  require_clean(layer);
  qemu_io(layer, "read -P 0x78 0 4k");  // the layer below did not change

  // A base that qemu-img made is just as good.
  const std::string ref = t / "ref.qcow2";
  REQUIRE(run({"qemu-img", "create", "-q", "-f", "qcow2", ref, "64M"}).status.shell_code() == 0);
  const std::string over_ref = t / "over-ref.qcow2";
  vmm::create_qcow2_overlay(ref, over_ref, 128LL << 20, "qcow2");
  require_clean(over_ref);
  CHECK(has(info(over_ref), "\"virtual-size\": 134217728"));
}

TEST_CASE("qcow2 overlays: sizes whose L1 table spans several clusters, and odd sizes", "[qcow2]") {
  test::TempDir t;
  const std::string base = t / "base.img";
  write_file(base, std::string(4096, 'x'));
  // 64 TiB: 131072 L1 entries, 16 clusters of L1 table, all refcounted.
  const std::string big = t / "big.qcow2";
  vmm::create_qcow2_overlay(base, big, 64LL << 40);
  require_clean(big);
  CHECK(has(info(big), "\"virtual-size\": 70368744177664"));
  qemu_io(big, "write -P 0x5a 60T 64k");
  require_clean(big);
  // Rounded up to whole 512-byte sectors, as qemu-img does.
  const std::string odd = t / "odd.qcow2";
  vmm::create_qcow2_overlay(base, odd, 1000);
  require_clean(odd);
  CHECK(vmm::qcow2_virtual_size(odd) == 1024);
}

TEST_CASE("qcow2 overlays refuse what they cannot describe", "[qcow2]") {
  test::TempDir t;
  const std::string base = t / "base.img";
  write_file(base, std::string(4096, 'x'));
  auto code_of = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    return std::string("no error");
  };
  CHECK(code_of([&] { vmm::create_qcow2_overlay(base, t / "a.qcow2", 1 << 20, "vmdk"); }) == "EINVAL");
  CHECK(code_of([&] { vmm::create_qcow2_overlay(base, t / "b.qcow2", 1 << 20, "qcow2"); }) == "EINVAL");  // raw, not qcow2
  CHECK(code_of([&] { vmm::create_qcow2_overlay(t / "missing.img", t / "c.qcow2", 1 << 20); }) == "ENOENT");
  CHECK(code_of([&] { vmm::create_qcow2_overlay(base, t / "d.qcow2", 1LL << 62); }) == "EINVAL");
  CHECK(code_of([&] { vmm::create_qcow2_overlay(base, t / "e.qcow2", 1 << 20, "raw"); vmm::qcow2_virtual_size(base); }) ==
        "EINVAL");
  for (const char* name : {"a.qcow2", "b.qcow2", "c.qcow2", "d.qcow2"}) CHECK(::access((t / name).c_str(), F_OK) != 0);

  // A symlink where the overlay goes is not followed (its target stays as it was).
  const std::string target = t / "target";
  write_file(target, "keep");
  REQUIRE(::symlink(target.c_str(), (t / "link.qcow2").c_str()) == 0);
  CHECK(code_of([&] { vmm::create_qcow2_overlay(base, t / "link.qcow2", 1 << 20); }) == "ELOOP");
  std::ifstream f(target);
  std::string kept((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK(kept == "keep");
}
