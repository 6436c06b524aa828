#include "aggregator/service.h"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace ashiato {
namespace {

// What Kubernetes accepts as a namespace name (a DNS-1123 label). Checked
// before the name reaches an authorizer or the store: anything else names no
// namespace, and may not even be UTF-8 that a SubjectAccessReview can carry.
bool IsNamespaceName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return alnum(s.front()) && alnum(s.back());
}

}  // namespace

AggregatorService::AggregatorService(ServiceOptions options, ClusterState* state,
                                     Authenticator* auth, AggregatorMetrics* metrics,
                                     ReadAuthorizer* reader)
    : options_(std::move(options)),
      state_(state),
      auth_(auth),
      metrics_(metrics),
      reader_(reader),
      query_(options_.query, state, &state->store()) {}

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
  if (path == "/metrics") return Metrics(req);
  if (path.rfind("/v1/", 0) == 0) return Read(req);
  return ErrorResponse(404, NotFound("no such endpoint: " + path));
}

HttpResponse AggregatorService::Deny(const Status& st) {
  int code = HttpStatusFor(st);
  if (metrics_) {
    if (code == 401) metrics_->reads_unauthenticated->Increment();
    if (code == 403) metrics_->reads_forbidden->Increment();
    if (code == 503) metrics_->reads_unavailable->Increment();
  }
  return ErrorResponse(code, st);
}

Result<NamespaceAccess> AggregatorService::ReadAccess(const HttpRequest& req,
                                                      const std::string& endpoint,
                                                      const std::string& ns) {
  if (!options_.read_auth) return NamespaceAccess::All();
  // Misconfigured (no authorizer): fail closed rather than answer everyone.
  if (!reader_) return Status(StatusCode::kUnavailable, "read authorization is not configured");
  auto user = reader_->Authenticate(req.Header("authorization"));
  if (!user.ok()) return user.status();
  if (endpoint == "nodes" || !ns.empty()) {
    // One question: cluster-wide, or that namespace.
    auto all = reader_->MayListPods(*user, "");
    if (!all.ok()) return all.status();
    if (*all) return NamespaceAccess::All();
    if (ns.empty()) {
      return Status(StatusCode::kPermissionDenied,
                    "\"" + user->username + "\" may not list pods in all namespaces, which " +
                        "/v1/nodes needs");
    }
    auto one = reader_->MayListPods(*user, ns);
    if (!one.ok()) return one.status();
    if (!*one) {
      return Status(StatusCode::kPermissionDenied,
                    "\"" + user->username + "\" may not list pods in namespace \"" + ns + "\"");
    }
    return NamespaceAccess{false, {ns}};
  }
  // Every namespace the store knows of, each asked about (cached).
  auto all = reader_->MayListPods(*user, "");
  if (!all.ok()) return all.status();
  if (*all) return NamespaceAccess::All();
  auto candidates = state_->store().Namespaces();
  if (!candidates.ok()) return candidates.status();
  auto access = reader_->PodAccess(*user, *candidates);
  if (!access.ok()) return access.status();
  if (!access->all && access->namespaces.empty()) {
    return Status(StatusCode::kPermissionDenied,
                  "\"" + user->username + "\" may not list pods in any namespace");
  }
  return access;
}

HttpResponse AggregatorService::Read(const HttpRequest& req) {
  HttpResponse r = Answer(req);
  // Every answer (errors too) says which cluster it describes: first in the
  // object, without re-serializing what may be a large body.
  if (!options_.cluster.empty() && !r.body.empty() && r.body[0] == '{') {
    std::string field = "{\"cluster\":";
    AppendJsonString(options_.cluster, &field);
    if (r.body.size() > 2) field += ',';
    r.body.replace(0, 1, field);
  }
  return r;
}

HttpResponse AggregatorService::Answer(const HttpRequest& req) {
  const std::string& path = req.path;
  // The endpoint, and the one namespace it is about (if any).
  std::string endpoint, ns, rest;
  if (path == "/v1/nodes") {
    endpoint = "nodes";
  } else if (path == "/v1/pods") {
    endpoint = "pods";
    ns = req.Query("namespace");
  } else if (path.rfind("/v1/pods/", 0) == 0) {
    endpoint = "pod";
    rest = path.substr(9);
    ns = rest.substr(0, rest.find('/'));
    if (ns.empty()) return ErrorResponse(404, NotFound("use /v1/pods/{namespace}/{name}"));
  } else if (path.rfind("/v1/ips/", 0) == 0) {
    endpoint = "ip";
    rest = path.substr(8);
  } else if (path == "/v1/history") {
    endpoint = "history";
    ns = req.Query("namespace");
  } else if (path == "/v1/placements") {
    endpoint = "placements";
    ns = req.Query("namespace");
  } else if (path == "/v1/images") {
    endpoint = "images";
  } else if (path.rfind("/v1/images/", 0) == 0) {
    endpoint = "image";
    rest = path.substr(11);
  } else {
    // Unknown endpoints are 404 for everyone: nothing to protect.
    return ErrorResponse(404, NotFound("no such endpoint: " + path));
  }
  if (!ns.empty() && !IsNamespaceName(ns)) {
    return ErrorResponse(400, InvalidArgument("namespace: \"" + ns +
                                              "\" is not a namespace name (a DNS-1123 label)"));
  }
  auto access = ReadAccess(req, endpoint, ns);
  if (!access.ok()) return Deny(access.status());
  if (metrics_) (access->all ? metrics_->reads_allowed : metrics_->reads_filtered)->Increment();
  const NamespaceAccess& a = *access;
  if (endpoint == "nodes") return query_.Nodes(a);
  if (endpoint == "pods") return query_.Pods(req, a);
  if (endpoint == "pod") return query_.PodByName(req, rest, a);
  if (endpoint == "ip") return query_.Ip(req, rest, a);
  if (endpoint == "history") return query_.History(req, a);
  if (endpoint == "placements") return query_.Placements(req, a);
  if (endpoint == "images") return query_.Images(req, a);
  return query_.Image(req, rest, a);
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
  if (r.outcome == ApplyOutcome::kUnavailable) {
    // Not committed: the agent keeps the batch and retries after Retry-After.
    if (metrics_) metrics_->reports_unavailable->Increment();
    return ErrorResponse(503, r.error);
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
  std::string instance = state_->store().instance();
  char out[512];
  int n = std::snprintf(out, sizeof(out),
                        "{\"applied\":%zu,\"committed_seq\":%llu,\"duplicate\":%zu,"
                        "\"events\":%zu,\"instance\":\"%s\",\"replayed\":%s,\"seq\":%llu,"
                        "\"stale\":%zu}",
                        r.applied, static_cast<unsigned long long>(r.committed_seq), r.duplicate,
                        r.events, instance.c_str(),
                        r.outcome == ApplyOutcome::kReplayed ? "true" : "false",
                        static_cast<unsigned long long>(report->seq), r.stale);
  return HttpResponse::Json(200, std::string(out, static_cast<size_t>(n)));
}

HttpResponse AggregatorService::Metrics(const HttpRequest& req) {
  if (options_.metrics_auth && !reader_) {
    return Deny(Status(StatusCode::kUnavailable, "metrics authorization is not configured"));
  }
  if (options_.metrics_auth) {
    // As kube-rbac-proxy: a token for the API server's audience (what
    // Prometheus sends), and `get` on the non-resource URL /metrics.
    auto user = reader_->Authenticate(req.Header("authorization"), "");
    if (!user.ok()) return Deny(user.status());
    auto allowed = reader_->Allowed(*user, AccessQuestion{"get", "", "", "", "/metrics"});
    if (!allowed.ok()) return Deny(allowed.status());
    if (!*allowed) {
      return Deny(
          Status(StatusCode::kPermissionDenied, "\"" + user->username + "\" may not get /metrics"));
    }
    if (metrics_) metrics_->reads_allowed->Increment();
  }
  if (!metrics_) return HttpResponse::Text(200, "");
  state_->UpdateGauges();
  prometheus::TextSerializer serializer;
  HttpResponse r = HttpResponse::Text(200, serializer.Serialize(metrics_->registry->Collect()));
  r.content_type = "text/plain; version=0.0.4";
  return r;
}

}  // namespace ashiato
