// HourlyConfigMapWriter: keeps the hourly pod→node ConfigMaps
// (pod-ashiato-YYYYMMDDHH[-N]) up to date for the aggregator, in debounced
// batches that write only changed shards with optimistic concurrency.
// Format and guarantees: docs/configmaps.md.
//
//   auto writer = std::make_unique<HourlyConfigMapWriter>(
//       options, NewKubeConfigMapApi(std::make_unique<KubeClient>(config)), Clock::Real());
//   writer->Start();               // merges what an earlier run wrote this hour
//   writer->Backfill(hour, entries);   // for each retained hour, from the history store
//   writer->PodSeen("ns", "web-0", "node-a", now);
//   writer->PodGone("ns", "web-0", "node-a", later);
//   ...
//   writer->Stop();                // final flush
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "aggregator/cm_api.h"
#include "aggregator/cm_shard.h"
#include "common/backoff.h"
#include "common/status.h"
#include "common/time_util.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace ashiato {

struct ConfigMapWriterOptions {
  // --store-in-cm: whether the aggregator runs a writer at all (the writer
  // itself does not look at it).
  bool enabled = false;
  // --cm-namespace: where the ConfigMaps live.
  std::string namespace_ = "default";
  // --cluster-name: the ashiato.io/cluster label of every ConfigMap written
  // ("" = no such label).
  std::string cluster;
  // --cm-debounce: changes are written at most once per this interval.
  std::chrono::milliseconds debounce{10000};
  // --cm-retention: hourly ConfigMaps older than this are deleted; 0 keeps all.
  std::chrono::hours retention{24 * 7};
  // --cm-max-bytes: budget for the sum of the sizes (serialized JSON objects)
  // of all hourly ConfigMaps in the namespace; over it, whole hours are
  // deleted oldest first, never the current one. 0: no budget. 128 MiB is
  // 6 % of etcd's default 2 GiB quota (docs/configmaps.md).
  uint64_t max_total_bytes = uint64_t{128} * 1024 * 1024;
  // Least time between two budget checks after flushes; the hourly retention
  // pass checks too, with a fresh list.
  std::chrono::milliseconds budget_check_interval{60000};
  // Ceiling for a shard's data plus metadata; the API server allows 1 MiB of data.
  size_t shard_max_bytes = 900 * 1024;
  // Attempts per shard and flush when writes conflict (409) before giving up
  // until the next flush.
  int max_attempts = 8;
  // Delay between conflicting attempts.
  BackoffOptions conflict_backoff{std::chrono::milliseconds(20), std::chrono::milliseconds(2000),
                                  2.0, std::chrono::milliseconds(60000)};
  // When set, metrics (ashiato_cm_*) are registered here for /metrics.
  prometheus::Registry* registry = nullptr;
};

struct ConfigMapWriterStats {
  uint64_t flushes = 0;
  uint64_t requests = 0;  // Every API call: get, list, create, update, delete.
  uint64_t creates = 0;
  uint64_t updates = 0;
  uint64_t deletes = 0;        // By retention (age).
  uint64_t budget_pruned = 0;  // ConfigMaps deleted to stay within max_total_bytes.
  uint64_t conflicts = 0;      // 409s (stale resourceVersion or existing name).
  uint64_t errors = 0;         // Other failed calls.
  uint64_t bytes_written = 0;  // Request bodies of creates and updates.
  // The last FlushNow().
  uint64_t last_flush_requests = 0;
  uint64_t last_flush_bytes = 0;
  uint64_t last_flush_shards_written = 0;
  // Bytes of the hourly ConfigMaps on the server as last listed or written.
  uint64_t total_bytes = 0;
  // The current hour.
  int shards = 0;
  size_t keys = 0;
  size_t max_shard_bytes = 0;
};

// One pod that ran during an hour, as the aggregator's history store knows it.
struct BackfillEntry {
  std::string namespace_;
  std::string name;
  std::string node;
};

class HourlyConfigMapWriter {
 public:
  HourlyConfigMapWriter(ConfigMapWriterOptions options, std::unique_ptr<ConfigMapApi> api,
                        const Clock* clock);
  ~HourlyConfigMapWriter();
  HourlyConfigMapWriter(const HourlyConfigMapWriter&) = delete;
  HourlyConfigMapWriter& operator=(const HourlyConfigMapWriter&) = delete;

  // Pod ns/name was on `node` at `when`; it stays live (and is carried into
  // each new hour) until PodGone. Recorded in the current hour and, when
  // `when` is in an earlier hour still inside retention, in that hour too
  // (read back from the server first if it is no longer in memory). Cheap:
  // memory only. Thread-safe.
  void PodSeen(const std::string& ns, const std::string& name, const std::string& node,
               SystemTime when);
  // Pod ns/name, last on `node`, no longer exists since `when`. It leaves the
  // live set, and is recorded on `node` in the hour of `when` (the current
  // hour if `when` is in it or later; an earlier hour only while inside
  // retention), so a pod deleted before it was ever seen present is recorded
  // too. It stays in the hours it was seen in. An empty `node` records
  // nothing. Memory only. Thread-safe.
  void PodGone(const std::string& ns, const std::string& name, const std::string& node,
               SystemTime when);

  // Adds pods that ran during `hour` (from the aggregator's durable history,
  // after a restart). Entries for one pod are in the order it ran on the
  // nodes, oldest first. Merged with what the server holds for that hour
  // (union; server keys and node order are kept, so an hour whose server copy
  // already has everything is read once and never written) in the normal
  // flushes, which retry until the hour leaves retention. Ignored for hours
  // outside retention, after the current one, or already pruned by the byte
  // budget. Call it for the newest hour first: once the budget is full the
  // older hours are dropped on arrival instead of piling up in memory.
  // Memory only. Thread-safe; callable before or after Start().
  void Backfill(HourIndex hour, std::vector<BackfillEntry> entries);
  // The oldest hour --cm-retention keeps now (and Backfill accepts);
  // numeric_limits<HourIndex>::min() when retention is 0 (keep all).
  HourIndex OldestRetainedHour() const;

  // Reads the current hour's shards (merging, so nothing an earlier run wrote
  // is lost), applies retention and starts the flush thread. The thread runs
  // even when the read fails (returned); the read is then retried before the
  // hour's first write.
  Status Start();
  // Stops the flush thread and flushes a last time. Idempotent.
  void Stop();
  // Writes every changed shard now (newest hour first), applies retention and
  // the byte budget when due; the first error, if any.
  Status FlushNow();

  ConfigMapWriterStats stats() const;

 private:
  struct HourState {
    explicit HourState(HourIndex h, ShardLimits limits) : data(h, limits) {}
    ShardedHour data;
    bool loaded = false;  // Merged with the server's shards of the hour.
    // Backfilled values that arrived before `loaded`: merged after the
    // server's, so the server's node order wins.
    std::map<std::string, std::string> backfill;
    size_t backfill_bytes = 0;  // EntryBytes of `backfill`.
  };
  // An hourly ConfigMap on the server (both labels), for the byte budget.
  struct ServerObject {
    HourIndex hour;
    size_t bytes;  // Serialized JSON as the server returned it.
  };
  struct LivePod {
    std::string node;
    std::string full_name;
  };
  struct Metrics;

  HourState& StateLocked(HourIndex hour);
  // A past hour that may still be written (inside retention, above the
  // budget floor), created unloaded if needed; nullptr otherwise.
  HourState* PastStateLocked(HourIndex hour);
  // Oldest hour retention keeps at `now`.
  HourIndex KeepFrom(SystemTime now) const;
  void RollLocked(HourIndex now_hour);
  Status LoadHour(HourIndex hour);
  Status FlushHour(HourIndex hour);
  Status WriteShard(HourState& st, int shard);
  Status ApplyRetention();
  // Raises budget_floor_ so that the hours above it fit max_total_bytes, and
  // forgets backfilled values at or below it. No API call; never drops state.
  void PlanBudgetLocked();
  // PlanBudgetLocked, then deletes the server's ConfigMaps at or below the floor.
  Status EnforceBudget();
  void NoteServerObjectLocked(const nlohmann::json& cm);
  uint64_t TotalBytesLocked() const;
  void CountRequest(const Status& s);

  const ConfigMapWriterOptions options_;
  const std::unique_ptr<ConfigMapApi> api_;
  const Clock* const clock_;
  std::unique_ptr<Metrics> metrics_;

  std::mutex flush_mu_;                 // One flush at a time; held across API calls.
  HourIndex last_retention_hour_ = -1;  // Guarded by flush_mu_.

  mutable std::mutex mu_;  // Guards the state below; never held across API calls.
  HourIndex current_hour_ = -1;
  std::map<HourIndex, std::unique_ptr<HourState>> hours_;
  std::unordered_map<std::string, LivePod> live_;       // ConfigMap key -> where it runs.
  std::map<std::string, ServerObject> server_objects_;  // By name.
  // Hours at or below this were pruned by the byte budget: never written again.
  HourIndex budget_floor_ = std::numeric_limits<HourIndex>::min();
  SystemTime last_budget_check_{};
  ConfigMapWriterStats stats_;

  std::mutex thread_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool started_ = false;
  std::thread thread_;
};

}  // namespace ashiato
