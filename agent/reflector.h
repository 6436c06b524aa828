// Reflector: client-go's list-then-watch loop for the pods of one node.
//
// - First list: resourceVersion=0 (served from the API server's watch cache),
//   or a paginated quorum list (limit/continue) with `quorum_list`.
// - Watch from the list's resourceVersion with allowWatchBookmarks=true and a
//   randomised timeoutSeconds; on a clean end, watch again from the last
//   resourceVersion seen (events and bookmarks).
// - 410 Expired (HTTP or an ERROR event): relist as client-go does
//   (relistResourceVersion): at the last resourceVersion seen, without
//   `limit`, so the watch cache answers it (NotOlderThan: never back in
//   time) instead of 5,000 agents scanning etcd after an API server restart;
//   only if that list is itself 410 Expired or "Too large resource version"
//   fall back to a paginated quorum list (resourceVersion unset). The whole
//   list goes to the handler, which reports what vanished.
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
  // After a watch 410, relist at the last resourceVersion seen (client-go).
  // false: relist with a quorum list at once (the behaviour before issue 15,
  // kept so the relist benchmark can compare both in one run).
  bool relist_from_cache = true;
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

// True iff a list failed because the server cannot serve that
// resourceVersion: 410 Expired, or 504 "Too large resource version" (a watch
// cache behind the RV, e.g. a freshly restarted API server).
bool IsResourceVersionUnavailable(const Status& status);

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
  // Lists once at `at`: "" = quorum, paginated by page_size; "0" or an RV =
  // one unpaginated request the watch cache can serve.
  Result<std::vector<PodRecord>> ListAt(const std::string& at, std::string* resource_version);

  // The resourceVersion the next (re)list asks for, as client-go's
  // relistResourceVersion: "" once the last one proved unavailable (or for
  // quorum_list before the first list), "0" for the first list, else the
  // last resourceVersion seen.
  std::string RelistResourceVersion() const;

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
  // The last list at last_rv_ failed with 410 or too large: next list is quorum.
  bool rv_unavailable_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
};

}  // namespace ashiato
