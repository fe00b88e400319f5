#pragma once
// One host session over one byte stream: the handshake, then requests one
// at a time (exec with streamed stdio, put, get, ping, poweroff, reidentify,
// mount), beside any number of `connect` channels.
#include <sys/types.h>

#include <string>

#include "connections.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/guest/protocol.hpp"

namespace banger::agent {

class Session {
 public:
  // `in`/`out` may be the same descriptor (sockets, serial ports).
  Session(int in, int out, bool shared_stream) : in_(in), out_(out), shared_(shared_stream) {}
  // Serves until the stream ends (sockets) or forever (a serial port, where
  // the host may reconnect any time).
  void run();

 private:
  void handle(const guest::Frame& f);
  void send(guest::FrameType t, std::uint32_t ch, std::string_view payload);
  void send_json(guest::FrameType t, std::uint32_t ch, const nlohmann::json& j);
  void send_error(std::uint32_t ch, const std::string& code, const std::string& msg);
  bool pump_input(int timeout_ms);  // false at end of stream
  void start_exec(const guest::Frame& f);
  void poll_exec();
  void finish_put(std::uint32_t ch);
  void do_get(const guest::Frame& f);
  void do_reidentify(const guest::Frame& f);
  void abort_exec();

  int in_, out_;
  bool shared_;
  guest::FrameReader reader_;
  std::string session_;
  bool greeted_ = false;

  // The running command, if any.
  pid_t child_ = -1;
  std::uint32_t exec_ch_ = 0;
  UniqueFd child_in_, child_out_, child_err_;
  int exit_status_ = -1;
  long long exited_at_ms_ = 0;

  // A put in progress.
  std::uint32_t put_ch_ = 0;
  UniqueFd put_fd_;
  std::string put_tmp_, put_path_;
  nlohmann::json put_meta_;

  Connections conns_{[this](guest::FrameType t, std::uint32_t ch, std::string_view p) { send(t, ch, p); }};
};

std::string agent_version();

}  // namespace banger::agent
