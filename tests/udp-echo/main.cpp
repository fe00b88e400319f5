// udp-echo: a UDP peer for the port-forwarding end-to-end test, static so it
// runs in the busybox guest (busybox's nc there has no UDP).
//   udp-echo serve PORT           answer every datagram with "echo:" + it
//   udp-echo send IP PORT TEXT    send TEXT, print the one reply (5 s timeout)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int usage() {
  std::fprintf(stderr, "usage: udp-echo serve PORT | udp-echo send IP PORT TEXT\n");
  return 2;
}

sockaddr_in address(const char* ip, const char* port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::atoi(port)));
  if (::inet_pton(AF_INET, ip, &a.sin_addr) != 1) std::exit(usage());
  return a;
}

int serve(const char* port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = address("0.0.0.0", port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("bind");
    return 1;
  }
  char buf[65536];
  for (;;) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) continue;
    std::string reply = "echo:" + std::string(buf, static_cast<std::size_t>(n));
    ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
  }
}

int send(const char* ip, const char* port, const char* text) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = address(ip, port);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::sendto(fd, text, std::strlen(text), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    std::perror("sendto");
    return 1;
  }
  char buf[65536];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  if (n < 0) {
    std::perror("recv");
    return 1;
  }
  std::fwrite(buf, 1, static_cast<std::size_t>(n), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "serve") == 0) return serve(argv[2]);
  if (argc == 5 && std::strcmp(argv[1], "send") == 0) return send(argv[2], argv[3], argv[4]);
  return usage();
}
