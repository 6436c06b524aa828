// Agent: ties the reflector, the pod store and the sinks together: what runs
// inside ashiato-agent once flags are parsed and the API client exists.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_metrics.h"
#include "agent/agent_options.h"
#include "agent/event_sink.h"
#include "agent/pod_api.h"
#include "agent/pod_filter.h"
#include "agent/pod_store.h"
#include "agent/reflector.h"

namespace ashiato {

// Maps the agent's flags to the reflector's options.
ReflectorOptions ReflectorOptionsFrom(const AgentOptions& options);

class Agent : private ReflectorHandler {
 public:
  // `api`, `sinks` and `metrics` must outlive the agent; `metrics` may be null.
  Agent(const AgentOptions& options, PodApi* api, std::vector<EventSink*> sinks,
        AgentMetrics* metrics);
  ~Agent() override;

  // --oneshot: lists once, delivers every matching pod as SYNC and a
  // snapshot, flushes the sinks. Returns the list error, if any.
  Status RunOneshot();

  // Continuous mode: list and watch until Stop(); delivers a snapshot every
  // `interval`, and the full view to OnLogAll every `log_all_every` (when
  // set). Watches one node, or every node in standalone mode. Returns after
  // Stop() (it does not flush: see Flush).
  Status Run();
  // Makes Run() return soon. Thread-safe, idempotent.
  void Stop();
  // Flushes every sink within `deadline` overall.
  Status Flush(std::chrono::milliseconds deadline);

  // The live configuration's captureAnnotations: records carry these from
  // now on; the reflector relists so that every pod's record does within
  // seconds. Thread-safe.
  void SetAnnotationCapture(AnnotationCapture capture) {
    reflector_.SetAnnotationCapture(std::move(capture));
  }

  // First list done and the watch open.
  bool Ready() const { return listed_.load() && watch_open_.load(); }
  // The first list is done.
  bool Listed() const { return listed_.load(); }
  size_t PodCount();

 private:
  void OnList(const std::vector<PodRecord>& pods) override;
  void OnWatchEvent(const std::string& type, const PodRecord& pod) override;
  void OnWatchState(bool open) override;
  void OnRelist() override;
  void OnWatchRestart() override;
  void OnApiError(const Status& status) override;
  // Requires mu_.
  void EmitLocked(const PodChange& change);
  void SnapshotLocked();
  void LogAllLocked();
  // Calls `fn` with mu_ held every `period` until Stop(), once the first list is done.
  void EveryLoop(std::chrono::milliseconds period, void (Agent::*fn)());

  AgentOptions options_;
  PodApi* api_;
  std::vector<EventSink*> sinks_;
  AgentMetrics* metrics_;
  PodFilter filter_;
  Reflector reflector_;

  std::mutex mu_;  // Guards store_ and every call into sinks_.
  PodStore store_;
  std::atomic<bool> listed_{false};
  std::atomic<bool> watch_open_{false};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopped_ = false;
};

}  // namespace ashiato
