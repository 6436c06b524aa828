// Aggregator: ashiato-aggregator assembled: the history store, the state
// cache with dedup, the unified log writer, authentication, the HTTP API
// on HttpServer, metrics, and a maintenance thread (store recovery,
// retention). main.cc only parses flags and waits for SIGTERM; tests run
// the same object in-process.
#pragma once

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "aggregator/auth.h"
#include "aggregator/authz.h"
#include "aggregator/deploy/census.h"
#include "aggregator/deploy/sender.h"
#include "aggregator/heap_trim.h"
#include "aggregator/image_census.h"
#include "aggregator/log_writer.h"
#include "aggregator/metrics.h"
#include "aggregator/node_directory.h"
#include "aggregator/node_watch.h"
#include "aggregator/options.h"
#include "aggregator/service.h"
#include "aggregator/state.h"
#include "aggregator/store/store.h"
#include "common/http_server.h"
#include "common/live_config_watch.h"

namespace ashiato {

// What the aggregator asks the Kubernetes API about callers.
struct AuthApis {
  // Agent tokens; required with --auth tokenreview.
  std::unique_ptr<TokenReviewer> agent_tokens;
  // The pods of pod-bound agent tokens (node binding on Kubernetes < 1.30).
  std::unique_ptr<PodLookup> pods;
  // Reader tokens and SubjectAccessReview; required when --read-auth or
  // --metrics-auth is tokenreview.
  std::unique_ptr<TokenReviewer> reader_tokens;
  std::unique_ptr<AccessReviewer> access;
};

class Aggregator {
 public:
  // Builds everything but serves nothing yet. `log_out` receives the
  // unified log. InvalidArgument when an API that the options need is
  // missing; FailedPrecondition when the store was written by a newer version.
  static Result<std::unique_ptr<Aggregator>> Create(const AggregatorOptions& options, AuthApis apis,
                                                    std::FILE* log_out = stdout,
                                                    const Clock* clock = nullptr);
  // Agent authentication only (`reviewer`); reads and /metrics must be
  // configured open (--read-auth none).
  static Result<std::unique_ptr<Aggregator>> Create(const AggregatorOptions& options,
                                                    std::unique_ptr<TokenReviewer> reviewer,
                                                    std::FILE* log_out = stdout,
                                                    const Clock* clock = nullptr);
  ~Aggregator();

  // Watches the cluster's Nodes through `api` from Start() (addresses and
  // topology on log lines and answers); call before Start(). `api` must
  // outlive the aggregator.
  void WatchNodes(WatchApi* api) { node_watch_api_ = api; }
  NodeDirectory& node_directory() { return *node_directory_; }
  // Watches the live configuration ConfigMap (options.config_map) through
  // `api` from Start(); call before Start(). `api` must outlive the
  // aggregator and serve nothing else.
  void WatchLiveConfig(WatchApi* api) { config_watch_api_ = api; }
  // Observers see every committed change; add before Start().
  void AddObserver(PodObserver* observer) { state_->AddObserver(observer); }
  // Loads the state from the store and starts serving.
  Status Start();
  // Stops serving (requests being handled complete first), writes the
  // committed log lines (bounded wait: stdout may be stalled). Idempotent.
  void Stop();

  uint16_t port() const { return server_ ? server_->port() : 0; }
  ClusterState& state() { return *state_; }
  Store& store() { return *store_; }
  LogWriter& log_writer() { return *log_writer_; }
  AggregatorMetrics& metrics() { return *metrics_; }

 private:
  Aggregator() = default;
  void Maintain();

  AggregatorOptions options_;
  const Clock* clock_ = nullptr;
  std::unique_ptr<AggregatorMetrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ImageCensus> image_census_;        // Outlives state_, which calls it.
  std::unique_ptr<DeploymentCensus> deploy_census_;  // Set when deployment records are on.
  std::unique_ptr<DeploymentSender> deploy_sender_;
  std::unique_ptr<NodeDirectory> node_directory_;  // Outlives state_, which reads it.
  std::unique_ptr<ClusterState> state_;
  std::unique_ptr<LogWriter> log_writer_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<ReadAuthorizer> reader_;
  std::unique_ptr<AggregatorService> service_;
  std::unique_ptr<HttpServer> server_;
  WatchApi* node_watch_api_ = nullptr;
  std::unique_ptr<NodeWatch> node_watch_;
  WatchApi* config_watch_api_ = nullptr;
  std::unique_ptr<LiveConfigWatch> config_watch_;

  std::mutex maintain_mu_;
  std::condition_variable maintain_cv_;
  bool stopping_ = false;
  std::thread maintainer_;
  HeapTrimmer heap_trimmer_;  // Used by the maintainer thread only.
};

}  // namespace ashiato
