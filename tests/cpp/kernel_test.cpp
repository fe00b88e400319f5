// Kernel import pieces on synthetic inputs; the real Debian kernel is
// covered end to end in tests/lua/e2e_vm_spec.lua.
#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/kernel/bzimage.hpp"
#include "engine/kernel/catalog.hpp"
#include "engine/kernel/initramfs.hpp"
#include "engine/kernel/modinfo.hpp"
#include "engine/kernel/modules.hpp"
#include "test_util.hpp"

using namespace banger;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void spit(const std::string& p, const std::string& data) { std::ofstream(p, std::ios::binary) << data; }

// An ELF64 x86-64 executable header followed by recognisable bytes.
std::string fake_vmlinux() {
  std::string elf(4096, '\0');
  const unsigned char ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  std::copy(std::begin(ident), std::end(ident), elf.begin());
  elf[16] = 2;   // ET_EXEC
  elf[18] = 62;  // EM_X86_64
  for (size_t i = 64; i < elf.size(); ++i) elf[i] = static_cast<char>(i * 7);
  return elf;
}

std::string compress(const std::string& data, const std::vector<std::string>& tool, const test::TempDir& t) {
  spit(t / "plain", data);
  process::SpawnOptions o;
  o.argv = tool;
  o.argv.push_back(t / "plain");
  o.out = process::Stdio::file(t / "packed", false);
  auto r = process::run(o);
  REQUIRE(r.status.shell_code() == 0);
  return slurp(t / "packed");
}

// A bzImage: one setup sector with the boot header, then the payload and the
// uncompressed size the kernel build appends.
std::string fake_bzimage(const std::string& payload, std::uint32_t size) {
  std::string img(2 * 512, '\0');
  img[0x1f1] = 1;  // setup_sects
  img.replace(0x202, 4, "HdrS");
  img[0x206] = 0x0f;
  img[0x207] = 0x02;  // protocol 2.15
  std::string body = payload;
  for (int i = 0; i < 4; ++i) body += static_cast<char>((size >> (8 * i)) & 0xff);
  std::uint32_t off = 0, len = static_cast<std::uint32_t>(body.size());
  for (int i = 0; i < 4; ++i) {
    img[0x248 + i] = static_cast<char>((off >> (8 * i)) & 0xff);
    img[0x24c + i] = static_cast<char>((len >> (8 * i)) & 0xff);
  }
  return img + body;
}

// A real relocatable object with a .modinfo section, like a kernel module.
std::string fake_module(const test::TempDir& t, const std::string& name, const std::string& depends) {
  std::string c = t / (name + ".c");
  spit(c, "__attribute__((section(\".modinfo\"), used)) static const char info[] = \"license=GPL\\0name=" + name +
              "\\0depends=" + depends + "\";\n");
  auto r = process::run({{"cc", "-c", "-o", t / (name + ".ko"), c}, {}, {}, {}, false, {}, {}, {}});
  REQUIRE(r.status.shell_code() == 0);
  return slurp(t / (name + ".ko"));
}


}  // namespace

TEST_CASE("payload compression is recognised by its magic", "[kernel]") {
  using kernel::Compression;
  CHECK(kernel::detect_compression("\x1f\x8b\x08") == Compression::gzip);
  CHECK(kernel::detect_compression(std::string("\xfd" "7zXZ\0", 6)) == Compression::xz);
  CHECK(kernel::detect_compression("\x28\xb5\x2f\xfd") == Compression::zstd);
  CHECK(kernel::detect_compression("\x02\x21\x4c\x18") == Compression::lz4_legacy);
  CHECK(kernel::detect_compression("BZh9") == Compression::bzip2);
  CHECK(kernel::detect_compression("\x7f" "ELF") == Compression::none);
  CHECK(kernel::detect_compression("MZ") == Compression::unknown);
}

TEST_CASE("bzImage payloads decompress to the ELF vmlinux", "[kernel]") {
  test::TempDir t;
  const std::string elf = fake_vmlinux();
  for (const auto& tool : std::vector<std::vector<std::string>>{
           {"gzip", "-c"}, {"xz", "-c", "--check=crc32"}, {"zstd", "-c", "-q"}, {"lz4", "-l", "-c", "-q"}}) {
    INFO(tool[0]);
    std::string bz = fake_bzimage(compress(elf, tool, t), static_cast<std::uint32_t>(elf.size()));
    CHECK(kernel::extract_vmlinux(bz) == elf);
  }
  CHECK(kernel::extract_vmlinux(elf) == elf);  // already an ELF
}

TEST_CASE("broken kernel images are refused with a reason", "[kernel]") {
  test::TempDir t;
  const std::string elf = fake_vmlinux();
  CHECK(test::error_code_of([] { kernel::extract_vmlinux("not a kernel at all, just some text padding it out to length"); }) == "EINVAL");
  std::string packed = compress(elf, {"gzip", "-c"}, t);
  // The appended size disagrees: a short or corrupt payload never passes.
  CHECK(test::error_code_of([&] { kernel::extract_vmlinux(fake_bzimage(packed, 12345)); }) == "EINVAL");
  // Payload not ELF.
  std::string text(5000, 'x');
  CHECK(test::error_code_of([&] { kernel::extract_vmlinux(fake_bzimage(compress(text, {"gzip", "-c"}, t), 5000)); }) == "EINVAL");
  // Payload pointing past the end of the file.
  std::string bz = fake_bzimage(packed, static_cast<std::uint32_t>(elf.size()));
  bz.resize(bz.size() - 10);
  CHECK(test::error_code_of([&] { kernel::extract_vmlinux(bz); }) == "EINVAL");
}

TEST_CASE("module dependencies come from .modinfo, dependencies first", "[kernel]") {
  test::TempDir t;
  kernel::KernelFiles k;
  k.version = "test";
  auto add = [&](const std::string& name, const std::string& deps) { k.modules[name] = fake_module(t, name, deps); };
  add("virtio", "");
  add("virtio_ring", "virtio");
  add("virtio_pci", "virtio_ring,virtio,virtio_pci_modern_dev");
  add("virtio_pci_modern_dev", "");
  add("virtio_mmio", "virtio,virtio_ring");
  add("virtio_blk", "virtio,virtio_ring");
  add("virtio_net", "net_failover,virtio_ring,virtio");
  add("net_failover", "failover");
  add("failover", "");
  add("virtio_console", "virtio,virtio_ring");
  k.builtin = {"ext4"};
  CHECK(kernel::read_modinfo(k.modules["virtio_net"]).depends == std::vector<std::string>{"net_failover", "virtio_ring", "virtio"});
  auto order = kernel::resolve_modules(k);
  auto pos = [&](const std::string& m) { return std::find(order.begin(), order.end(), m) - order.begin(); };
  CHECK(std::set<std::string>(order.begin(), order.end()).size() == order.size());
  CHECK(pos("virtio") < pos("virtio_ring"));
  CHECK(pos("virtio_pci_modern_dev") < pos("virtio_pci"));
  CHECK(pos("failover") < pos("net_failover"));
  CHECK(pos("net_failover") < pos("virtio_net"));
  CHECK(std::find(order.begin(), order.end(), "ext4") == order.end());  // built in

  k.modules.erase("virtio_blk");
  try {
    kernel::resolve_modules(k);
    FAIL("a missing required module must fail");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("virtio_blk") != std::string::npos);
  }
}

TEST_CASE("the initramfs holds busybox, the agent, /init, the modules and a console node", "[kernel]") {
  test::TempDir t;
  std::map<std::string, std::string> mods = {{"virtio", "KO-virtio"}, {"virtio_blk", "KO-blk"}};
  kernel::InitramfsSpec spec;
  spec.modules = {"virtio", "virtio_blk"};
  spec.module_files = &mods;
  CHECK(test::error_code_of([&] { kernel::write_initramfs(t / "initrd.img", spec); }) == "EINVAL");
  spec.agent = t / "no-agent";
  CHECK(test::error_code_of([&] { kernel::write_initramfs(t / "initrd.img", spec); }) == "ENOENT");
  spit(t / "agent", "AGENT-BYTES");
  spec.agent = t / "agent";
  kernel::write_initramfs(t / "initrd.img", spec);

  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_cpio(a.get());
  REQUIRE(archive_read_open_filename(a.get(), (t / "initrd.img").c_str(), 65536) == ARCHIVE_OK);
  std::map<std::string, std::string> files;
  bool console = false;
  archive_entry* e = nullptr;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    if (name == "dev/console") console = archive_entry_filetype(e) == AE_IFCHR && archive_entry_rdevmajor(e) == 5 &&
                                          archive_entry_rdevminor(e) == 1;
    std::string data(static_cast<size_t>(archive_entry_size(e)), '\0');
    if (!data.empty()) archive_read_data(a.get(), data.data(), data.size());
    files[name] = data;
    if (name == "init") CHECK((archive_entry_perm(e) & 0111) != 0);
  }
  CHECK(console);
  CHECK(files.count("bin/busybox"));
  CHECK(files.count("bin/switch_root"));
  CHECK(files["bin/banger-agent"] == "AGENT-BYTES");
  CHECK(files["init"].find("banger-agent --grow-fs") != std::string::npos);
  CHECK(files["init"].rfind("#!/bin/busybox sh", 0) == 0);
  CHECK(files["etc/banger/modules"] == "virtio\nvirtio_blk\n");
  CHECK(files["lib/modules/virtio_blk.ko"] == "KO-blk");
}

TEST_CASE("without busybox the initramfs error names the package", "[kernel]") {
  test::TempDir t;
  kernel::InitramfsSpec spec;
  spec.busybox = t / "no-busybox";
  try {
    kernel::write_initramfs(t / "initrd.img", spec);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == "ENOENT");
    CHECK(std::string(e.what()).ends_with(": install it with 'apt-get install busybox-static'"));
  }
}

TEST_CASE("kernel names cannot escape the catalog", "[kernel][attack]") {
  for (const char* bad : {"../x", "a/b", "..", ".hidden", "-rf", "", "a b", "x\n"})
    CHECK(test::error_code_of([&] { kernel::validate_name(bad); }) == "EINVAL");
  CHECK_NOTHROW(kernel::validate_name("debian-6.1.0_cloud"));
}

TEST_CASE("catalog import is atomic, and list, show and remove work", "[kernel]") {
  test::TempDir t;
  std::string src = t / "src";
  fs::create_directories(src);
  spit(src + "/vmlinuz", fake_bzimage(compress(fake_vmlinux(), {"gzip", "-c"}, t), 4096));
  std::string cat = t / "kernels";
  kernel::ImportOptions o;
  o.source = src;
  o.name = "k1";
  o.kernels_dir = cat;
  o.distro = "test";
  spit(t / "agent", "AGENT-BYTES");
  o.agent = t / "agent";
  auto m = kernel::import_kernel(o);
  CHECK(m["name"] == "k1");
  CHECK(m["arch"] == "x86_64");
  CHECK(m["sha256"].get<std::string>().size() == 64);
  CHECK(slurp(cat + "/k1/vmlinux") == fake_vmlinux());
  CHECK(fs::exists(cat + "/k1/initrd.img"));
  CHECK(kernel::list_kernels(cat).size() == 1);
  CHECK(kernel::show_kernel(cat, "k1")["distro"] == "test");
  CHECK(test::error_code_of([&] { kernel::import_kernel(o); }) == "EEXIST");

  // A failing import leaves nothing behind, not even its temporary directory.
  o.name = "k2";
  o.source = t / "no-such-source";
  CHECK(test::error_code_of([&] { kernel::import_kernel(o); }) == "ENOENT");
  spit(t / "notes.txt", std::string(8192, 'n'));
  o.source = t / "notes.txt";  // a file that is not a kernel
  CHECK(test::error_code_of([&] { kernel::import_kernel(o); }) == "EINVAL");
  std::vector<std::string> entries;
  for (auto& e : fs::directory_iterator(cat)) entries.push_back(e.path().filename().string());
  CHECK(entries == std::vector<std::string>{"k1"});

  // --replace swaps the new directory in (RENAME_EXCHANGE) and removes the old one.
  o.name = "k1";
  o.source = src;
  o.replace = true;
  spit(t / "agent", "AGENT-BYTES-2");
  kernel::import_kernel(o);
  CHECK(slurp(cat + "/k1/initrd.img").find("AGENT-BYTES-2") != std::string::npos);
  entries.clear();
  for (auto& e : fs::directory_iterator(cat)) entries.push_back(e.path().filename().string());
  CHECK(entries == std::vector<std::string>{"k1"});

  kernel::remove_kernel(cat, "k1");
  CHECK(kernel::list_kernels(cat).empty());
  CHECK(test::error_code_of([&] { kernel::remove_kernel(cat, "k1"); }) == "ENOENT");
  CHECK(test::error_code_of([&] { kernel::show_kernel(cat, "../etc"); }) == "EINVAL");
}
