// ConfigMap keys and values of the hourly pod→node map (docs/configmaps.md).
//
// Key:   "namespace_podname" whenever that is a valid ConfigMap key (the
//        usual case: both parts are DNS-1123 names, so they never contain '_'
//        and the key has exactly one '_'). Otherwise (longer than 253 bytes, or
//        characters outside [-._a-zA-Z0-9]) a fallback key
//        "<sanitised prefix>__<32 hex of SHA-256(namespace/name)>", which
//        contains "__" and so can never equal a plain key.
// Value: the nodes the pod ran on during the hour, newest first, comma
//        separated ("node-b,node-a"); for a fallback key followed by
//        "|namespace/name", so the full name is never lost.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ashiato {

// Longest ConfigMap key the API server accepts.
inline constexpr size_t kMaxConfigMapKeyBytes = 253;

// Returns true iff `key` passes the API server's ConfigMap key validation
// ([-._a-zA-Z0-9]+, at most 253 bytes, not "." or ".." nor starting with "..").
bool IsValidConfigMapKey(std::string_view key);

struct PodKey {
  std::string key;        // The ConfigMap key.
  std::string full_name;  // "namespace/name" when `key` is a fallback, else "".
  bool fallback() const { return !full_name.empty(); }
};

// Maps a pod to its ConfigMap key. Deterministic and collision-free: distinct
// (namespace, name) pairs give distinct keys (fallbacks up to SHA-256/128).
PodKey MakePodKey(std::string_view ns, std::string_view name);

// A decoded value.
struct NodeList {
  std::vector<std::string> nodes;  // Newest first, no duplicates.
  std::string full_name;           // "namespace/name" for fallback keys, else "".
};

NodeList ParseValue(std::string_view value);
std::string FormatValue(const NodeList& list);

// Returns `value` with `node` moved (or added) to the front. `full_name` is
// recorded when non-empty. Node names are DNS names; any ',' or '|' in one
// is replaced by '_' so the value stays parseable.
std::string AddNodeToValue(std::string_view value, std::string_view node,
                           std::string_view full_name);

// Returns true iff the pod name in `key` ends in the 5-character random
// suffix the API server's generateName appends ("-" + 5 of
// "bcdfghjklmnpqrstvwxz2456789"): Deployment/ReplicaSet, DaemonSet and Job
// pods. Such a name is never reused and a pod never changes node, so its
// value is final once written in an hour. StatefulSet pods ("db-0") and other
// fixed names may come back on another node. A placement hint only.
bool KeyHasGeneratedName(std::string_view key);

// Union of two values of the same key: the nodes of `ours` in order, then
// those only in `theirs`. Never drops a node.
std::string MergeValues(std::string_view ours, std::string_view theirs);

}  // namespace ashiato
