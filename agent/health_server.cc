#include "agent/health_server.h"

namespace ashiato {

Result<std::unique_ptr<HttpServer>> StartHealthServer(const std::string& listen,
                                                      std::function<bool()> ready,
                                                      AgentMetrics* metrics) {
  HttpServerOptions options;
  options.listen = listen;
  options.max_connections = 64;
  options.connection_timeout_seconds = 60;
  return HttpServer::Start(options, [ready, metrics](const HttpRequest& req) {
    if (req.method != "GET" && req.method != "HEAD") return HttpResponse::Text(405, "GET only\n");
    if (req.path == "/healthz") return HttpResponse::Text(200, "ok\n");
    if (req.path == "/readyz") {
      return ready() ? HttpResponse::Text(200, "ok\n")
                     : HttpResponse::Text(503, "not ready: first list or watch pending\n");
    }
    if (req.path == "/metrics") {
      HttpResponse r = HttpResponse::Text(200, metrics->Serialize());
      r.content_type = "text/plain; version=0.0.4";
      return r;
    }
    return HttpResponse::Text(404, "not found\n");
  });
}

}  // namespace ashiato
