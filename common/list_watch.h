// ListWatcher: client-go's list-then-watch loop over one collection of the
// Kubernetes API (pods of a node for the agent, the cluster's nodes for the
// aggregator), on JSON objects. What the objects mean is the handler's job.
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
  // Diagnostics for metrics.
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

  // Lists, then watches until Stop(). Returns OK after Stop().
  Status Run();
  // Makes Run() return soon: cancels the call in flight. Thread-safe.
  void Stop();
  bool stopped() const { return stopped_.load(); }

 private:
  // Sleeps up to `d` unless stopped; returns false when stopped.
  bool SleepUnlessStopped(std::chrono::milliseconds d);
  std::chrono::milliseconds DelayFor(const Status& s);
  // Runs one watch from last_rv_. Returns OK on a clean end.
  Status WatchOnce(int* events_seen);

  ListWatchOptions options_;
  WatchApi* api_;
  ListWatchHandler* handler_;
  Backoff backoff_;
  std::mt19937_64 rng_;
  std::string last_rv_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
};

}  // namespace ashiato
