// AgentMetrics: the agent's Prometheus metrics (prometheus-cpp core registry,
// served as text by the health server). Thread-safe.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace ashiato {

class AgentMetrics {
 public:
  AgentMetrics();

  void WatchRestart() { watch_restarts_->Increment(); }
  void Relist() { relists_->Increment(); }
  // `type`: SYNC, CREATED, UPDATED, DELETED.
  void Event(const std::string& type);
  // Labelled by HTTP status, or by the status code name when no HTTP answer.
  void ApiError(const Status& status);
  void SetPodsTracked(size_t n) { pods_tracked_->Set(static_cast<double>(n)); }
  void SetWatchOpen(bool open) { watch_open_->Set(open ? 1 : 0); }

  // --- Delivery to the aggregator (agent/pusher.h) ---
  // The aggregator lost state; `reason`: "instance" or "committed_seq".
  void PushReplay(const std::string& reason);
  // Retained changes dropped over --replay-max / expired past --replay-window.
  void PushReplayDropped(uint64_t n) { push_replay_dropped_->Increment(static_cast<double>(n)); }
  void PushReplayExpired(uint64_t n) { push_replay_expired_->Increment(static_cast<double>(n)); }
  void SetPushReplayRetained(size_t n) { push_replay_retained_->Set(static_cast<double>(n)); }
  // One POST /v1/reports attempt. `result`: "delivered" (2xx), "failed" (no answer, or
  // an HTTP status worth a retry: the batch is retried), "rejected" (400, 409, 413: the
  // batch is dropped and a snapshot follows).
  void PushRequest(const std::string& result);

  // --- The live configuration (common/live_config_watch.h) ---
  void LiveConfigApplied() { live_config_changes_->Increment(); }
  void LiveConfigRefused() {
    live_config_refused_->Increment();
    live_config_invalid_->Set(1);
  }
  void LiveConfigValid() { live_config_invalid_->Set(0); }

  // The registry in Prometheus text format (last event age updated first).
  std::string Serialize();
  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* watch_restarts_;
  prometheus::Counter* relists_;
  prometheus::Counter* live_config_changes_;
  prometheus::Counter* live_config_refused_;
  prometheus::Gauge* live_config_invalid_;
  prometheus::Family<prometheus::Counter>* events_;
  prometheus::Family<prometheus::Counter>* api_errors_;
  prometheus::Gauge* pods_tracked_;
  prometheus::Gauge* watch_open_;
  prometheus::Gauge* last_event_age_;
  prometheus::Family<prometheus::Counter>* push_replays_;
  prometheus::Counter* push_replay_dropped_;
  prometheus::Counter* push_replay_expired_;
  prometheus::Gauge* push_replay_retained_;
  prometheus::Family<prometheus::Counter>* push_requests_;
  std::atomic<int64_t> last_event_ms_{0};  // steady_clock, 0 = none yet.
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace ashiato
