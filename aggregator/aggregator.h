// Aggregator: ashiato-aggregator assembled: state, authentication, the HTTP
// API on HttpServer, metrics. main.cc only parses flags and waits for SIGTERM;
// tests run the same object in-process.
#pragma once

#include <cstdio>
#include <memory>

#include "aggregator/auth.h"
#include "aggregator/metrics.h"
#include "aggregator/options.h"
#include "aggregator/service.h"
#include "aggregator/state.h"
#include "common/http_server.h"

namespace ashiato {

class Aggregator {
 public:
  // Builds everything but serves nothing yet. `reviewer` is required when
  // options.auth == "tokenreview". `log_out` receives the unified log.
  static Result<std::unique_ptr<Aggregator>> Create(const AggregatorOptions& options,
                                                    std::unique_ptr<TokenReviewer> reviewer,
                                                    std::FILE* log_out = stdout,
                                                    const Clock* clock = nullptr);
  ~Aggregator();

  // Observers see every applied change; add before Start().
  void AddObserver(PodObserver* observer) { state_->AddObserver(observer); }
  // Restores the state file and starts serving.
  Status Start();
  // Stops serving (requests being handled complete first), flushes the log
  // and the state file. Idempotent.
  void Stop();

  uint16_t port() const { return server_ ? server_->port() : 0; }
  ClusterState& state() { return *state_; }
  AggregatorMetrics& metrics() { return *metrics_; }

 private:
  Aggregator() = default;
  AggregatorOptions options_;
  std::unique_ptr<AggregatorMetrics> metrics_;
  std::unique_ptr<ClusterState> state_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<AggregatorService> service_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace ashiato
