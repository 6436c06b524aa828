#include "aggregator/cm_key.h"

#include <algorithm>

#include "common/sha256.h"

namespace ashiato {

namespace {

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

// Namespace and pod names are DNS-1123, so '_' never occurs in them; a name
// that has one (or anything else odd) takes the fallback path.
bool IsPlainPart(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsKeyChar(c) && c != '_'; });
}

std::string SanitizeNode(std::string_view node) {
  std::string out(node);
  for (char& c : out) {
    if (c == ',' || c == '|') c = '_';
  }
  return out;
}

}  // namespace

bool IsValidConfigMapKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxConfigMapKeyBytes) return false;
  if (!std::all_of(key.begin(), key.end(), IsKeyChar)) return false;
  if (key == "." || key == ".." || key.substr(0, 2) == "..") return false;
  return true;
}

bool KeyHasGeneratedName(std::string_view key) {
  // k8s.io/apimachinery/pkg/util/rand: no vowels, no 0, 1 or 3.
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  constexpr size_t kSuffix = 5;
  if (key.size() <= kSuffix + 1 || key[key.size() - kSuffix - 1] != '-') return false;
  std::string_view suffix = key.substr(key.size() - kSuffix);
  return std::all_of(suffix.begin(), suffix.end(),
                     [](char c) { return kAlphabet.find(c) != std::string_view::npos; });
}

PodKey MakePodKey(std::string_view ns, std::string_view name) {
  PodKey out;
  if (IsPlainPart(ns) && IsPlainPart(name)) {
    out.key.reserve(ns.size() + 1 + name.size());
    out.key.append(ns).append("_").append(name);
    if (IsValidConfigMapKey(out.key)) return out;
  }
  // Fallback: readable prefix + "__" + 128 bits of SHA-256 of "ns/name".
  out.full_name.append(ns).append("/").append(name);
  constexpr size_t kHashHex = 32;
  constexpr size_t kPrefixMax = kMaxConfigMapKeyBytes - 2 - kHashHex;
  std::string prefix;
  prefix.append(ns).append("_").append(name);
  if (prefix.size() > kPrefixMax) prefix.resize(kPrefixMax);
  for (char& c : prefix) {
    if (!IsKeyChar(c)) c = '-';
  }
  // Never start with "..", never contain "__" before the hash (readers split
  // at the last "__").
  if (!prefix.empty() && prefix[0] == '.') prefix[0] = '-';
  for (size_t i = 1; i < prefix.size(); ++i) {
    if (prefix[i] == '_' && prefix[i - 1] == '_') prefix[i] = '-';
  }
  if (!prefix.empty() && prefix.back() == '_') prefix.back() = '-';
  out.key = prefix + "__" + Sha256Hex(out.full_name).substr(0, kHashHex);
  return out;
}

NodeList ParseValue(std::string_view value) {
  NodeList out;
  size_t bar = value.find('|');
  std::string_view nodes = value.substr(0, bar);
  if (bar != std::string_view::npos) out.full_name = std::string(value.substr(bar + 1));
  size_t start = 0;
  while (start <= nodes.size()) {
    size_t comma = nodes.find(',', start);
    if (comma == std::string_view::npos) comma = nodes.size();
    std::string_view n = nodes.substr(start, comma - start);
    if (!n.empty() && std::find(out.nodes.begin(), out.nodes.end(), n) == out.nodes.end()) {
      out.nodes.emplace_back(n);
    }
    start = comma + 1;
  }
  return out;
}

std::string FormatValue(const NodeList& list) {
  std::string out;
  for (size_t i = 0; i < list.nodes.size(); ++i) {
    if (i) out += ',';
    out += list.nodes[i];
  }
  if (!list.full_name.empty()) out.append("|").append(list.full_name);
  return out;
}

std::string AddNodeToValue(std::string_view value, std::string_view node,
                           std::string_view full_name) {
  std::string n = SanitizeNode(node);
  // Fast path: already the newest node.
  if (!value.empty() && value.substr(0, n.size()) == n &&
      (value.size() == n.size() || value[n.size()] == ',' || value[n.size()] == '|') &&
      (full_name.empty() ||
       (value.find('|') != std::string_view::npos && value.find('|') + 1 < value.size()))) {
    return std::string(value);
  }
  NodeList list = ParseValue(value);
  auto it = std::find(list.nodes.begin(), list.nodes.end(), n);
  if (it != list.nodes.end()) list.nodes.erase(it);
  if (!n.empty()) list.nodes.insert(list.nodes.begin(), n);
  if (!full_name.empty()) list.full_name = std::string(full_name);
  return FormatValue(list);
}

std::string MergeValues(std::string_view ours, std::string_view theirs) {
  if (ours == theirs) return std::string(ours);
  NodeList a = ParseValue(ours);
  NodeList b = ParseValue(theirs);
  for (auto& n : b.nodes) {
    if (std::find(a.nodes.begin(), a.nodes.end(), n) == a.nodes.end()) a.nodes.push_back(n);
  }
  if (a.full_name.empty()) a.full_name = b.full_name;
  return FormatValue(a);
}

}  // namespace ashiato
