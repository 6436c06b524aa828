// HourlyConfigMapWriter: keeps the hourly pod→node ConfigMaps
// (pod-ashiato-YYYYMMDDHH[-N]) up to date for the aggregator, in debounced
// batches that write only changed shards with optimistic concurrency.
// Format and guarantees: docs/configmaps.md.
//
//   auto writer = std::make_unique<HourlyConfigMapWriter>(
//       options, NewKubeConfigMapApi(std::make_unique<KubeClient>(config)), Clock::Real());
//   writer->Start();               // merges what an earlier run wrote this hour
//   writer->PodSeen("ns", "web-0", "node-a", now);
//   ...
//   writer->Stop();                // final flush
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

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
  // --cm-debounce: changes are written at most once per this interval.
  std::chrono::milliseconds debounce{10000};
  // --cm-retention: hourly ConfigMaps older than this are deleted; 0 keeps all.
  std::chrono::hours retention{24 * 7};
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
  uint64_t deletes = 0;        // By retention.
  uint64_t conflicts = 0;      // 409s (stale resourceVersion or existing name).
  uint64_t errors = 0;         // Other failed calls.
  uint64_t bytes_written = 0;  // Request bodies of creates and updates.
  // The last FlushNow().
  uint64_t last_flush_requests = 0;
  uint64_t last_flush_bytes = 0;
  uint64_t last_flush_shards_written = 0;
  // The current hour.
  int shards = 0;
  size_t keys = 0;
  size_t max_shard_bytes = 0;
};

class HourlyConfigMapWriter {
 public:
  HourlyConfigMapWriter(ConfigMapWriterOptions options, std::unique_ptr<ConfigMapApi> api,
                        const Clock* clock);
  ~HourlyConfigMapWriter();
  HourlyConfigMapWriter(const HourlyConfigMapWriter&) = delete;
  HourlyConfigMapWriter& operator=(const HourlyConfigMapWriter&) = delete;

  // Pod ns/name was on `node` at `when`; it stays live (and is carried into
  // each new hour) until PodGone. Cheap: memory only. Thread-safe.
  void PodSeen(const std::string& ns, const std::string& name, const std::string& node,
               SystemTime when);
  // Pod ns/name no longer exists. It stays in the hours it was seen in.
  void PodGone(const std::string& ns, const std::string& name, SystemTime when);

  // Reads the current hour's shards (merging, so nothing an earlier run wrote
  // is lost), applies retention and starts the flush thread. The thread runs
  // even when the read fails (returned); the read is then retried before the
  // hour's first write.
  Status Start();
  // Stops the flush thread and flushes a last time. Idempotent.
  void Stop();
  // Writes every changed shard now; the first error, if any.
  Status FlushNow();

  ConfigMapWriterStats stats() const;

 private:
  struct HourState {
    explicit HourState(HourIndex h, ShardLimits limits) : data(h, limits) {}
    ShardedHour data;
    bool loaded = false;
  };
  struct LivePod {
    std::string node;
    std::string full_name;
  };
  struct Metrics;

  HourState& StateLocked(HourIndex hour);
  void RollLocked(HourIndex now_hour);
  Status LoadHour(HourIndex hour);
  Status FlushHour(HourIndex hour);
  Status WriteShard(HourState& st, int shard);
  Status ApplyRetention();
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
  std::unordered_map<std::string, LivePod> live_;  // ConfigMap key -> where it runs.
  ConfigMapWriterStats stats_;

  std::mutex thread_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool started_ = false;
  std::thread thread_;
};

}  // namespace ashiato
