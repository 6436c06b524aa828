// One UTC hour of the pod→node map, split into ConfigMap shards that each
// stay below the API server's 1 MiB data limit (docs/configmaps.md).
//
// Shard 0 is "pod-ashiato-YYYYMMDDHH", shard i > 0 "pod-ashiato-YYYYMMDDHH-i".
// A key is placed once and then stays in its shard, so a flush rewrites only
// the shards whose keys changed, and the cost of a change is the size of the
// shard that holds it. The layout keeps the shards that change small:
// - The hour's first batch (usually the pods carried over from the previous
//   hour), when larger than one large shard: keys whose value can still
//   change (names that may be reused, e.g. StatefulSet pods, which can come
//   back on another node) go to small shards first; keys with generated names
//   (final once written) to large shards after them, filled to about 70 %.
//   Within each group by FNV-1a(key) mod count: deterministic and even.
// - Keys new later in the hour go to the last shard while it stays below
//   append_max_bytes; then it is sealed (no new keys) and a new shard opens.
//   So the new pods of one flush rewrite one small shard. The rule depends
//   only on the shards' sizes, so it holds unchanged after a restart. More
//   new keys at once than one such shard holds (agents' snapshots after a
//   cold start) are laid out like a first batch, in new shards.
// - A shard whose values grew past max_bytes moves keys to the open shard.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/time_util.h"

namespace ashiato {

// Hours since the Unix epoch (UTC).
using HourIndex = int64_t;

HourIndex HourOf(SystemTime t);
SystemTime HourStart(HourIndex hour);
// "2026112403".
std::string HourLabel(HourIndex hour);
// Parses "2026112403".
std::optional<HourIndex> ParseHourLabel(const std::string& label);

inline constexpr char kCmNamePrefix[] = "pod-ashiato-";
inline constexpr char kCmAppLabel[] = "app";
inline constexpr char kCmAppValue[] = "pod-ashiato";
inline constexpr char kCmTypeLabel[] = "type";
inline constexpr char kCmTypeValue[] = "pod-node-mapping";
inline constexpr char kCmHourLabel[] = "ashiato.io/hour";
// The --cluster-name the ConfigMap describes (absent when none is set).
inline constexpr char kCmClusterLabel[] = "ashiato.io/cluster";
inline constexpr char kCmShardAnnotation[] = "ashiato.io/shard";
inline constexpr char kCmHourStartAnnotation[] = "ashiato.io/hour-start";
inline constexpr char kCmFormatAnnotation[] = "ashiato.io/format";

// "pod-ashiato-2026112403" for shard 0, "pod-ashiato-2026112403-2" for shard 2.
std::string ShardName(HourIndex hour, int shard);
struct ParsedShardName {
  HourIndex hour;
  int shard;
};
// Inverse of ShardName; nullopt for any other name.
std::optional<ParsedShardName> ParseShardName(const std::string& name);

// Bytes a key/value pair costs in a shard: key and value plus JSON quoting.
inline size_t EntryBytes(size_t key_size, size_t value_size) { return key_size + value_size + 6; }
// Reserved per shard for metadata (name, labels, annotations, resourceVersion…).
inline constexpr size_t kShardMetadataBytes = 2048;
// What that metadata usually takes once serialized (the writer's own fields
// are ~330 bytes; the API server adds uid, timestamps, managedFields), for
// size estimates that should rather be under than over the server's.
inline constexpr size_t kShardMetadataEstimateBytes = 320;

struct ShardLimits {
  // Hard ceiling for a shard's data bytes plus kShardMetadataBytes; the API
  // server's limit is 1 MiB of data and etcd's 1.5 MiB per request.
  size_t max_bytes = 900 * 1024;
  // The first placement of an hour creates enough shards to fill each to
  // about this fraction of max_bytes, so the hour can grow without new shards.
  double initial_fill = 0.7;
  // The first placement's large shards take keys only below this fraction
  // of max_bytes, leaving room for values to grow.
  double place_fill = 0.9;
  // Keys placed after the hour's first batch go to the last shard while its
  // data stays at or below this; then a new shard opens. A flush that adds
  // keys rewrites at most about this much (plus the new data).
  size_t append_max_bytes = 16 * 1024;
  // Size of the first placement's shards for keys whose value may change
  // (see KeyHasGeneratedName): a pod that moves node rewrites one of these.
  size_t small_max_bytes = 2 * 1024;
  // Bounds the small shards of one hour (and so the number of objects): with
  // more such keys the small shards grow instead.
  int max_small_shards = 256;
};

class ShardedHour {
 public:
  ShardedHour(HourIndex hour, ShardLimits limits) : hour_(hour), limits_(limits) {}

  HourIndex hour() const { return hour_; }

  // Records that pod key `key` ran on `node` (moved to the front of its list).
  void Record(const std::string& key, const std::string& node, const std::string& full_name);
  // Adds the nodes of `value` (a formatted value, see cm_key.h) that `key`
  // does not have yet after the ones it has, keeping their order: merging a
  // value whose nodes the key already holds changes nothing (no write).
  void Merge(const std::string& key, const std::string& value);

  // Merges a ConfigMap read from the server into shard `shard` (union, never
  // dropping anything of ours or theirs) and adopts its resourceVersion.
  // Keys the server holds in this shard that we placed elsewhere are merged
  // into our copy, which stays where it is; that shard is marked dirty.
  void MergeFromServer(int shard, const nlohmann::json& config_map);
  // The shard no longer exists on the server (404 on update): create it again.
  void MarkMissing(int shard);

  // Places keys not yet in a shard and moves keys out of shards over the hard
  // limit. Call before DirtyShards().
  void Place();

  // Shards whose content differs from what the server last acknowledged.
  std::vector<int> DirtyShards() const;
  bool dirty() const;

  struct WriteRequest {
    int shard;
    bool create;                // POST when the server does not have it yet, else PUT.
    uint64_t generation;        // Pass back to Written().
    nlohmann::json config_map;  // Full object, with resourceVersion when updating.
  };
  // `cluster` ("" = none) becomes the kCmClusterLabel label.
  WriteRequest BuildWrite(int shard, const std::string& ns, const std::string& cluster = "") const;
  // The server accepted `generation` of shard and returned `resource_version`.
  void Written(int shard, uint64_t generation, const std::string& resource_version);

  int shard_count() const { return static_cast<int>(shards_.size()); }
  size_t key_count() const { return index_.size() + pending_.size(); }
  // Data bytes of the shard as EntryBytes counts them.
  size_t shard_bytes(int shard) const { return shards_[shard].bytes; }
  const std::map<std::string, std::string>& shard_data(int shard) const {
    return shards_[shard].data;
  }
  // About the bytes the hour's ConfigMaps would take if written now, with
  // `extra_data_bytes` more data: data as EntryBytes counts it (placed and
  // not yet placed keys) plus kShardMetadataEstimateBytes per shard, counting
  // the shards a first placement would create. O(shards + keys not yet placed).
  size_t EstimatedBytes(size_t extra_data_bytes = 0) const;
  // The value of `key` wherever it is, or nullopt.
  std::optional<std::string> Lookup(const std::string& key) const;

 private:
  struct Shard {
    std::map<std::string, std::string> data;
    size_t bytes = 0;
    bool exists = false;  // On the server (known resourceVersion).
    std::string resource_version;
    uint64_t generation = 1;  // Bumped on every local change.
    uint64_t written = 0;     // Generation the server holds.
    // Labels and annotations others put on the object, kept on update.
    nlohmann::json server_labels;
    nlohmann::json server_annotations;
  };

  // How a batch of keys is laid out in new shards after the existing ones:
  // `small` shards for keys whose value may change, then `large` ones. With
  // small == 0, every key goes to the large group.
  struct BatchPlan {
    int small = 0;
    size_t small_cap = 0;  // Data bytes a small shard takes before probing on.
    int large = 0;
    size_t large_cap = 0;
  };
  BatchPlan PlanBatch() const;
  // The keys not yet placed are a batch (the hour's first, or more than one
  // append shard holds): laid out by PlanBatch rather than appended.
  bool PendingIsABatch() const;
  void PlaceBatch();
  // Data bytes up to which the last shard takes keys placed after the first batch.
  size_t AppendCap() const;

  Shard& EnsureShard(int shard);
  void Put(int shard, const std::string& key, std::string value);
  void Erase(int shard, const std::string& key);
  // A shard of [first, first + count) by FNV-1a(key), or the next one there
  // with room below `cap`; the hashed one when none has room.
  int ChooseHashed(const std::string& key, size_t bytes, int first, int count, size_t cap) const;
  // The last shard if it is not `avoid` and stays within AppendCap() with
  // `bytes` more; else a new shard.
  int ChooseAppend(size_t bytes, int avoid) const;

  HourIndex hour_;
  ShardLimits limits_;
  std::vector<Shard> shards_;
  std::unordered_map<std::string, int> index_;  // key -> shard
  std::map<std::string, std::string> pending_;  // Not yet placed: key -> value.
};

// FNV-1a, 64 bit: stable across platforms and releases (shard choice).
uint64_t Fnv1a64(const std::string& s);

}  // namespace ashiato
