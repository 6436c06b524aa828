// AggregatorService: the HTTP API of ashiato-aggregator (docs/api.md):
// POST /v1/reports (agents), the JSON query endpoints (aggregator/query.h),
// /healthz, /readyz, /metrics. Owns no threads: HttpServer calls Handle() on its event threads.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "aggregator/auth.h"
#include "aggregator/metrics.h"
#include "aggregator/query.h"
#include "aggregator/state.h"
#include "common/http_server.h"
#include "common/report.h"

namespace ashiato {

struct ServiceOptions {
  // Largest report after gzip decompression (a compression bomb is 413).
  size_t max_decoded_bytes = 64 << 20;
  // Per-report decoding limits.
  ReportLimits limits;
  // Limits of the read endpoints.
  QueryOptions query;
};

class AggregatorService {
 public:
  // `auth` null means --auth none. All pointers must outlive the service.
  AggregatorService(ServiceOptions options, ClusterState* state, Authenticator* auth,
                    AggregatorMetrics* metrics);

  HttpResponse Handle(const HttpRequest& request);

  // /readyz answers 200 once set (state restored and serving).
  void SetReady(bool ready) { ready_ = ready; }

 private:
  HttpResponse PostReport(const HttpRequest& request);
  HttpResponse Metrics();

  ServiceOptions options_;
  ClusterState* state_;
  Authenticator* auth_;
  AggregatorMetrics* metrics_;
  QueryApi query_;
  std::atomic<bool> ready_{false};
};

}  // namespace ashiato
