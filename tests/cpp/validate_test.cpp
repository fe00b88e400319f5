#include <catch2/catch.hpp>

#include "engine/core/error.hpp"
#include "engine/priv/validate.hpp"
#include "test_util.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace v = banger::validate;

namespace {
bool rejects(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const banger::Error& e) {
    return e.code() == "EINVAL";
  }
  return false;
}
}  // namespace

TEST_CASE("bridge names: only banger's own", "[validate][attack]") {
  CHECK_NOTHROW(v::bridge_name("br-fc"));
  CHECK_NOTHROW(v::bridge_name("br-fc-lab2"));
  for (const char* bad : {"eth0", "docker0", "lo", "br-fcx", "br-fc-", "br-fc-UP", "br-fc-a/b", "br-fc-0123456789", ""})
    CHECK(rejects([&] { v::bridge_name(bad); }));
}

TEST_CASE("tap names: banger prefix only", "[validate][attack]") {
  CHECK_NOTHROW(v::tap_name("bgtap0a1b2c3d"));
  for (const char* bad : {"eth0", "tap0", "bgtap", "bgtap-x", "bgtap0123456789ab", "bgtapA"})
    CHECK(rejects([&] { v::tap_name(bad); }));
}

TEST_CASE("home tags: 16 lowercase hex digits, nothing an alias could smuggle", "[validate][attack]") {
  CHECK_NOTHROW(v::home_tag("0123456789abcdef"));
  for (const char* bad : {"", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "0123456789abcdeg",
                          "01234567 9abcdef", "0123456789abcde\n"})
    CHECK(rejects([&] { v::home_tag(bad); }));
}

TEST_CASE("IPv4 and CIDR prefixes", "[validate][attack]") {
  CHECK(v::ipv4("172.30.0.1") == 0xac1e0001u);
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "fe80::1", "01.2.3.4x", " 1.2.3.4"})
    CHECK(rejects([&] { v::ipv4(bad); }));
  CHECK(v::cidr_prefix(8) == 8);
  CHECK(v::cidr_prefix(32) == 32);
  CHECK(rejects([] { v::cidr_prefix(4); }));
  CHECK(rejects([] { v::cidr_prefix(64); }));
}

TEST_CASE("host and bridge addresses: no address an interface cannot use", "[validate][attack]") {
  CHECK(v::unicast_ipv4("10.1.2.3") == 0x0a010203u);
  for (const char* bad : {"0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.0.9", "224.0.0.1", "239.255.255.250",
                          "240.0.0.1", "255.255.255.255"})
    CHECK(rejects([&] { v::unicast_ipv4(bad); }));
  CHECK(v::bridge_address("172.30.0.1", 24) == 0xac1e0001u);
  CHECK(v::bridge_address("172.30.0.254", 24) == 0xac1e00feu);
  CHECK(v::bridge_address("10.0.0.0", 31) == 0x0a000000u);  // RFC 3021: both /31 addresses are hosts
  CHECK_NOTHROW(v::bridge_address("10.0.0.1", 31));
  for (const char* bad : {"0.0.0.0", "127.0.0.1", "255.255.255.255", "224.0.0.1", "172.30.0.0", "172.30.0.255"})
    CHECK(rejects([&] { v::bridge_address(bad, 24); }));
  CHECK(rejects([] { v::bridge_address("10.255.255.255", 8); }));
  CHECK(rejects([] { v::bridge_address("10.20.0.0", 16); }));
  CHECK(rejects([] { v::bridge_address("10.0.0.4", 30); }));
  CHECK(rejects([] { v::bridge_address("10.0.0.7", 30); }));
  CHECK_NOTHROW(v::bridge_address("10.0.0.5", 30));
  CHECK(rejects([] { v::bridge_address("10.0.0.1", 32); }));
  CHECK(rejects([] { v::bridge_address("10.0.0.1", 4); }));
  CHECK_THROWS_WITH(v::bridge_address("172.30.0.255", 24), Catch::Matchers::Contains("broadcast address"));
  CHECK_THROWS_WITH(v::bridge_address("172.30.0.0", 24), Catch::Matchers::Contains("network's own address"));
  CHECK_THROWS_WITH(v::bridge_address("127.0.0.1", 24), Catch::Matchers::Contains("loopback"));
}

TEST_CASE("VM names are DNS labels", "[validate]") {
  CHECK_NOTHROW(v::vm_name("devbox-1"));
  for (const char* bad : {"", "1box", "Box", "box-", "a_b", "a.b", "../x",
                          "a23456789012345678901234567890123456789012345678901234567890123x"})
    CHECK(rejects([&] { v::vm_name(bad); }));
}

TEST_CASE("binaries root runs: root-owned regular files nobody else can write, never symlinks", "[validate][attack]") {
  banger::test::TempDir tmp;
  auto make = [&](const std::string& name, mode_t mode, uid_t uid) {
    std::string p = tmp / name;
    FILE* f = std::fopen(p.c_str(), "w");
    std::fputs("#!/bin/sh\n", f);
    std::fclose(f);
    REQUIRE(::chmod(p.c_str(), mode) == 0);
    REQUIRE(::chown(p.c_str(), uid, uid) == 0);
    return p;
  };
  auto code = [](const std::string& p) {
    return banger::test::error_code_of([&] { banger::validate::root_executable(p); });
  };
  CHECK(code(make("good", 0755, 0)).empty());
  CHECK(code(make("group-writable", 0775, 0)) == "EPERM");
  CHECK(code(make("world-writable", 0757, 0)) == "EPERM");
  CHECK(code(make("users", 0755, banger::test::kNobody)) == "EPERM");
  CHECK(code(make("not-exec", 0644, 0)) == "EPERM");
  REQUIRE(::symlink((tmp / "good").c_str(), (tmp / "link").c_str()) == 0);
  CHECK(code(tmp / "link") == "EPERM");
  CHECK(code(tmp.path()) == "EPERM");  // a directory
  CHECK(code("relative/banger-helper") == "EPERM");
  CHECK(code(tmp / "missing") == "ENOENT");
}
