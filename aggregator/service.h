// AggregatorService: the HTTP API of ashiato-aggregator (docs/api.md):
// POST /v1/reports (agents) and the JSON query endpoints, /healthz, /readyz,
// /metrics. Owns no threads: HttpServer calls Handle() on its event threads.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "aggregator/auth.h"
#include "aggregator/metrics.h"
#include "aggregator/state.h"
#include "common/http_server.h"
#include "common/report.h"

namespace ashiato {

struct ServiceOptions {
  // Largest report after gzip decompression (a compression bomb is 413).
  size_t max_decoded_bytes = 64 << 20;
  // Per-report decoding limits.
  ReportLimits limits;
  // Default and maximum `limit` of GET /v1/history.
  size_t history_default_limit = 1000;
  size_t history_max_limit = 100000;
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
  HttpResponse GetPods(const HttpRequest& request);
  HttpResponse GetPod(const std::string& rest);
  HttpResponse GetIp(const HttpRequest& request, const std::string& ip);
  HttpResponse GetHistory(const HttpRequest& request);
  HttpResponse Metrics();

  ServiceOptions options_;
  ClusterState* state_;
  Authenticator* auth_;
  AggregatorMetrics* metrics_;
  std::atomic<bool> ready_{false};
};

// {"error": message, "code": "InvalidArgument"} with the matching status.
HttpResponse ErrorResponse(int http_status, const Status& status);

}  // namespace ashiato
