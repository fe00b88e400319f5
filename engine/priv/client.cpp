#include "engine/priv/client.hpp"

#include <unistd.h>

#include "engine/core/error.hpp"
#include "engine/core/unix_socket.hpp"
#include "engine/priv/wire.hpp"

namespace banger::priv {

nlohmann::json call_helper(const std::string& socket, std::string_view op, const nlohmann::json& params,
                           UniqueFd* fd_out, const std::vector<int>& send) {
  UniqueFd fd;
  try {
    fd = net_unix::connect(socket, std::chrono::milliseconds(0));
  } catch (const Error& e) {
    // What to do next is the caller's to say: `system status` itself is one.
    throw Error(e.code(), "cannot reach the root helper at " + socket + " (" + e.what() + ")");
  }
  try {
    send_line(fd.get(), encode_request(op, params), send);
  } catch (const Error&) {
    // The helper may have refused us (SO_PEERCRED) and closed before our
    // request went out: its answer is still waiting to be read.
  }
  // Operations are short (netlink, nftables); a minute covers a helper
  // waiting on the xtables lock.
  std::string buffer;
  std::vector<UniqueFd> passed;
  auto line = recv_line(fd.get(), buffer, passed, std::chrono::steady_clock::now() + std::chrono::seconds(60));
  fd.reset();
  auto result = decode_response(line);
  if (fd_out && !passed.empty()) *fd_out = std::move(passed.front());
  return result;
}

}  // namespace banger::priv
