#include "schema.hpp"

#include <algorithm>
#include <cctype>

namespace fakefc {
namespace {

using nlohmann::json;

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::string: return "string " + v.dump();
    case json::value_t::boolean: return "boolean `" + v.dump() + "`";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer `" + v.dump() + "`";
    case json::value_t::number_float: return "floating point `" + v.dump() + "`";
    case json::value_t::null: return "null";
    case json::value_t::object: return "map";
    case json::value_t::array: return "sequence";
    default: return "value";
  }
}

std::string expected(Type t) {
  switch (t) {
    case Type::string: return "a string";
    case Type::boolean: return "a boolean";
    case Type::u8: return "u8";
    case Type::u16: return "u16";
    case Type::u32: return "u32";
    case Type::u64: return "usize";
    case Type::object: return "struct";
    case Type::array: return "a sequence";
  }
  return "value";
}

unsigned long long max_of(Type t) {
  switch (t) {
    case Type::u8: return 0xff;
    case Type::u16: return 0xffff;
    case Type::u32: return 0xffffffffULL;
    default: return ~0ULL;
  }
}

std::string one_of(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", `" : "`") + names[i] + "`";
  return names.size() == 1 ? s : "one of " + s;
}

bool equal_ci(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

std::string check_value(const Field& f, const json& v) {
  bool integer = v.is_number_integer();
  switch (f.type) {
    case Type::string:
      if (!v.is_string()) return "invalid type: " + describe(v) + ", expected a string";
      if (!f.variants.empty()) {
        std::string s = v.get<std::string>();
        bool ok = std::any_of(f.variants.begin(), f.variants.end(), [&](const std::string& x) {
          return f.case_insensitive ? equal_ci(x, s) : x == s;
        });
        if (!ok) return "unknown variant `" + s + "`, expected " + one_of(f.variants);
      }
      return {};
    case Type::boolean:
      return v.is_boolean() ? std::string() : "invalid type: " + describe(v) + ", expected a boolean";
    case Type::u8:
    case Type::u16:
    case Type::u32:
    case Type::u64:
      if (!integer) return "invalid type: " + describe(v) + ", expected " + expected(f.type);
      if (v.is_number_integer() && !v.is_number_unsigned() && v.get<long long>() < 0) {
        return "invalid value: " + describe(v) + ", expected " + expected(f.type);
      }
      if (v.get<unsigned long long>() > max_of(f.type)) return "invalid value: " + describe(v) + ", expected " + expected(f.type);
      return {};
    case Type::object:
      return v.is_object() ? std::string() : "invalid type: " + describe(v) + ", expected struct";
    case Type::array:
      return v.is_array() ? std::string() : "invalid type: " + describe(v) + ", expected a sequence";
  }
  return {};
}

}  // namespace

std::string check_object(const json& obj, const std::vector<Field>& fields, bool deny_unknown) {
  if (!obj.is_object()) return "invalid type: " + describe(obj) + ", expected struct";
  if (deny_unknown) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      bool known = std::any_of(fields.begin(), fields.end(), [&](const Field& f) { return f.name == it.key(); });
      if (!known) {
        std::vector<std::string> names;
        for (const auto& f : fields) names.push_back(f.name);
        return "unknown field `" + it.key() + "`, expected " + one_of(names);
      }
    }
  }
  for (const auto& f : fields) {
    if (!obj.contains(f.name)) {
      if (f.required) return "missing field `" + f.name + "`";
      continue;
    }
    const json& v = obj.at(f.name);
    if (v.is_null() && !f.required) continue;  // Option<T> takes null
    if (std::string e = check_value(f, v); !e.empty()) return e;
  }
  return {};
}

std::string check_body(const std::string& raw, const std::vector<Field>& fields, bool deny_unknown, json& out) {
  out = json::parse(raw, nullptr, false);
  if (out.is_discarded()) return std::string(kDeserializePrefix) + "expected value (the body is not valid JSON).";
  std::string e = check_object(out, fields, deny_unknown);
  return e.empty() ? e : kDeserializePrefix + e + ".";
}

}  // namespace fakefc
