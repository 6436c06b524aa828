// AggregatorService: the HTTP API of ashiato-aggregator (docs/api.md):
// POST /v1/reports (agents), the JSON query endpoints (aggregator/query.h),
// /healthz, /readyz, /metrics. Owns no threads: HttpServer calls Handle() on its event threads.
//
// Who may do what (docs/security.md): pushes need the agent identity's
// token, bound to the report's node (aggregator/auth.h); reads need a token
// whose user may list pods, and see only the namespaces where it may
// (aggregator/authz.h); /metrics needs `get` on the non-resource URL
// /metrics; /healthz and /readyz are open. Authentication and authorization
// run before any lock of the state or the store is taken.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "aggregator/auth.h"
#include "aggregator/authz.h"
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
  // Reads (/v1/* GETs) need a token and are filtered by what its user may
  // list; needs a ReadAuthorizer. Off: every read is answered in full.
  bool read_auth = false;
  // /metrics needs a token whose user may `get` the URL /metrics (the token
  // reviewed for the API server's own audience, as kube-rbac-proxy does).
  bool metrics_auth = false;
  // --cluster-name: "cluster" of every /v1 answer ("" = no such field).
  std::string cluster;
};

class AggregatorService {
 public:
  // `auth` null means --auth none; `reader` is required for read_auth and
  // metrics_auth. All pointers must outlive the service.
  AggregatorService(ServiceOptions options, ClusterState* state, Authenticator* auth,
                    AggregatorMetrics* metrics, ReadAuthorizer* reader = nullptr);

  HttpResponse Handle(const HttpRequest& request);

  // /readyz answers 200 once set (state restored and serving).
  void SetReady(bool ready) { ready_ = ready; }

 private:
  HttpResponse PostReport(const HttpRequest& request);
  HttpResponse Metrics(const HttpRequest& request);
  HttpResponse Read(const HttpRequest& request);
  HttpResponse Answer(const HttpRequest& request);
  // What the caller of a read may see, or the error answer.
  Result<NamespaceAccess> ReadAccess(const HttpRequest& request, const std::string& endpoint,
                                     const std::string& ns);
  // Counts a denied read and answers it.
  HttpResponse Deny(const Status& status);

  ServiceOptions options_;
  ClusterState* state_;
  Authenticator* auth_;
  AggregatorMetrics* metrics_;
  ReadAuthorizer* reader_;
  QueryApi query_;
  std::atomic<bool> ready_{false};
};

}  // namespace ashiato
