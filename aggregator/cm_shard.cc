#include "aggregator/cm_shard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "aggregator/cm_key.h"

namespace ashiato {

uint64_t Fnv1a64(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

HourIndex HourOf(SystemTime t) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  return secs >= 0 ? secs / 3600 : -((-secs + 3599) / 3600);
}

SystemTime HourStart(HourIndex hour) { return SystemTime(std::chrono::hours(hour)); }

std::string HourLabel(HourIndex hour) {
  std::time_t tt = static_cast<std::time_t>(hour * 3600);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour);
  return buf;
}

std::optional<HourIndex> ParseHourLabel(const std::string& label) {
  if (label.size() != 10) return std::nullopt;
  for (char c : label) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = std::stoi(label.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(label.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(label.substr(6, 2));
  tm.tm_hour = std::stoi(label.substr(8, 2));
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23) {
    return std::nullopt;
  }
  std::time_t t = timegm(&tm);
  HourIndex h = static_cast<HourIndex>(t) / 3600;
  if (HourLabel(h) != label) return std::nullopt;  // e.g. February 31st.
  return h;
}

std::string ShardName(HourIndex hour, int shard) {
  // Appends, not operator+ chains: GCC 12 -O2 warns (-Wrestrict) on those.
  std::string name = kCmNamePrefix;
  name.append(HourLabel(hour));
  if (shard > 0) name.append("-").append(std::to_string(shard));
  return name;
}

std::optional<ParsedShardName> ParseShardName(const std::string& name) {
  const std::string prefix = kCmNamePrefix;
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::string rest = name.substr(prefix.size());
  auto hour = ParseHourLabel(rest.substr(0, 10));
  if (!hour) return std::nullopt;
  if (rest.size() == 10) return ParsedShardName{*hour, 0};
  if (rest[10] != '-' || rest.size() == 11 || rest.size() > 18) return std::nullopt;
  int shard = 0;
  for (size_t i = 11; i < rest.size(); ++i) {
    if (rest[i] < '0' || rest[i] > '9') return std::nullopt;
    shard = shard * 10 + (rest[i] - '0');
  }
  if (shard == 0 || rest[11] == '0') return std::nullopt;
  return ParsedShardName{*hour, shard};
}

ShardedHour::Shard& ShardedHour::EnsureShard(int shard) {
  if (shard >= static_cast<int>(shards_.size())) shards_.resize(shard + 1);
  return shards_[shard];
}

void ShardedHour::Put(int shard, const std::string& key, std::string value) {
  Shard& s = EnsureShard(shard);
  auto [it, inserted] = s.data.try_emplace(key);
  if (!inserted) {
    if (it->second == value) return;
    s.bytes -= EntryBytes(key.size(), it->second.size());
  }
  s.bytes += EntryBytes(key.size(), value.size());
  it->second = std::move(value);
  index_[key] = shard;
  ++s.generation;
}

void ShardedHour::Erase(int shard, const std::string& key) {
  Shard& s = shards_[shard];
  auto it = s.data.find(key);
  if (it == s.data.end()) return;
  s.bytes -= EntryBytes(key.size(), it->second.size());
  s.data.erase(it);
  index_.erase(key);
  ++s.generation;
}

void ShardedHour::Record(const std::string& key, const std::string& node,
                         const std::string& full_name) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    const std::string& old = shards_[it->second].data[key];
    std::string updated = AddNodeToValue(old, node, full_name);
    if (updated != old) Put(it->second, key, std::move(updated));
    return;
  }
  std::string& v = pending_[key];
  v = AddNodeToValue(v, node, full_name);
}

void ShardedHour::Merge(const std::string& key, const std::string& value) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    const std::string& old = shards_[it->second].data[key];
    std::string merged = MergeValues(old, value);
    if (merged != old) Put(it->second, key, std::move(merged));
    return;
  }
  auto [p, inserted] = pending_.try_emplace(key, value);
  if (!inserted) p->second = MergeValues(p->second, value);
}

size_t ShardedHour::EstimatedBytes(size_t extra_data_bytes) const {
  size_t data = extra_data_bytes;
  for (const Shard& s : shards_) data += s.bytes;
  for (const auto& [k, v] : pending_) data += EntryBytes(k.size(), v.size());
  size_t shards = shards_.size();
  if (PendingIsABatch()) {
    BatchPlan plan = PlanBatch();
    shards += static_cast<size_t>(plan.small + plan.large);
  }
  double per_shard = limits_.initial_fill * static_cast<double>(limits_.max_bytes) -
                     static_cast<double>(kShardMetadataBytes);
  size_t needed =
      per_shard > 0 ? static_cast<size_t>(std::ceil(static_cast<double>(data) / per_shard)) : 1;
  shards = std::max(shards, needed);
  return data + shards * kShardMetadataEstimateBytes;
}

std::optional<std::string> ShardedHour::Lookup(const std::string& key) const {
  auto it = index_.find(key);
  if (it != index_.end()) return shards_[it->second].data.at(key);
  auto p = pending_.find(key);
  if (p != pending_.end()) return p->second;
  return std::nullopt;
}

void ShardedHour::MergeFromServer(int shard, const nlohmann::json& cm) {
  Shard& s = EnsureShard(shard);
  const auto& meta = cm.value("metadata", nlohmann::json::object());
  s.exists = true;
  s.resource_version = meta.value("resourceVersion", "");
  s.server_labels = meta.value("labels", nlohmann::json::object());
  s.server_annotations = meta.value("annotations", nlohmann::json::object());
  std::map<std::string, std::string> theirs;
  if (cm.contains("data") && cm["data"].is_object()) {
    for (auto& [k, v] : cm["data"].items()) {
      if (v.is_string()) theirs.emplace(k, v.get<std::string>());
    }
  }
  for (const auto& [k, v] : theirs) {
    auto it = index_.find(k);
    if (it != index_.end()) {
      int t = it->second;
      const std::string& ours = shards_[t].data[k];
      std::string merged = MergeValues(ours, v);
      if (merged != ours) Put(t, k, std::move(merged));
      continue;
    }
    auto p = pending_.find(k);
    if (p != pending_.end()) {
      std::string merged = MergeValues(p->second, v);
      pending_.erase(p);
      Put(shard, k, std::move(merged));
      continue;
    }
    Put(shard, k, v);
  }
  // Clean iff our copy of this shard is exactly what the server holds.
  Shard& after = shards_[shard];
  after.written = after.data == theirs ? after.generation : 0;
}

void ShardedHour::MarkMissing(int shard) {
  Shard& s = EnsureShard(shard);
  s.exists = false;
  s.resource_version.clear();
  s.written = 0;
}

size_t ShardedHour::AppendCap() const {
  double large = limits_.place_fill * static_cast<double>(limits_.max_bytes) -
                 static_cast<double>(kShardMetadataBytes);
  return std::min(limits_.append_max_bytes, static_cast<size_t>(std::max(0.0, large)));
}

int ShardedHour::ChooseHashed(const std::string& key, size_t bytes, int first, int count,
                              size_t cap) const {
  int start = static_cast<int>(Fnv1a64(key) % static_cast<uint64_t>(count));
  for (int i = 0; i < count; ++i) {
    int s = first + (start + i) % count;
    if (shards_[s].bytes + bytes <= cap) return s;
  }
  // All full (a batch that outgrew its plan): the hard limit pass in Place()
  // moves keys out if this shard ends up over max_bytes.
  return first + start;
}

int ShardedHour::ChooseAppend(size_t bytes, int avoid) const {
  int last = static_cast<int>(shards_.size()) - 1;
  if (last >= 0 && last != avoid && shards_[last].bytes + bytes <= AppendCap()) return last;
  // A lone entry larger than the cap still gets a shard of its own.
  return static_cast<int>(shards_.size());
}

ShardedHour::BatchPlan ShardedHour::PlanBatch() const {
  size_t total = 0, may_change = 0;
  for (const auto& [k, v] : pending_) {
    size_t bytes = EntryBytes(k.size(), v.size());
    total += bytes;
    if (!KeyHasGeneratedName(k)) may_change += bytes;
  }
  auto count = [](size_t bytes, double per_shard) {
    return std::max(1, static_cast<int>(std::ceil(static_cast<double>(bytes) / per_shard)));
  };
  const double large_fill = limits_.initial_fill * static_cast<double>(limits_.max_bytes) -
                            static_cast<double>(kShardMetadataBytes);
  BatchPlan plan;
  plan.large_cap =
      static_cast<size_t>(limits_.place_fill * static_cast<double>(limits_.max_bytes)) -
      kShardMetadataBytes;
  // A batch that fits one large shard stays one ConfigMap: splitting it
  // would save less than it costs in objects (small clusters keep one
  // ConfigMap an hour).
  if (total <= static_cast<size_t>(std::max(0.0, large_fill))) {
    plan.large = 1;
    return plan;
  }
  if (may_change > 0) {
    const double small_fill =
        limits_.initial_fill * static_cast<double>(std::max<size_t>(limits_.small_max_bytes, 1));
    plan.small = std::min(count(may_change, small_fill), std::max(1, limits_.max_small_shards));
    // Room for the hashing's unevenness; bigger shards when the count is capped.
    size_t even = may_change / static_cast<size_t>(plan.small);
    plan.small_cap = std::max(limits_.small_max_bytes, even + even / 2);
  }
  if (total > may_change) plan.large = count(total - may_change, large_fill);
  return plan;
}

bool ShardedHour::PendingIsABatch() const {
  if (pending_.empty()) return false;
  if (shards_.empty()) return true;
  size_t total = 0;
  for (const auto& [k, v] : pending_) total += EntryBytes(k.size(), v.size());
  return total > AppendCap();
}

void ShardedHour::PlaceBatch() {
  BatchPlan plan = PlanBatch();
  const int first = shard_count();
  shards_.resize(first + plan.small + plan.large);
  for (auto& [k, v] : pending_) {
    size_t bytes = EntryBytes(k.size(), v.size());
    int s = plan.small > 0 && !KeyHasGeneratedName(k)
                ? ChooseHashed(k, bytes, first, plan.small, plan.small_cap)
                : ChooseHashed(k, bytes, first + plan.small, plan.large, plan.large_cap);
    Put(s, k, std::move(v));
  }
  pending_.clear();
}

void ShardedHour::Place() {
  if (PendingIsABatch()) PlaceBatch();
  for (auto& [k, v] : pending_) {
    int s = ChooseAppend(EntryBytes(k.size(), v.size()), -1);
    Put(s, k, std::move(v));
  }
  pending_.clear();
  // Values grew past the hard limit: move keys out, last keys first.
  for (int s = 0; s < static_cast<int>(shards_.size()); ++s) {
    while (shards_[s].bytes + kShardMetadataBytes > limits_.max_bytes &&
           shards_[s].data.size() > 1) {
      auto last = std::prev(shards_[s].data.end());
      std::string key = last->first;
      std::string value = last->second;
      Erase(s, key);
      int t = ChooseAppend(EntryBytes(key.size(), value.size()), s);
      Put(t, key, std::move(value));
    }
  }
}

std::vector<int> ShardedHour::DirtyShards() const {
  std::vector<int> out;
  for (int i = 0; i < static_cast<int>(shards_.size()); ++i) {
    const Shard& s = shards_[i];
    if (s.written == s.generation) continue;
    if (!s.exists && s.data.empty()) continue;  // Nothing to create.
    out.push_back(i);
  }
  return out;
}

bool ShardedHour::dirty() const { return !pending_.empty() || !DirtyShards().empty(); }

ShardedHour::WriteRequest ShardedHour::BuildWrite(int shard, const std::string& ns,
                                                  const std::string& cluster) const {
  const Shard& s = shards_[shard];
  nlohmann::json labels = s.server_labels.is_object() ? s.server_labels : nlohmann::json::object();
  labels[kCmAppLabel] = kCmAppValue;
  labels[kCmTypeLabel] = kCmTypeValue;
  labels[kCmHourLabel] = HourLabel(hour_);
  if (!cluster.empty()) labels[kCmClusterLabel] = cluster;
  nlohmann::json annotations =
      s.server_annotations.is_object() ? s.server_annotations : nlohmann::json::object();
  annotations[kCmShardAnnotation] = std::to_string(shard);
  annotations[kCmHourStartAnnotation] = FormatRfc3339(HourStart(hour_));
  annotations[kCmFormatAnnotation] = "v1";
  nlohmann::json meta = {{"name", ShardName(hour_, shard)},
                         {"namespace", ns},
                         {"labels", std::move(labels)},
                         {"annotations", std::move(annotations)}};
  if (s.exists) meta["resourceVersion"] = s.resource_version;
  nlohmann::json data(s.data);
  WriteRequest req;
  req.shard = shard;
  req.create = !s.exists;
  req.generation = s.generation;
  req.config_map = {{"apiVersion", "v1"},
                    {"kind", "ConfigMap"},
                    {"metadata", std::move(meta)},
                    {"data", std::move(data)}};
  return req;
}

void ShardedHour::Written(int shard, uint64_t generation, const std::string& resource_version) {
  Shard& s = EnsureShard(shard);
  s.exists = true;
  s.resource_version = resource_version;
  s.written = generation;
}

}  // namespace ashiato
