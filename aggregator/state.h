// ClusterState: deduplicates agents' reports against a cache of current
// pods and commits every real change to the durable Store
// (aggregator/store/store.h) before the report is acknowledged.
//
// Dedup rules (docs/protocol.md):
//  - a batch whose (node, epoch, seq) was already applied is a replay: ignored;
//  - a batch from an epoch the node has since replaced is ignored;
//  - per pod UID, a record is applied only if its resourceVersion is newer
//    (or, without resourceVersions, it comes from a later batch), and it is
//    logged only if something observable changed;
//  - a snapshot from node X deletes (once) the pods X no longer has.
//
// The cache is a function of the store: it is loaded from it at Open and
// reloaded after a failed commit, so an acknowledged report is never lost
// and a refused one never half-applied. Thread-safe: reports are applied one
// at a time, and those that arrive during a commit are committed together
// by the next one (the commit runs without the cache lock, so queries of the
// cache never wait on the disk); queries take a shared lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "aggregator/intern_table.h"
#include "aggregator/metrics.h"
#include "aggregator/node_directory.h"
#include "aggregator/pod_census.h"
#include "aggregator/pod_observer.h"
#include "aggregator/store/store.h"
#include "aggregator/stored_pod.h"
#include "common/label_selector.h"
#include "common/live_config.h"
#include "common/report.h"
#include "common/time_util.h"

namespace ashiato {

struct StateOptions {
  // Deleted pods remembered in memory for dedup (the store keeps them all).
  size_t max_tombstones = 50000;
  // An agent silent for longer is marked stale in /v1/nodes and /v1/pods.
  std::chrono::milliseconds stale_after{std::chrono::minutes(3)};
};

enum class ApplyOutcome {
  kApplied,      // Records went through dedup and were committed.
  kReplayed,     // Same (node, epoch, seq) as an applied batch: nothing done.
  kStaleEpoch,   // The node's agent has a newer epoch: nothing done.
  kUnavailable,  // The store cannot commit: nothing done, retry later.
};

struct ApplyResult {
  ApplyOutcome outcome = ApplyOutcome::kApplied;
  size_t applied = 0;          // Records that changed the state.
  size_t duplicate = 0;        // Records already known (same version or no change).
  size_t stale = 0;            // Records older than the state.
  size_t events = 0;           // Unified log lines committed (includes snapshot deletions).
  uint64_t committed_seq = 0;  // Highest seq of this (node, epoch) committed.
  Status error;                // With kUnavailable.
};

// Filters of GET /v1/pods; empty = any.
struct PodQuery {
  std::string node;
  std::string namespace_;
  LabelSelector selector;
  std::string ip;
  std::string phase;
  // Pagination: at most `limit` pods (0 = all) after the `after` key
  // ("namespace/name/uid", exclusive).
  size_t limit = 0;
  std::string after;
  // Only these namespaces (sorted; a reader's access); null = any.
  const std::vector<std::string>* namespaces = nullptr;
};

class ClusterState {
 public:
  // `store` must outlive the state; `metrics` and `clock` may be null.
  ClusterState(StateOptions options, Store* store, AggregatorMetrics* metrics = nullptr,
               const Clock* clock = nullptr);

  // Attaches an observer; call before Open() so restored pods reach it.
  // Observers are called after the commit, one report at a time.
  void AddObserver(PodObserver* observer);
  // Attaches a census (aggregator/pod_census.h); call before Open().
  void AddCensus(PodCensus* census);
  // Node addresses and topology for log lines and answers; call before
  // Open(). Null (the default): none.
  void SetNodeDirectory(const NodeDirectory* nodes) { node_directory_ = nodes; }
  const NodeDirectory* node_directory() const { return node_directory_; }
  // Called after every commit that added log lines (wakes the log writer).
  void SetCommitListener(std::function<void()> fn) { on_commit_ = std::move(fn); }
  // Loads the cache from the store. Call once before Apply.
  Status Open();

  // The live configuration's scope (common/live_config.h): lines of pods
  // outside it are stored for history but not printed, and observers (the
  // ConfigMaps) do not see them. A change commits a SYNC line for each live
  // pod that enters the scope and tells observers that pods leaving it are
  // gone (no DELETED line). The scope in force is kept in the store, so a
  // change made while the aggregator was down is applied at Open. Before
  // Open it only sets the scope to apply then. If the store cannot commit,
  // the change is retried by CheckStore().
  Status SetScope(const PodScope& scope);
  PodScope scope() const;
  // Whether the pod `uid` is in the scope now, by its last known state; by
  // `namespace_` alone when the state no longer remembers it (the hourly
  // ConfigMaps' backfill from history).
  bool InScope(const std::string& uid, const std::string& namespace_) const;

  // Applies one decoded, authorized report and commits it. Reports applied
  // concurrently are committed together (one transaction) and each waits
  // for that commit; a failed commit refuses every report of it.
  ApplyResult Apply(const Report& report);
  // As above, moving the records' PodRecords into the cache.
  ApplyResult Apply(Report&& report);

  // While the store is unhealthy: probes it and, once it recovers, reloads
  // the cache. Called periodically by the aggregator.
  void CheckStore();
  bool accepting() const;

  // --- The current state (JSON bodies of the API, docs/api.md). ---
  nlohmann::json Nodes() const;
  // {"pods": [...], "count": n, "continue": key or absent}.
  nlohmann::json Pods(const PodQuery& query) const;
  // The cached state of a UID (live or a remembered tombstone).
  std::optional<nlohmann::json> Pod(const std::string& uid) const;
  // Images of current pods; only pods in `namespaces` (sorted) when set.
  nlohmann::json Images(const std::vector<std::string>* namespaces = nullptr) const;

  size_t live_pods() const;
  // Reports queued for a commit, the one being committed included.
  size_t reports_waiting() const;
  // Updates the gauges in `metrics` (called at scrape time).
  void UpdateGauges() const;
  Store& store() { return *store_; }

 private:
  struct PodEntry;
  struct NodeEntry {
    const std::string* name = nullptr;  // Its key in nodes_.
    std::string epoch;
    uint64_t last_seq = 0;
    std::vector<std::string> retired_epochs;
    SystemTime last_report{};
    SystemTime last_snapshot{};
    uint64_t reports = 0;
    // The live pods it observes, linked through their entries (a snapshot
    // deletes those it no longer has).
    PodEntry* live_head = nullptr;
    size_t live_count = 0;
  };
  // ~100 bytes beside the packed pod: the node and the epoch are pointers
  // and ids, not strings of their own.
  struct PodEntry {
    StoredPod pod;
    NodeEntry* observer = nullptr;  // The node that last reported it.
    InternedString epoch;           // Of the batch that last applied a record.
    uint64_t seq = 0;
    SystemTime last_change{};
    PodEntry* prev_live = nullptr;  // In observer->live_head's list while live.
    PodEntry* next_live = nullptr;
    bool deleted = false;
    bool deleted_by_snapshot = false;
    const std::string& observed_by() const { return *observer->name; }
  };
  // An observer call, made after the commit.
  struct Notice {
    bool gone;
    PodRecord pod;
    SystemTime when;
  };

  // A report waiting in queue_ for its group's commit.
  struct PendingReport {
    Report* report = nullptr;
    ApplyResult result;
    bool done = false;  // Committed (or refused) by another report's thread.
    std::condition_variable cv;
  };
  // Bounds one transaction: the first report is always taken.
  static constexpr size_t kMaxGroupRecords = 20000;

  // Applies `group` (the head of queue_) to the cache and commits it as one
  // batch, setting each report's result.
  void ApplyGroup(const std::vector<PendingReport*>& group);
  // Dedup + apply one report to the cache (mu_ held), adding to batch_
  // everything but the rows of touched pods.
  ApplyResult ApplyReportLocked(Report& report);
  // Dedup + apply one record to the cache, adding to batch_. Returns +1
  // applied, 0 duplicate, -1 stale. `record.pod` is moved from.
  int ApplyRecord(const Report& report, NodeEntry& node, ReportRecord& record, SystemTime now);
  // Records one log line and the intervals it opens or closes. `before` is
  // the pod's previous live state (null if it was not live); `first_seen`
  // when the UID is new to us.
  void Emit(const std::string& event, SystemTime when, SystemTime now, const std::string& node,
            const PodRecord& record, const StoredPod* before, bool first_seen);
  // The entry of node `name`, made on first use.
  NodeEntry& NodeNamed(const std::string& name);
  // Adds a live pod to `node`'s list (and makes it the pod's observer);
  // removes it from its observer's list.
  static void LinkLive(PodEntry& e, NodeEntry& node);
  static void UnlinkLive(PodEntry& e);
  StoredPod Pack(const PodRecord& p) { return StoredPod::Pack(p, &strings_); }
  void Touch(const std::string& uid);
  void AddTombstone(const std::string& uid);
  void TrimTombstones();
  Status LoadLocked();
  bool IsStale(const NodeEntry& n, SystemTime now) const;
  // The log line of `event` for `record`, observed by `node`.
  EventRow EventRowFor(const std::string& event, SystemTime when, SystemTime now,
                       const std::string& node, const PodRecord& record) const;
  // Moves from scope_ to wanted_scope_ (ingest_mu_ held, cache loaded).
  Status ApplyWantedScopeLocked();
  nlohmann::json PodJson(const PodEntry& e, SystemTime now) const;

  StateOptions options_;
  Store* store_;
  AggregatorMetrics* metrics_;
  const Clock* clock_;
  std::vector<PodObserver*> observers_;
  std::vector<PodCensus*> censuses_;  // Kept in step with the cache (ingest_mu_).
  std::function<void()> on_commit_;
  const NodeDirectory* node_directory_ = nullptr;

  // Reports waiting to be committed, in arrival order; the front one's
  // thread commits the group.
  mutable std::mutex queue_mu_;
  std::deque<PendingReport*> queue_;
  // Serializes Apply and reloads; held across the commit.
  mutable std::mutex ingest_mu_;
  bool needs_reload_ = false;  // Guarded by ingest_mu_.
  // The batch being built (guarded by ingest_mu_).
  ChangeBatch batch_;
  std::vector<std::string> touched_;  // UIDs whose row the batch writes, in order.
  std::unordered_set<std::string> touched_set_;
  std::vector<Notice> notices_;
  std::string now_text_;
  bool replay_batch_ = false;  // The report re-sends what an earlier aggregator logged.
  // The scope in force (committed with the SYNC lines it caused) and the one
  // asked for; guarded by ingest_mu_.
  PodScope scope_;
  PodScope wanted_scope_;
  bool opened_ = false;

  // The cache; written under an exclusive lock by Apply only.
  mutable std::shared_mutex mu_;
  InternTable strings_;  // Of the packed pods and entries below (declared first: freed last).
  std::unordered_map<std::string, PodEntry> pods_;  // By UID, live and tombstones.
  std::deque<std::string> tombstones_;              // Deletion order.
  std::map<std::string, NodeEntry> nodes_;
  size_t live_ = 0;
};

}  // namespace ashiato
