// DeploymentSender: delivers the deployment-record outbox (rows committed
// by DeploymentCensus with the pod change that caused them) to
// POST {BASE_URL}/orgs/{ORG}/artifacts/metadata/deployment-record, and
// periodically the full list of deployments in use to
// POST {BASE_URL}/orgs/{ORG}/artifacts/metadata/deployment-record/cluster/{CLUSTER}.
//
// `workers` threads; records of one deployment name go out one at a time,
// in the order they were queued. A failed attempt is rescheduled in the
// store (retry_policy.h), so a restart resumes where the last process
// stopped. One line per attempt outcome on `out` (deployment-tracker's
// format, record.h). Stop() drains: no new attempt starts, requests in
// flight get until drain_timeout, and everything undelivered stays in the
// outbox.
#pragma once

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/deploy/census.h"
#include "aggregator/deploy/config.h"
#include "aggregator/deploy/retry_policy.h"
#include "aggregator/store/store.h"
#include "common/http_client.h"

namespace prometheus {
class Registry;
}

namespace ashiato {

class DeploymentSender {
 public:
  // `census` feeds the reconciliation (may be null: no reconciliation).
  // Metrics are registered on `registry` when non-null.
  DeploymentSender(DeployConfig config, Store* store, const DeploymentCensus* census,
                   prometheus::Registry* registry, std::FILE* out);
  ~DeploymentSender();

  void Start();
  // New rows were committed: wake an idle worker.
  void Notify();
  // Drains (see above) and joins the threads.
  void Stop();

 private:
  struct Metrics;
  void Work(size_t index);
  void Reconcile();
  bool ReconcileOnce(HttpClient& client);
  void Print(const std::string& line);
  HttpClientOptions ClientOptions() const;
  std::vector<std::pair<std::string, std::string>> Headers() const;
  void RefreshDepth();

  DeployConfig config_;
  Store* store_;
  const DeploymentCensus* census_;
  std::FILE* out_;
  std::unique_ptr<Metrics> metrics_;
  RetryOptions retry_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t wakeups_ = 0;
  std::set<std::string> busy_;                        // Deployment names with a request in flight.
  std::vector<std::unique_ptr<HttpClient>> clients_;  // One per worker, + reconciler.
  std::vector<std::thread> threads_;
  std::mutex print_mu_;
};

}  // namespace ashiato
