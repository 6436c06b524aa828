// Pusher: the agent's delivery to ashiato-aggregator (POST /v1/reports,
// docs/protocol.md). An EventSink that queues records and sends them from a
// background thread over one keep-alive connection:
//  - batches by count (batch_max) or age (batch_delay);
//  - retries a failed batch (same seq) with exponential backoff and jitter;
//  - bounded buffer: when full it coalesces per pod (only the latest record
//    of each pod is kept), so the latest state of every pod is never dropped;
//  - sends a full snapshot of the node after each OnSnapshot (relist and
//    --interval) and after reconnecting (first success after a failure);
//  - an empty batch every `heartbeat` when idle, so the aggregator sees the
//    agent alive;
//  - the bearer token file is re-read when its mtime changes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

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
  // Longest a record waits before its batch is sent.
  std::chrono::milliseconds batch_delay{500};
  // Pending records at most; when reached, pending records are coalesced per pod.
  size_t buffer_max = 10000;
  // An empty report is sent when nothing was sent for this long (0 = never).
  std::chrono::milliseconds heartbeat{std::chrono::seconds(60)};
  // Bodies at least this large are sent gzip-compressed (0 = always, SIZE_MAX = never).
  size_t gzip_min_bytes = 2048;
  // Retry delays.
  BackoffOptions backoff{std::chrono::milliseconds(200), std::chrono::milliseconds(30000), 2.0,
                         std::chrono::milliseconds(60000)};
  // Per-POST timeout.
  std::chrono::milliseconds request_timeout{10000};
};

// The agent's flags mapped onto PusherOptions.
PusherOptions PusherOptionsFromAgent(const AgentOptions& agent);

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
  };

  explicit Pusher(PusherOptions options, const Clock* clock = nullptr);
  ~Pusher() override;  // Stop().

  // Starts the sender thread.
  Status Start();
  // Stops the thread, abandoning what is pending (call Flush first).
  void Stop();

  void OnEvent(const std::string& event_type, const PodRecord& record) override;
  void OnSnapshot(const std::vector<PodRecord>& all) override;
  // Waits until everything queued so far was accepted, or `deadline` passed
  // (DeadlineExceeded).
  Status Flush(std::chrono::milliseconds deadline) override;

  Stats stats() const;
  // This process's epoch (random, fixed for the Pusher's life).
  const std::string& epoch() const { return epoch_; }

 private:
  struct Pending {
    ReportRecord record;
    std::chrono::steady_clock::time_point queued;
  };
  void Run();
  void CoalesceLocked();
  // Sends until accepted, rejected, or stopping. Returns true iff accepted.
  bool SendWithRetry(HttpClient& client, Report& report);
  std::string Token();
  int64_t NowMs() const;

  PusherOptions options_;
  const Clock* clock_;
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
  std::chrono::steady_clock::time_point last_sent_;

  std::mutex token_mu_;
  std::string token_;
  long long token_mtime_ns_ = -1;

  HttpClient* client_ = nullptr;  // Owned by the thread; for Cancel() in Stop().
  std::thread thread_;
};

}  // namespace ashiato
