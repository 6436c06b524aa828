#include "aggregator/log_text.h"

#include <nlohmann/json.hpp>

namespace ashiato {
namespace {

using nlohmann::json;

// As is when it is one plain word, else a JSON string.
void AppendValue(const std::string& v, std::string* out) {
  bool plain = !v.empty();
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f || c >= 0x80) plain = false;
  }
  if (plain) {
    *out += v;
  } else {
    *out += json(v).dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void AppendField(const char* key, const std::string& v, std::string* out) {
  if (v.empty()) return;
  *out += ' ';
  *out += key;
  *out += '=';
  AppendValue(v, out);
}

}  // namespace

std::string UnifiedLogTextLine(int64_t id, const std::string& cluster, const std::string& line) {
  json j = json::parse(line, nullptr, false);
  std::string out;
  if (!j.is_object()) {
    out = "unreadable line id=" + std::to_string(id) + "\n";
    return out;
  }
  AppendValue(Str(j, "timestamp"), &out);
  out += ' ';
  AppendValue(Str(j, "event"), &out);
  out += ' ';
  AppendValue(Str(j, "namespace") + "/" + Str(j, "pod_name"), &out);
  AppendField("node", Str(j, "node_name"), &out);
  AppendField("ip", Str(j, "pod_ip"), &out);
  AppendField("phase", Str(j, "phase"), &out);
  std::string images;
  auto containers = j.find("containers");
  if (containers != j.end() && containers->is_array()) {
    for (const auto& c : *containers) {
      if (!c.is_object()) continue;
      std::string image = Str(c, "image");
      if (!image.empty()) images += (images.empty() ? "" : ",") + image;
    }
  }
  AppendField("images", images, &out);
  AppendField("image", Str(j, "image"), &out);  // IMAGE_ADDED / IMAGE_REMOVED.
  AppendField("digest", Str(j, "digest"), &out);
  AppendField("cluster", cluster, &out);
  out += " id=" + std::to_string(id) + "\n";
  return out;
}

}  // namespace ashiato
