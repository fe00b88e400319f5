#pragma once
// Makes a restored VM a new machine (docs/agent-protocol.md, "reidentify"):
// clock, kernel RNG, machine-id, hostname, network, resolvers and SSH host
// keys, in that order, each step named in its error.
#include <nlohmann/json.hpp>

#include <string>

#include "engine/core/error.hpp"
#include "engine/guest/requests.hpp"

namespace banger::agent {

class StepError : public Error {
 public:
  StepError(std::string step, const Error& cause)
      : Error(cause.code(), "reidentify step '" + step + "' failed: " + cause.what()), step_(std::move(step)) {}
  const std::string& step() const noexcept { return step_; }

 private:
  std::string step_;
};

// Applies `r` and returns the reply {ssh_host_keys, took_ms, repeated,
// steps_ms = {clock = ms, ...}}. The
// generation applied last is kept in /run (a restore brings back the /run
// of its snapshot, whose generation differs): a repeat of it changes
// nothing and returns the first reply with repeated = true. Throws
// StepError; a failed request records nothing, so it may be retried.
nlohmann::json reidentify(const guest::ReidentifyRequest& r);

}  // namespace banger::agent
