// ClusterState: the aggregator's view of the cluster, built from agents'
// reports. It deduplicates (so each real change is applied and logged
// exactly once), reconciles snapshots, keeps a bounded history and an IP
// lease index, writes the unified log, and answers the query API.
//
// Dedup rules (docs/protocol.md):
//  - a batch whose (node, epoch, seq) was already applied is a replay: ignored;
//  - a batch from an epoch the node has since replaced is ignored;
//  - per pod UID, a record is applied only if its resourceVersion is newer
//    (or, without resourceVersions, it comes from a later batch), and it is
//    logged only if something observable changed;
//  - a snapshot from node X deletes (once) the pods X no longer has.
//
// Thread-safe: one mutex; Apply and queries serialize.
#pragma once

#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "aggregator/metrics.h"
#include "aggregator/pod_observer.h"
#include "aggregator/state_file.h"
#include "common/label_selector.h"
#include "common/report.h"
#include "common/time_util.h"

namespace ashiato {

struct StateOptions {
  // History events kept in memory; the oldest are dropped (and counted) first.
  size_t history_size = 100000;
  // Deleted pods remembered (for dedup and GET /v1/pods/{ns}/{name}).
  size_t max_tombstones = 50000;
  // Ended IP leases remembered for GET /v1/ips/{ip}?at=.
  size_t max_closed_leases = 200000;
  // An agent silent for longer is marked stale in /v1/nodes and /v1/pods.
  std::chrono::milliseconds stale_after{std::chrono::minutes(3)};
  // Journal for restarts (see state_file.h); "" = in memory only.
  std::string state_file;
};

enum class ApplyOutcome {
  kApplied,     // Records went through dedup (some may have been duplicates).
  kReplayed,    // Same (node, epoch, seq) as an applied batch: nothing done.
  kStaleEpoch,  // The node's agent has a newer epoch: nothing done.
};

struct ApplyResult {
  ApplyOutcome outcome = ApplyOutcome::kApplied;
  size_t applied = 0;    // Records that changed the state.
  size_t duplicate = 0;  // Records already known (same version or no change).
  size_t stale = 0;      // Records older than the state.
  size_t events = 0;     // Unified log lines written (includes snapshot deletions).
};

// Filters of GET /v1/pods; empty = any.
struct PodQuery {
  std::string node;
  std::string namespace_;
  LabelSelector selector;
  std::string ip;
  std::string phase;
};

class ClusterState {
 public:
  // `log_out` receives the unified log (stdout in production); `metrics`
  // and `clock` may be null (real clock, no metrics).
  ClusterState(StateOptions options, std::FILE* log_out, AggregatorMetrics* metrics = nullptr,
               const Clock* clock = nullptr);
  ~ClusterState();

  // Attaches an observer; call before Open() so restored pods reach it.
  void AddObserver(PodObserver* observer);
  // Loads the state file, if any, and compacts it. Call once before Apply.
  Status Open();

  // Applies one decoded, authorized report.
  ApplyResult Apply(const Report& report);
  // As above, but moves the records' PodRecords into the state instead of
  // copying them; `report`'s envelope (node, epoch, seq) is left intact.
  ApplyResult Apply(Report&& report);

  // Writes what is buffered to disk (fsync of the journal). For shutdown.
  void Flush();

  // --- Queries (JSON bodies of the API, docs/api.md). ---
  nlohmann::json Nodes() const;
  nlohmann::json Pods(const PodQuery& query) const;
  // Current state and history of every UID that had this name; nullopt if
  // the name was never seen (or fell out of memory).
  std::optional<nlohmann::json> PodByName(const std::string& ns, const std::string& name) const;
  // Pods holding `ip` at `at` (now when unset), newest first.
  nlohmann::json Ip(const std::string& ip, std::optional<SystemTime> at) const;
  nlohmann::json History(std::optional<SystemTime> since, std::optional<SystemTime> until,
                         size_t limit) const;
  nlohmann::json Images() const;

  // For tests and metrics.
  size_t live_pods() const;
  uint64_t history_dropped() const;
  // Updates the gauges in `metrics` (called at scrape time).
  void UpdateGauges() const;

 private:
  // A PodRecord packed into one buffer (state.cc): ~1/3 of the memory of
  // a PodRecord's ~20 separately allocated strings, maps and vectors. Live
  // pods, tombstones and history events share these immutable buffers.
  class StoredPod;
  using PodPtr = std::shared_ptr<const StoredPod>;

  struct PodEntry {
    PodPtr pod;
    std::string observed_by;
    std::string epoch;  // Of the batch that last applied a record.
    uint64_t seq = 0;
    bool deleted = false;
    bool deleted_by_snapshot = false;
    SystemTime last_change{};
  };
  struct NodeEntry {
    std::string epoch;
    uint64_t last_seq = 0;
    std::deque<std::string> retired_epochs;
    SystemTime last_report{};
    SystemTime last_snapshot{};
    uint64_t reports = 0;
    std::unordered_set<std::string> live_uids;
  };
  struct HistoryEvent {
    std::string event;
    SystemTime timestamp;
    SystemTime aggregated_at;
    std::string observed_by;
    PodPtr pod;
  };
  // Who held an IP from when to when. The four names share one buffer
  // ("uid\0namespace\0name\0node"): one allocation instead of four.
  struct Lease {
    Lease(const PodRecord& pod, SystemTime from_time);
    std::string_view uid() const { return Part(0); }
    std::string_view namespace_() const { return Part(1); }
    std::string_view name() const { return Part(2); }
    std::string_view node() const { return Part(3); }
    std::string_view Part(int i) const;
    std::string names;
    SystemTime from;
    std::optional<SystemTime> to;
  };

  // Dedup + apply one record; appends log/journal text. Returns +1 applied,
  // 0 duplicate, -1 stale.
  // `node` is the reporting node's entry; `record.pod` is moved from.
  int ApplyRecord(const Report& report, NodeEntry& node, ReportRecord& record, SystemTime now);
  // `record` is `pod` unpacked (the caller has it at hand).
  void Emit(const std::string& event, SystemTime when, SystemTime now, const std::string& node,
            const PodRecord& record, const PodPtr& pod, bool deleted_by_snapshot);
  void RecordEvent(const std::string& event, SystemTime when, SystemTime aggregated_at,
                   const std::string& node, const PodRecord& record, const PodPtr& pod);
  void UpdateLeases(const PodRecord& pod, const std::vector<std::string>& ips, SystemTime when);
  void AddTombstone(const std::string& uid);
  void TrimTombstones();
  NodeEntry& Node(const std::string& name);
  bool IsStale(const NodeEntry& n, SystemTime now) const;
  nlohmann::json PodJson(const PodEntry& e, SystemTime now) const;
  nlohmann::json EventJson(const HistoryEvent& h) const;
  std::string CompactedJournal() const;
  Status Replay(const std::vector<std::string>& lines);
  void WriteOut();

  StateOptions options_;
  std::FILE* log_out_;
  AggregatorMetrics* metrics_;
  const Clock* clock_;
  std::vector<PodObserver*> observers_;
  std::unique_ptr<StateFile> journal_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, PodEntry> pods_;  // By UID, live and tombstones.
  std::unordered_map<std::string, std::vector<std::string>> uids_by_name_;  // "ns/name".
  std::deque<std::string> tombstones_;                                      // Deletion order.
  std::map<std::string, NodeEntry> nodes_;
  std::deque<HistoryEvent> history_;
  uint64_t history_dropped_ = 0;
  std::unordered_map<std::string, std::vector<Lease>> leases_;           // By IP.
  std::unordered_map<std::string, std::vector<std::string>> lease_ips_;  // Open, by UID.
  std::deque<std::pair<std::string, std::string>> closed_leases_;        // (ip, uid), close order.
  size_t live_ = 0;
  // Buffers filled during one Apply, written at its end (journal first).
  std::string log_buf_;
  std::string journal_buf_;
  // FormatRfc3339Micros of the current Apply's `now`.
  std::string now_text_;
  bool replaying_ = false;
};

}  // namespace ashiato
