// The hourly ConfigMaps' key and value codec (aggregator/cm_key.h): values
// are read back from the API server (restart, merge with what another
// writer left), so they are outside input.
//
// Input: newline-separated fields: namespace, name, value, node, full name,
// another value.
//
// Invariants: MakePodKey gives a valid ConfigMap key; a plain key has no
// "__", a fallback key ends in "__" + 32 hex digits and keeps the full name;
// FormatValue∘ParseValue is a fixpoint; AddNodeToValue puts the node first
// and keeps every other node; MergeValues keeps every node of both sides.
#include <algorithm>
#include <vector>

#include "aggregator/cm_key.h"
#include "tests/fuzz/fuzz.h"

namespace {

bool SameList(const ashiato::NodeList& a, const ashiato::NodeList& b) {
  return a.nodes == b.nodes && a.full_name == b.full_name;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string Sanitized(std::string_view node) {
  std::string out(node);
  std::replace(out.begin(), out.end(), ',', '_');
  std::replace(out.begin(), out.end(), '|', '_');
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ashiato;
  std::string_view in = fuzz::AsText(data, size);
  std::string_view ns = fuzz::SplitOnce(&in, '\n');
  std::string_view name = fuzz::SplitOnce(&in, '\n');
  std::string_view value = fuzz::SplitOnce(&in, '\n');
  std::string_view node = fuzz::SplitOnce(&in, '\n');
  std::string_view full_name = fuzz::SplitOnce(&in, '\n');
  std::string_view theirs = in;

  // Keys.
  PodKey key = MakePodKey(ns, name);
  FUZZ_CHECK(IsValidConfigMapKey(key.key), "invalid key " + key.key);
  if (key.fallback()) {
    FUZZ_CHECK(key.full_name == std::string(ns) + "/" + std::string(name), key.full_name);
    size_t p = key.key.rfind("__");
    FUZZ_CHECK(p != std::string::npos && key.key.size() - p - 2 == 32, "fallback key " + key.key);
    FUZZ_CHECK(key.key.find("__") == p, "fallback prefix holds \"__\": " + key.key);
    FUZZ_CHECK(std::all_of(key.key.begin() + p + 2, key.key.end(),
                           [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }),
               "fallback hash " + key.key);
  } else {
    FUZZ_CHECK(key.key == std::string(ns) + "_" + std::string(name), key.key);
    FUZZ_CHECK(key.key.find("__") == std::string::npos, "plain key with \"__\": " + key.key);
  }
  FUZZ_CHECK(MakePodKey(ns, name).key == key.key, "MakePodKey is not deterministic");

  // Values.
  NodeList list = ParseValue(value);
  for (const auto& n : list.nodes) {
    FUZZ_CHECK(!n.empty() && n.find_first_of(",|") == std::string::npos, "node " + n);
  }
  std::string formatted = FormatValue(list);
  FUZZ_CHECK(SameList(ParseValue(formatted), list), "ParseValue(FormatValue(x)) != x");
  FUZZ_CHECK(FormatValue(ParseValue(formatted)) == formatted, "FormatValue is not a fixpoint");

  std::string added = AddNodeToValue(value, node, full_name);
  NodeList after = ParseValue(added);
  std::string n = Sanitized(node);
  if (!n.empty()) FUZZ_CHECK(!after.nodes.empty() && after.nodes[0] == n, "node not first");
  for (const auto& old : list.nodes) FUZZ_CHECK(Contains(after.nodes, old), "lost node " + old);
  FUZZ_CHECK(after.nodes.size() <= list.nodes.size() + 1, "AddNodeToValue added too much");
  if (!full_name.empty()) FUZZ_CHECK(!after.full_name.empty(), "full name not recorded");
  if (full_name.empty()) FUZZ_CHECK(after.full_name == list.full_name, "full name changed");

  std::string merged = MergeValues(value, theirs);
  NodeList m = ParseValue(merged);
  NodeList other = ParseValue(theirs);
  FUZZ_CHECK(m.nodes.size() >= list.nodes.size() &&
                 std::equal(list.nodes.begin(), list.nodes.end(), m.nodes.begin()),
             "MergeValues reordered ours");
  for (const auto& o : other.nodes) FUZZ_CHECK(Contains(m.nodes, o), "merge lost " + o);
  FUZZ_CHECK(m.nodes.size() <= list.nodes.size() + other.nodes.size(), "merge invented nodes");
  if (!list.full_name.empty()) FUZZ_CHECK(m.full_name == list.full_name, "merge full name");
  return 0;
}
