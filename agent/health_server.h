// The agent's /healthz, /readyz and /metrics on common HttpServer.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "agent/agent_metrics.h"
#include "common/http_server.h"

namespace ashiato {

// Serves /healthz (always 200 while the process runs), /readyz (200 iff
// `ready()`, else 503) and /metrics (Prometheus text from `metrics`).
Result<std::unique_ptr<HttpServer>> StartHealthServer(const std::string& listen,
                                                      std::function<bool()> ready,
                                                      AgentMetrics* metrics);

}  // namespace ashiato
