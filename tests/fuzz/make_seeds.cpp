// Writes the seed corpus for populate_fuzz into a directory: small layer
// pairs (plain, gzip, zstd) that reach the interesting parts of the layer
// path, so the fuzzer starts from valid archives instead of guessing tar.
// Built and run at test time: no binary seeds live in the repository.
//   make_fuzz_seeds <dir>
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

// The tables below list only the fields that matter for each entry.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace {

struct E {
  std::string path;
  char type = 'f';   // f file, d dir, l symlink, h hardlink, c char device, p fifo
  std::string data;  // content or link target
  unsigned mode = 0644, uid = 0;
  std::string xattr;  // a security.capability value, when set
};

std::string tar(const std::vector<E>& entries, const std::string& filter, bool gnu = false) {
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
  if (gnu) {
    archive_write_set_format_gnutar(a.get());
  } else {
    archive_write_set_format_pax_restricted(a.get());
  }
  if (filter == "gzip") archive_write_add_filter_gzip(a.get());
  if (filter == "zstd") archive_write_add_filter_zstd(a.get());
  std::vector<char> buf(1 << 20);
  size_t used = 0;
  if (archive_write_open_memory(a.get(), buf.data(), buf.size(), &used) != ARCHIVE_OK) std::abort();
  for (const E& en : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, en.path.c_str());
    archive_entry_set_uid(e, en.uid);
    archive_entry_set_gid(e, en.uid);
    archive_entry_set_perm(e, en.mode);
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (en.type) {
      case 'f':
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(en.data.size()));
        break;
      case 'd': archive_entry_set_filetype(e, AE_IFDIR); break;
      case 'l': archive_entry_set_filetype(e, AE_IFLNK); archive_entry_set_symlink(e, en.data.c_str()); break;
      case 'h': archive_entry_set_filetype(e, AE_IFREG); archive_entry_set_hardlink(e, en.data.c_str()); break;
      case 'c': archive_entry_set_filetype(e, AE_IFCHR); archive_entry_set_rdev(e, makedev(1, 3)); break;
      case 'p': archive_entry_set_filetype(e, AE_IFIFO); break;
    }
    if (!en.xattr.empty()) archive_entry_xattr_add_entry(e, "security.capability", en.xattr.data(), en.xattr.size());
    archive_write_header(a.get(), e);
    if (en.type == 'f' && !en.data.empty()) archive_write_data(a.get(), en.data.data(), en.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a.get());
  return std::string(buf.data(), used);
}

// The first header of a plain tar made to claim a size of 8 GiB - 1.
std::string claim_huge(std::string t) {
  std::snprintf(t.data() + 124, 12, "%011llo", (1ull << 33) - 1);
  std::memset(t.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(t[static_cast<size_t>(i)]);
  std::snprintf(t.data() + 148, 8, "%06o", sum);
  return t;
}

void seed(const std::string& dir, const std::string& name, const std::string& l1, const std::string& l2 = {}) {
  if (l1.size() > 0xffff) std::abort();
  std::string out;
  out += static_cast<char>(l1.size() & 0xff);
  out += static_cast<char>(l1.size() >> 8);
  out += l1 + l2;
  std::ofstream(dir + "/" + name, std::ios::binary) << out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds <dir>\n");
    return 2;
  }
  std::string dir = argv[1];
  ::mkdir(dir.c_str(), 0755);
  std::string cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  std::vector<E> base = {
      {"./usr", 'd', "", 0755},
      {"./usr/bin", 'd', "", 0755},
      {"./usr/bin/tool", 'f', "#!/bin/sh\necho tool\n", 04755},
      {"./usr/bin/ping", 'f', "ping", 0755, 0, cap},
      {"./bin", 'l', "usr/bin", 0777},
      {"./home/u", 'd', "", 0700, 1000},
      {"./home/u/notes", 'f', std::string(5000, 'n'), 0600, 1000},
      {"./usr/bin/tool2", 'h', "usr/bin/tool"},
      {"./dev/null", 'c', "", 0666},
      {"./run/fifo", 'p', "", 0600},
      {"./etc/gone", 'f', "x"},
      {"./opt/old/file", 'f', "old"},
  };
  std::vector<E> upper = {
      {"./etc/.wh.gone", 'f'},
      {"./opt/old/.wh..wh..opq", 'f'},
      {"./opt/old/new", 'f', "new"},
      {"./bin/via-link", 'f', "lands in usr/bin"},
      {"./home/u", 'f', "a file replaces a directory"},
      {"./usr/bin/tool", 'd'},
      {"./usr/bin/tool3", 'h', "usr/bin/ping"},
  };
  for (std::string f : {"none", "gzip", "zstd"}) seed(dir, "layers-" + f, tar(base, f), tar(upper, f));
  seed(dir, "gnutar-longname", tar({{std::string(200, 'a') + "/" + std::string(150, 'b'), 'f', "long"}}, "none", true));
  seed(dir, "pax-longlink", tar({{"d/l", 'l', std::string(300, 'x')}}, "gzip"));
  seed(dir, "two-gzip-members", tar({{"a", 'f', "1"}}, "gzip") + tar({{"b", 'f', "2"}}, "gzip"));
  // Hostile shapes populate must refuse.
  seed(dir, "dotdot", tar({{"../etc/passwd", 'f', "x"}}, "none"));
  seed(dir, "absolute", tar({{"/etc/passwd", 'f', "x"}}, "none"));
  seed(dir, "escape-then-write", tar({{"evil", 'l', "../../etc"}, {"evil/passwd", 'f', "x"}}, "none"));
  seed(dir, "hardlink-outside", tar({{"h", 'h', "../../etc/shadow"}}, "none"), tar({{"h2", 'h', "missing"}}, "none"));
  seed(dir, "huge-declared", claim_huge(tar({{"big", 'f', "tiny"}}, "none")));
  seed(dir, "whiteout-only", tar({{".wh..wh..opq", 'f'}, {"x/.wh.y", 'f'}, {".wh.", 'f'}}, "none"));
  seed(dir, "empty", "");
  return 0;
}
