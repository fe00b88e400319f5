#pragma once
// Request body checks in the manner of Firecracker's serde structs: required
// fields, JSON types, integer widths, enum variants and (for the structs that
// have deny_unknown_fields) unknown fields. Messages follow serde's wording
// after Firecracker's prefix, without serde's "at line L column C".
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace fakefc {

enum class Type { string, boolean, u8, u16, u32, u64, object, array };

struct Field {
  std::string name;
  Type type;
  bool required = false;
  std::vector<std::string> variants = {};  // string enums
  bool case_insensitive = false;
};

inline const char* kDeserializePrefix = "An error occurred when deserializing the json body of a request: ";

// Parses `raw` into `out` and checks it. Returns "" when valid, else the
// complete fault message.
std::string check_body(const std::string& raw, const std::vector<Field>& fields, bool deny_unknown,
                       nlohmann::json& out);

// Checks an already parsed JSON object the same way (nested structs).
std::string check_object(const nlohmann::json& obj, const std::vector<Field>& fields, bool deny_unknown);

}  // namespace fakefc
