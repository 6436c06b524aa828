#include "agent/pod_store.h"

#include <algorithm>
#include <set>

namespace ashiato {

namespace {

bool ByKey(const PodChange& a, const PodChange& b) {
  if (a.record.namespace_ != b.record.namespace_) return a.record.namespace_ < b.record.namespace_;
  if (a.record.name != b.record.name) return a.record.name < b.record.name;
  return a.record.uid < b.record.uid;
}

}  // namespace

std::vector<PodChange> PodStore::Replace(const std::vector<PodRecord>& pods, bool initial) {
  std::map<std::string, PodRecord> next;
  for (const auto& p : pods) next[p.uid] = p;
  std::vector<PodChange> deleted, changed;
  for (const auto& [uid, old] : pods_) {
    if (!next.count(uid)) deleted.push_back({"DELETED", old});
  }
  for (const auto& [uid, pod] : next) {
    auto it = pods_.find(uid);
    if (it == pods_.end()) {
      changed.push_back({initial ? "SYNC" : "CREATED", pod});
    } else if (!it->second.SameObservableState(pod)) {
      changed.push_back({"UPDATED", pod});
    }
  }
  std::sort(deleted.begin(), deleted.end(), ByKey);
  std::sort(changed.begin(), changed.end(), ByKey);
  pods_ = std::move(next);
  deleted.insert(deleted.end(), changed.begin(), changed.end());
  return deleted;
}

std::optional<PodChange> PodStore::Apply(const std::string& type, const PodRecord& pod) {
  auto it = pods_.find(pod.uid);
  if (type == "DELETED") {
    if (it == pods_.end()) return std::nullopt;
    pods_.erase(it);
    return PodChange{"DELETED", pod};
  }
  if (type != "ADDED" && type != "MODIFIED") return std::nullopt;
  if (it == pods_.end()) {
    pods_[pod.uid] = pod;
    return PodChange{"CREATED", pod};
  }
  bool same = it->second.SameObservableState(pod);
  it->second = pod;  // Keep the newest resourceVersion even when nothing else changed.
  if (same) return std::nullopt;
  return PodChange{"UPDATED", pod};
}

std::vector<PodRecord> PodStore::All() const {
  std::vector<PodRecord> out;
  out.reserve(pods_.size());
  for (const auto& [uid, p] : pods_) out.push_back(p);
  std::sort(out.begin(), out.end(), [](const PodRecord& a, const PodRecord& b) {
    return std::tie(a.namespace_, a.name, a.uid) < std::tie(b.namespace_, b.name, b.uid);
  });
  return out;
}

}  // namespace ashiato
