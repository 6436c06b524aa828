// PodStore: the agent's view of its node, keyed by pod UID, and the change
// detection that turns list results and watch events into the events users
// see (SYNC, CREATED, UPDATED, DELETED). Not thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/pod_record.h"

namespace ashiato {

struct PodChange {
  std::string event;  // "SYNC", "CREATED", "UPDATED", "DELETED".
  PodRecord record;   // New state; for DELETED the last known state.
};

class PodStore {
 public:
  // Replaces the view with a list result. `initial`: the first list since
  // start, whose pods are SYNC rather than CREATED. Pods missing from `pods`
  // are DELETED. Changes come deletions first, then by namespace/name.
  std::vector<PodChange> Replace(const std::vector<PodRecord>& pods, bool initial);

  // Applies one watch event ("ADDED", "MODIFIED", "DELETED"). Returns the
  // change to emit, or nothing when no observable field changed (e.g. a
  // bare resourceVersion bump, or a DELETED for a pod we never had).
  std::optional<PodChange> Apply(const std::string& type, const PodRecord& pod);

  // Every pod, ordered by namespace/name.
  std::vector<PodRecord> All() const;
  size_t size() const { return pods_.size(); }

 private:
  std::map<std::string, PodRecord> pods_;  // By UID.
};

}  // namespace ashiato
