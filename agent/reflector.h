// Reflector: client-go's list-then-watch loop for the pods of one node.
//
// - First list: resourceVersion=0 (served from the API server's watch cache),
//   or a paginated quorum list (limit/continue) with `quorum_list`.
// - Watch from the list's resourceVersion with allowWatchBookmarks=true and a
//   randomised timeoutSeconds; on a clean end, watch again from the last
//   resourceVersion seen (events and bookmarks).
// - 410 Expired (HTTP or an ERROR event): relist with a quorum list (as
//   client-go does, so the view never goes back in time) and hand the whole
//   list to the handler, which reports what vanished.
// - Other errors: exponential backoff with jitter (reset after a healthy
//   watch), at least the server's Retry-After; then watch again from the last
//   resourceVersion (a 410 then sends us to relist).
// - Every request carries fieldSelector=spec.nodeName=<node>, unless
//   `all_nodes` (debugging, oneshot only).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "agent/pod_api.h"
#include "common/backoff.h"
#include "common/pod_record.h"

namespace ashiato {

struct ReflectorOptions {
  // spec.nodeName to select. Required unless all_nodes.
  std::string node;
  // No field selector (debugging only; refused by the agent outside --oneshot).
  bool all_nodes = false;
  // labelSelector sent to the server ("" = none).
  std::string label_selector;
  // Paginated quorum list for the first list too.
  bool quorum_list = false;
  // Page size of quorum lists.
  int page_size = 500;
  // Watch timeoutSeconds, uniform in [min, max].
  int watch_timeout_min_seconds = 300;
  int watch_timeout_max_seconds = 600;
  // Backoff after errors; reset once a watch stayed open this long.
  BackoffOptions backoff{std::chrono::milliseconds(800), std::chrono::milliseconds(30000), 2.0,
                         std::chrono::milliseconds(60000)};
  std::chrono::milliseconds healthy_after{std::chrono::seconds(30)};
  // Seed for jitter (0 = random).
  uint64_t seed = 0;
};

// What the reflector reports. Called on the reflector's thread.
class ReflectorHandler {
 public:
  virtual ~ReflectorHandler() = default;
  // A complete list of the node's pods (first list or relist).
  virtual void OnList(const std::vector<PodRecord>& pods) = 0;
  // One watch event: "ADDED", "MODIFIED" or "DELETED".
  virtual void OnWatchEvent(const std::string& type, const PodRecord& pod) = 0;
  // The watch stream is open (true) or closed (false): readiness.
  virtual void OnWatchState(bool open) { (void)open; }
  // Diagnostics for metrics.
  virtual void OnRelist() {}
  virtual void OnWatchRestart() {}
  virtual void OnApiError(const Status& status) { (void)status; }
};

class Reflector {
 public:
  Reflector(ReflectorOptions options, PodApi* api, ReflectorHandler* handler);

  // Lists once (resourceVersion=0, or quorum with quorum_list) and returns
  // the pods and the list's resourceVersion. No retries.
  Result<std::vector<PodRecord>> ListOnce(bool quorum, std::string* resource_version);

  // Lists, then watches until Stop(). Returns OK after Stop().
  Status Run();
  // Makes Run() return soon: cancels the call in flight. Thread-safe.
  void Stop();

  // The query the reflector sends, e.g. for logs: "fieldSelector=...".
  std::string SelectorQuery() const;

 private:
  // Sleeps up to `d` unless stopped; returns false when stopped.
  bool SleepUnlessStopped(std::chrono::milliseconds d);
  std::chrono::milliseconds DelayFor(const Status& s);
  // Runs one watch from last_rv_. Returns OK on a clean end.
  Status WatchOnce(int* events_seen);

  ReflectorOptions options_;
  PodApi* api_;
  ReflectorHandler* handler_;
  Backoff backoff_;
  std::mt19937_64 rng_;
  std::string last_rv_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
};

}  // namespace ashiato
