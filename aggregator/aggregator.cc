#include "aggregator/aggregator.h"

#include <spdlog/spdlog.h>

namespace ashiato {

Result<std::unique_ptr<Aggregator>> Aggregator::Create(const AggregatorOptions& options,
                                                       std::unique_ptr<TokenReviewer> reviewer,
                                                       std::FILE* log_out, const Clock* clock) {
  std::unique_ptr<Aggregator> a(new Aggregator());
  a->options_ = options;
  a->metrics_ = std::make_unique<AggregatorMetrics>(std::make_shared<prometheus::Registry>());
  StateOptions so;
  so.history_size = options.history_size;
  so.stale_after = options.stale_after;
  so.state_file = options.state_file;
  a->state_ = std::make_unique<ClusterState>(so, log_out, a->metrics_.get(), clock);
  if (options.auth == "tokenreview") {
    if (!reviewer) return InvalidArgument("--auth tokenreview needs access to the API server");
    AuthOptions ao;
    ao.agent_identity = options.agent_identity;
    ao.audience = options.audience;
    ao.cache_ttl = options.token_cache_ttl;
    a->auth_ = std::make_unique<Authenticator>(ao, std::move(reviewer), a->metrics_.get());
  } else if (options.auth != "none") {
    return InvalidArgument("--auth must be tokenreview or none, not \"" + options.auth + "\"");
  }
  ServiceOptions svc;
  svc.max_decoded_bytes = options.max_body_bytes;
  a->service_ =
      std::make_unique<AggregatorService>(svc, a->state_.get(), a->auth_.get(), a->metrics_.get());
  return a;
}

Aggregator::~Aggregator() { Stop(); }

Status Aggregator::Start() {
  Status st = state_->Open();
  if (!st.ok()) return st;
  HttpServerOptions ho;
  ho.listen = options_.listen;
  ho.max_connections = options_.max_connections;
  // Thousands of idle agent connections: 16 KiB each instead of MHD's 32 KiB
  // is plenty for headers (a bearer token is ~1-2 KiB); bodies live elsewhere.
  ho.connection_memory_bytes = 16 * 1024;
  ho.max_body_bytes = options_.max_body_bytes;
  // Several event threads: a TokenReview cache miss waits on the API
  // server inline, and the other threads keep serving meanwhile.
  ho.threads = options_.threads;
  ho.connection_timeout_seconds = 300;
  AggregatorService* svc = service_.get();
  auto server = HttpServer::Start(ho, [svc](const HttpRequest& r) { return svc->Handle(r); });
  if (!server.ok()) return server.status();
  server_ = std::move(server.value());
  service_->SetReady(true);
  spdlog::info("serving on port {} (auth {})", server_->port(), options_.auth);
  return Status::Ok();
}

void Aggregator::Stop() {
  if (service_) service_->SetReady(false);
  if (server_) {
    server_->Stop();
    server_.reset();
  }
  if (state_) state_->Flush();
}

}  // namespace ashiato
