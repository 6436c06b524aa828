// Reading fields of JSON from the API server, which is parsed, not trusted:
// a missing key or a value of another type reads as empty, never throws
// (nlohmann's value() and operator[] would).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ashiato {

// j[key] when j is an object and the value a string, else "".
inline std::string JsonStringField(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// j[key] when j is an object that has it, else null.
inline const nlohmann::json& JsonField(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

}  // namespace ashiato
