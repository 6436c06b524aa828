// Pusher: the agent's delivery to ashiato-aggregator (POST /v1/reports,
// docs/protocol.md). An EventSink that queues records and sends them from a
// background thread over one keep-alive connection:
//  - batches only under load: a record is sent at once when no request is
//    in flight; records arriving while one is in flight go together in the
//    next (up to batch_max), so the request rate follows the aggregator's
//    round trip, not a timer (batch_delay > 0 adds a wait, off by default);
//  - retries a failed batch (same seq) with exponential backoff and jitter;
//  - bounded buffer: when full it coalesces per pod (only the latest record
//    of each pod is kept), so the latest state of every pod is never dropped;
//  - sends a full snapshot of the node after each OnSnapshot (relist and
//    --interval) and after reconnecting (first success after a failure);
//  - an empty batch every `heartbeat` (jittered) when idle, so the aggregator
//    sees the agent alive and the agent sees a new aggregator instance soon;
//  - keeps every change it delivered (the latest per pod, for replay_window)
//    and, when an answer shows that the aggregator lost state (a new
//    `instance`, or a `committed_seq` below what it acknowledged before),
//    replays them in observed order and then sends a snapshot;
//  - the bearer token file is re-read when its mtime changes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agent/agent_metrics.h"
#include "agent/agent_options.h"
#include "agent/event_sink.h"
#include "common/backoff.h"
#include "common/http_client.h"
#include "common/report.h"
#include "common/time_util.h"

namespace ashiato {

struct PusherOptions {
  // Aggregator base URL, e.g. "http://ashiato-aggregator.ashiato:8080".
  std::string url;
  // File holding the bearer token ("" = send none). Re-read on change.
  std::string token_file;
  // TLS trust for an https URL ("" = system store).
  std::string ca_file;
  // The node this agent reports for.
  std::string node;
  // Records per POST at most.
  size_t batch_max = 500;
  // Extra wait for more records before a batch is sent (0 = none: send as
  // soon as no request is in flight). Only trades latency for fewer requests.
  std::chrono::milliseconds batch_delay{0};
  // Pending records at most; when reached, pending records are coalesced per pod.
  size_t buffer_max = 10000;
  // An empty report is sent when nothing was sent for this long (0 = never).
  // Each wait is drawn uniformly from [90%, 100%] of it, so agents started
  // (or reconnected) together drift apart.
  std::chrono::milliseconds heartbeat{std::chrono::seconds(10)};
  // Bodies at least this large are sent gzip-compressed (0 = always, SIZE_MAX = never).
  size_t gzip_min_bytes = 2048;
  // Retry delays (`max` caps them, so a new aggregator hears from an agent
  // whose pushes failed within about `max`). Retry-After is honoured above it.
  BackoffOptions backoff{std::chrono::milliseconds(200), std::chrono::milliseconds(5000), 2.0,
                         std::chrono::milliseconds(60000)};
  // Per-POST timeout.
  std::chrono::milliseconds request_timeout{10000};
  // Delivered changes are retained this long (by observed time), to be
  // replayed to an aggregator that lost them (0 = retain nothing).
  std::chrono::milliseconds replay_window{std::chrono::hours(1)};
  // Pods whose latest change is retained, at most (0 = retain nothing); the
  // oldest are dropped beyond it.
  size_t replay_max = 20000;
};

// The agent's flags mapped onto PusherOptions. Without --aggregator-ca-file,
// an https aggregator is verified with DefaultAggregatorCaFile().
PusherOptions PusherOptionsFromAgent(const AgentOptions& agent);

// The CA bundle an https `url` is verified with when none is configured:
// the in-cluster one (the service account's ca.crt) when readable, else ""
// (the system store). "" for any other scheme.
std::string DefaultAggregatorCaFile(
    const std::string& url,
    const std::string& in_cluster_ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");

// The changes a Pusher delivered, kept for a replay: the latest record of
// each pod UID (a deletion included, with its last state), each with its
// original observed time, ordered by that time. Records are held encoded
// (compact wire JSON, about a third of a PodRecord's heap size). Bounded by
// age (Prune) and by the number of pods (older pods dropped first). Not
// thread-safe.
class RetainedChanges {
 public:
  // Orders records: (observed Unix ms, insertion number).
  using Key = std::pair<int64_t, uint64_t>;

  RetainedChanges(std::string node, size_t max_pods);

  // Keeps `record` as the latest of its pod, unless one observed later is
  // held already. Returns how many pods were dropped to stay within max_pods.
  size_t Add(const ReportRecord& record);
  // Drops records observed before `cutoff_unix_ms`. Returns how many.
  size_t Prune(int64_t cutoff_unix_ms);
  // Up to `max` records with a key in (*after, last], oldest first, as
  // EncodeRecord wrote them (common/report.h); moves *after to the key of
  // the last one returned.
  std::vector<std::string> Take(Key* after, const Key& last, size_t max) const;
  // True iff a record has a key in (after, last].
  bool Has(const Key& after, const Key& last) const;
  // The newest key; {INT64_MIN, 0} when empty.
  Key LastKey() const;
  // The key before every key.
  static Key First();
  size_t size() const { return by_uid_.size(); }
  // Heap bytes of the encoded records (strings only, not the index).
  size_t encoded_bytes() const { return encoded_bytes_; }

 private:
  struct Entry {
    const std::string* uid;  // The key in by_uid_ (node-based: stable).
    std::string encoded;     // EncodeRecord(record, node_).
  };
  std::string node_;
  size_t max_pods_;
  uint64_t next_ = 0;
  size_t encoded_bytes_ = 0;
  std::map<Key, Entry> by_time_;
  std::unordered_map<std::string, Key> by_uid_;
};

class Pusher : public EventSink {
 public:
  struct Stats {
    uint64_t batches_sent = 0;  // Accepted by the aggregator (2xx).
    uint64_t records_sent = 0;
    uint64_t snapshots_sent = 0;
    uint64_t heartbeats_sent = 0;
    uint64_t retries = 0;          // Failed attempts that were retried.
    uint64_t coalesced = 0;        // Records replaced by a later record of the same pod.
    uint64_t dropped_batches = 0;  // Rejected as invalid (400/413/409): not retried.
    uint64_t bytes_sent = 0;
    size_t pending = 0;
    // Times the aggregator was found to have lost state (new instance, or
    // committed_seq below an acknowledged seq): retained changes replayed,
    // then a snapshot.
    uint64_t replays = 0;
    uint64_t replayed_records = 0;  // Records sent again by those replays.
    uint64_t replay_dropped = 0;    // Retained pods dropped because over replay_max.
    uint64_t replay_expired = 0;    // Retained records older than replay_window, pruned.
    size_t replay_retained = 0;     // Pods whose latest change is retained now.
  };

  // `clock` (default: real) gives observed times and ages the retained
  // changes; `metrics` (may be null) receives the replay counters. Both must
  // outlive the Pusher.
  explicit Pusher(PusherOptions options, const Clock* clock = nullptr,
                  AgentMetrics* metrics = nullptr);
  ~Pusher() override;  // Stop().

  // Starts the sender thread. InvalidArgument without a URL or node, or
  // when ca_file is set but cannot be read.
  Status Start();
  // Stops the thread, abandoning what is pending (call Flush first).
  void Stop();

  void OnEvent(const std::string& event_type, const PodRecord& record) override;
  void OnSnapshot(const std::vector<PodRecord>& all) override;
  // Waits until everything queued so far (a replay included) was accepted,
  // or `deadline` passed (DeadlineExceeded).
  Status Flush(std::chrono::milliseconds deadline) override;

  Stats stats() const;
  // This process's epoch (random, fixed for the Pusher's life).
  const std::string& epoch() const { return epoch_; }
  // The aggregator instance named by the last answer that named one ("" = none yet).
  std::string aggregator_instance() const;

 private:
  struct Pending {
    ReportRecord record;
    std::chrono::steady_clock::time_point queued;
  };
  enum class BatchKind { kChanges, kReplay, kSnapshot, kHeartbeat };
  void Run();
  void CoalesceLocked();
  // Sends `report` (with `replayed`, a replay's records as retained, when
  // not empty) until accepted, rejected, or stopping. Returns true iff
  // accepted; then *answer is the response body.
  bool SendWithRetry(HttpClient& client, Report& report, const std::vector<std::string>& replayed,
                     std::string* answer);
  // Looks at an accepted batch's answer; starts a replay if the aggregator
  // lost state.
  void CheckAnswerLocked(BatchKind kind, uint64_t seq, const std::string& answer);
  void StartReplayLocked();
  bool ReplayPendingLocked() const;
  void PruneLocked();
  void ScheduleHeartbeatLocked(std::chrono::steady_clock::time_point sent);
  std::string Token();
  int64_t NowMs() const;

  PusherOptions options_;
  const Clock* clock_;
  AgentMetrics* metrics_;
  std::string epoch_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  std::unordered_map<std::string, PodRecord> view_;  // The node's pods, by UID.
  bool have_view_ = false;  // Set by the first OnSnapshot: view_ is complete.
  bool need_snapshot_ = false;
  bool in_flight_ = false;
  bool stop_ = false;
  bool flushing_ = false;
  uint64_t next_seq_ = 1;
  Stats stats_;
  std::chrono::steady_clock::time_point next_heartbeat_;
  std::mt19937_64 rng_;

  // Delivered changes, and the replay in progress: retained_ keys in
  // (replay_after_, replay_last_] are still to be sent again.
  RetainedChanges retained_;
  bool replaying_ = false;
  RetainedChanges::Key replay_after_;
  RetainedChanges::Key replay_last_;
  // From a replay's start until the snapshot that ends it was accepted.
  bool recovering_ = false;
  // Overflow folded undelivered changes into the next snapshot.
  bool view_has_undelivered_ = false;

  std::string instance_;         // Last non-empty `instance` answered.
  uint64_t acked_data_seq_ = 0;  // Highest seq acknowledged for records or a snapshot.

  std::mutex token_mu_;
  std::string token_;
  long long token_mtime_ns_ = -1;

  HttpClient* client_ = nullptr;  // Owned by the thread; for Cancel() in Stop().
  std::thread thread_;
};

}  // namespace ashiato
