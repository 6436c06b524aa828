// ListWatcher: client-go's list-then-watch loop over one collection of the
// Kubernetes API (pods of a node for the agent, the cluster's nodes for the
// aggregator), on JSON objects. What the objects mean is the handler's job.
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
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "common/backoff.h"
#include "common/kube_client.h"
#include "common/status.h"

namespace ashiato {

// The two API server calls a ListWatcher makes (GET a list, open a watch),
// behind an interface so tests can script the server.
class WatchApi {
 public:
  virtual ~WatchApi() = default;
  virtual Result<nlohmann::json> Get(const std::string& path_and_query) = 0;
  // As KubeClient::Watch.
  virtual Status Watch(const std::string& path_and_query,
                       const std::function<bool(const nlohmann::json& event)>& on_event,
                       std::chrono::milliseconds timeout) = 0;
  // Aborts the call in flight and every later one. Thread-safe.
  virtual void Cancel() = 0;
  // Undoes Cancel() for later calls.
  virtual void Reset() {}
};

// WatchApi over a real KubeClient.
class KubeWatchApi : public WatchApi {
 public:
  explicit KubeWatchApi(KubeClient* client) : client_(client) {}
  Result<nlohmann::json> Get(const std::string& path_and_query) override {
    return client_->Get(path_and_query);
  }
  Status Watch(const std::string& path_and_query,
               const std::function<bool(const nlohmann::json& event)>& on_event,
               std::chrono::milliseconds timeout) override {
    return client_->Watch(path_and_query, on_event, timeout);
  }
  void Cancel() override { client_->Cancel(); }
  void Reset() override { client_->ResetCancel(); }

 private:
  KubeClient* client_;
};

struct ListWatchOptions {
  // The collection, e.g. "/api/v1/pods" or "/api/v1/nodes".
  std::string path;
  // fieldSelector/labelSelector query parameters ("" = none), URL-encoded.
  std::string selector_query;
  // What the objects are, for log lines ("pod", "node").
  std::string kind = "object";
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

// What the ListWatcher reports. Called on the ListWatcher's thread.
class ListWatchHandler {
 public:
  virtual ~ListWatchHandler() = default;
  // A complete list (first list or relist): OnListBegin, OnListObject for
  // every item, then OnListDone once the list succeeded (a failed list is
  // begun again). Items are handed over one at a time so that a large list
  // is never held twice.
  virtual void OnListBegin() {}
  virtual void OnListObject(const nlohmann::json& object) = 0;
  virtual void OnListDone() = 0;
  // One watch event: "ADDED", "MODIFIED" or "DELETED".
  virtual void OnWatchEvent(const std::string& type, const nlohmann::json& object) = 0;
  // The watch stream is open (true) or closed (false): readiness.
  virtual void OnWatchState(bool open) { (void)open; }
  // Diagnostics for metrics: OnRelist once per relist after a 410, however
  // many lists it takes.
  virtual void OnRelist() {}
  virtual void OnWatchRestart() {}
  virtual void OnApiError(const Status& status) { (void)status; }
};

class ListWatcher {
 public:
  ListWatcher(ListWatchOptions options, WatchApi* api, ListWatchHandler* handler);

  // Lists once (resourceVersion=0, or quorum) and calls `on_object` for each
  // item; sets the list's resourceVersion. No retries.
  Status ListOnce(bool quorum, std::string* resource_version,
                  const std::function<void(const nlohmann::json&)>& on_object);
  // Lists once at `at`: "" = quorum, paginated by page_size; "0" or an RV =
  // one unpaginated request the watch cache can serve.
  Status ListAt(const std::string& at, std::string* resource_version,
                const std::function<void(const nlohmann::json&)>& on_object);

  // The resourceVersion the next (re)list asks for, as client-go's
  // relistResourceVersion: "" once the last one proved unavailable (or for
  // quorum_list before the first list), "0" for the first list, else the
  // last resourceVersion seen.
  std::string RelistResourceVersion() const;

  // Lists, then watches until Stop(). Returns OK after Stop().
  Status Run();
  // Makes Run() return soon: cancels the call in flight. Thread-safe.
  void Stop();
  bool stopped() const { return stopped_.load(); }
  // Ends the watch in flight and relists (at the last resourceVersion, so
  // from the watch cache): the handler sees every object again, e.g. after
  // what it extracts from them changed. Thread-safe.
  void RequestRelist();

 private:
  // Sleeps up to `d` unless stopped; returns false when stopped.
  bool SleepUnlessStopped(std::chrono::milliseconds d);
  std::chrono::milliseconds DelayFor(const Status& s);
  // Runs one watch from last_rv_. Returns OK on a clean end.
  Status WatchOnce(int* events_seen);
  // True (once) after RequestRelist(), and makes the API usable again.
  bool TakeRelistRequest();

  ListWatchOptions options_;
  WatchApi* api_;
  ListWatchHandler* handler_;
  Backoff backoff_;
  std::mt19937_64 rng_;
  std::string last_rv_;
  // The last list at last_rv_ failed with 410 or too large: next list is quorum.
  bool rv_unavailable_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
  bool relist_requested_ = false;  // Guarded by mu_.
};

}  // namespace ashiato
