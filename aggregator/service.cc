#include "aggregator/service.h"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace ashiato {
namespace {

using nlohmann::json;

int HttpStatusFor(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
      return 409;
    case StatusCode::kResourceExhausted:
      return 413;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse JsonOk(const json& j) { return HttpResponse::Json(200, Dump(j)); }

Result<std::optional<SystemTime>> TimeParam(const HttpRequest& r, const std::string& key) {
  std::string v = r.Query(key);
  if (v.empty()) return std::optional<SystemTime>();
  auto t = ParseRfc3339(v);
  if (!t) return InvalidArgument(key + ": expected an RFC 3339 time, got \"" + v + "\"");
  return std::optional<SystemTime>(*t);
}

}  // namespace

HttpResponse ErrorResponse(int http_status, const Status& status) {
  json j = {{"error", status.message()}, {"code", StatusCodeName(status.code())}};
  HttpResponse r = HttpResponse::Json(http_status, Dump(j));
  if (http_status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (http_status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

AggregatorService::AggregatorService(ServiceOptions options, ClusterState* state,
                                     Authenticator* auth, AggregatorMetrics* metrics)
    : options_(std::move(options)), state_(state), auth_(auth), metrics_(metrics) {}

HttpResponse AggregatorService::Handle(const HttpRequest& req) {
  const std::string& path = req.path;
  if (path == "/v1/reports") {
    if (req.method != "POST") return ErrorResponse(405, InvalidArgument("use POST"));
    return PostReport(req);
  }
  if (req.method != "GET" && req.method != "HEAD") {
    return ErrorResponse(405, InvalidArgument("method not allowed"));
  }
  if (path == "/healthz") return HttpResponse::Text(200, "ok\n");
  if (path == "/readyz") {
    return ready_ ? HttpResponse::Text(200, "ok\n") : HttpResponse::Text(503, "not ready\n");
  }
  if (path == "/metrics") return Metrics();
  if (path == "/v1/nodes") return JsonOk(state_->Nodes());
  if (path == "/v1/pods") return GetPods(req);
  if (path.rfind("/v1/pods/", 0) == 0) return GetPod(path.substr(9));
  if (path.rfind("/v1/ips/", 0) == 0) return GetIp(req, path.substr(8));
  if (path == "/v1/history") return GetHistory(req);
  if (path == "/v1/images") return JsonOk(state_->Images());
  return ErrorResponse(404, NotFound("no such endpoint: " + path));
}

HttpResponse AggregatorService::PostReport(const HttpRequest& req) {
  if (metrics_) metrics_->report_bytes->Increment(static_cast<double>(req.body.size()));
  AgentIdentity who;
  if (auth_) {
    auto id = auth_->Authenticate(req.Header("authorization"));
    if (!id.ok()) {
      int code = HttpStatusFor(id.status());
      if (metrics_) {
        if (code == 401) metrics_->reports_unauthenticated->Increment();
        if (code == 403) metrics_->reports_forbidden->Increment();
      }
      return ErrorResponse(code, id.status());
    }
    who = *id;
  }
  auto report = DecodeReportBody(req.body, req.Header("content-encoding"),
                                 options_.max_decoded_bytes, options_.limits);
  if (!report.ok()) {
    int code = HttpStatusFor(report.status());
    if (metrics_) (code == 413 ? metrics_->reports_too_large : metrics_->reports_bad)->Increment();
    return ErrorResponse(code, report.status());
  }
  if (auth_) {
    Status st = Authenticator::AuthorizeNode(who, report->node);
    if (!st.ok()) {
      if (metrics_) metrics_->reports_forbidden->Increment();
      return ErrorResponse(403, st);
    }
  }
  // An agent only sees its own node's pods: a record for another node is
  // either a bug or an attempt to write another node's state.
  for (size_t i = 0; i < report->records.size(); ++i) {
    const PodRecord& p = report->records[i].pod;
    if (p.node_name != report->node) {
      if (metrics_) metrics_->reports_bad->Increment();
      return ErrorResponse(
          400,
          InvalidArgument("report.r[" + std::to_string(i) + "]: pod is on node \"" + p.node_name +
                          "\", not the reporting node \"" + report->node + "\""));
    }
  }
  ApplyResult r = state_->Apply(std::move(*report));  // Keeps node, epoch, seq.
  if (metrics_) {
    metrics_->records_applied->Increment(static_cast<double>(r.applied));
    metrics_->records_duplicate->Increment(static_cast<double>(r.duplicate));
    metrics_->records_stale->Increment(static_cast<double>(r.stale));
  }
  if (r.outcome == ApplyOutcome::kStaleEpoch) {
    if (metrics_) metrics_->reports_stale_epoch->Increment();
    return ErrorResponse(409, Conflict("epoch " + report->epoch + " of node " + report->node +
                                       " was replaced by a newer agent process"));
  }
  if (metrics_) {
    (r.outcome == ApplyOutcome::kReplayed ? metrics_->reports_replayed : metrics_->reports_accepted)
        ->Increment();
  }
  // The same object nlohmann would dump (keys sorted), without building it.
  char out[256];
  int n = std::snprintf(out, sizeof(out),
                        "{\"applied\":%zu,\"duplicate\":%zu,\"events\":%zu,\"replayed\":%s,"
                        "\"seq\":%llu,\"stale\":%zu}",
                        r.applied, r.duplicate, r.events,
                        r.outcome == ApplyOutcome::kReplayed ? "true" : "false",
                        static_cast<unsigned long long>(report->seq), r.stale);
  return HttpResponse::Json(200, std::string(out, static_cast<size_t>(n)));
}

HttpResponse AggregatorService::GetPods(const HttpRequest& req) {
  PodQuery q;
  q.node = req.Query("node");
  q.namespace_ = req.Query("namespace");
  q.ip = req.Query("ip");
  q.phase = req.Query("phase");
  auto sel = LabelSelector::Parse(req.Query("selector"));
  if (!sel.ok()) return ErrorResponse(400, sel.status());
  q.selector = std::move(sel.value());
  return JsonOk(state_->Pods(q));
}

HttpResponse AggregatorService::GetPod(const std::string& rest) {
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size() ||
      rest.find('/', slash + 1) != std::string::npos) {
    return ErrorResponse(404, NotFound("use /v1/pods/{namespace}/{name}"));
  }
  auto j = state_->PodByName(rest.substr(0, slash), rest.substr(slash + 1));
  if (!j) return ErrorResponse(404, NotFound("no pod " + rest + " in the aggregator's memory"));
  return JsonOk(*j);
}

HttpResponse AggregatorService::GetIp(const HttpRequest& req, const std::string& ip) {
  if (ip.empty() || ip.find('/') != std::string::npos) {
    return ErrorResponse(404, NotFound("use /v1/ips/{ip}"));
  }
  auto at = TimeParam(req, "at");
  if (!at.ok()) return ErrorResponse(400, at.status());
  return JsonOk(state_->Ip(ip, *at));
}

HttpResponse AggregatorService::GetHistory(const HttpRequest& req) {
  auto since = TimeParam(req, "since");
  if (!since.ok()) return ErrorResponse(400, since.status());
  auto until = TimeParam(req, "until");
  if (!until.ok()) return ErrorResponse(400, until.status());
  size_t limit = options_.history_default_limit;
  if (std::string l = req.Query("limit"); !l.empty()) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(l.c_str(), &end, 10);
    if (!std::isdigit(static_cast<unsigned char>(l[0])) || *end != '\0' || n == 0) {
      return ErrorResponse(400, InvalidArgument("limit: expected a positive integer"));
    }
    limit = std::min<size_t>(n, options_.history_max_limit);
  }
  return JsonOk(state_->History(*since, *until, limit));
}

HttpResponse AggregatorService::Metrics() {
  if (!metrics_) return HttpResponse::Text(200, "");
  state_->UpdateGauges();
  prometheus::TextSerializer serializer;
  HttpResponse r = HttpResponse::Text(200, serializer.Serialize(metrics_->registry->Collect()));
  r.content_type = "text/plain; version=0.0.4";
  return r;
}

}  // namespace ashiato
