#include "engine/priv/wire.hpp"

#include "engine/core/error.hpp"

namespace banger::priv {

using nlohmann::json;

std::string encode_request(std::string_view op, const json& params) {
  return json{{"op", op}, {"params", params}}.dump() + "\n";
}

std::string encode_ok(const json& result) { return json{{"ok", result}}.dump() + "\n"; }

std::string encode_error(std::string_view code, std::string_view message) {
  // Replace invalid UTF-8 rather than throw: messages may quote user input.
  return json{{"error", {{"code", code}, {"message", message}}}}.dump(-1, ' ', false,
                                                                      json::error_handler_t::replace) +
         "\n";
}

json decode_response(const std::string& line) {
  json r = json::parse(line, nullptr, false);
  if (r.is_discarded() || !r.is_object()) throw Error("EPROTO", "the root helper sent a malformed response");
  if (r.contains("ok")) return r["ok"];
  if (r.contains("error") && r["error"].is_object()) {
    const auto& e = r["error"];
    throw Error(e.value("code", "EPROTO"), "root helper: " + e.value("message", "unknown error"));
  }
  throw Error("EPROTO", "the root helper sent a response without a result or an error");
}

}  // namespace banger::priv
