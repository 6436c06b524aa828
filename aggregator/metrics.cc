#include "aggregator/metrics.h"

#include <string>

namespace ashiato {
namespace {

prometheus::Counter* Counter(prometheus::Registry& r, const std::string& name,
                             const std::string& help, const prometheus::Labels& labels = {}) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}

prometheus::Gauge* Gauge(prometheus::Registry& r, const std::string& name,
                         const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

AggregatorMetrics::AggregatorMetrics(std::shared_ptr<prometheus::Registry> reg)
    : registry(std::move(reg)) {
  auto& r = *registry;
  auto& reports = prometheus::BuildCounter()
                      .Name("ashiato_aggregator_reports_total")
                      .Help("POST /v1/reports by outcome")
                      .Register(r);
  reports_accepted = &reports.Add({{"result", "accepted"}});
  reports_replayed = &reports.Add({{"result", "replayed"}});
  reports_stale_epoch = &reports.Add({{"result", "stale_epoch"}});
  reports_bad = &reports.Add({{"result", "bad_request"}});
  reports_too_large = &reports.Add({{"result", "too_large"}});
  reports_unauthenticated = &reports.Add({{"result", "unauthenticated"}});
  reports_forbidden = &reports.Add({{"result", "forbidden"}});
  report_bytes = Counter(r, "ashiato_aggregator_report_bytes_total",
                         "Report body bytes received (as sent, possibly gzip)");
  auto& records = prometheus::BuildCounter()
                      .Name("ashiato_aggregator_records_total")
                      .Help("Records received, by what deduplication did with them")
                      .Register(r);
  records_applied = &records.Add({{"result", "applied"}});
  records_duplicate = &records.Add({{"result", "duplicate"}});
  records_stale = &records.Add({{"result", "stale"}});
  auto& events = prometheus::BuildCounter()
                     .Name("ashiato_aggregator_events_total")
                     .Help("Unified log lines written, by event")
                     .Register(r);
  events_created = &events.Add({{"event", "CREATED"}});
  events_updated = &events.Add({{"event", "UPDATED"}});
  events_deleted = &events.Add({{"event", "DELETED"}});
  events_sync = &events.Add({{"event", "SYNC"}});
  events_image_added = &events.Add({{"event", "IMAGE_ADDED"}});
  events_image_removed = &events.Add({{"event", "IMAGE_REMOVED"}});
  tokenreview_requests =
      Counter(r, "ashiato_aggregator_tokenreview_requests_total", "TokenReview calls made");
  tokenreview_errors = Counter(r, "ashiato_aggregator_tokenreview_errors_total",
                               "TokenReview calls that failed (not a negative review)");
  token_cache_hits =
      Counter(r, "ashiato_aggregator_token_cache_hits_total", "Tokens answered from the cache");
  agent_pod_lookups = Counter(r, "ashiato_aggregator_agent_pod_lookups_total",
                              "Pod GETs binding a pod-bound agent token to its node");
  agent_pod_lookup_errors = Counter(r, "ashiato_aggregator_agent_pod_lookup_errors_total",
                                    "Pod GETs for agent tokens that failed");
  auto& reads = prometheus::BuildCounter()
                    .Name("ashiato_aggregator_reads_total")
                    .Help("Query API and /metrics requests by authorization outcome")
                    .Register(r);
  reads_allowed = &reads.Add({{"result", "allowed"}});
  reads_filtered = &reads.Add({{"result", "filtered"}});
  reads_unauthenticated = &reads.Add({{"result", "unauthenticated"}});
  reads_forbidden = &reads.Add({{"result", "forbidden"}});
  reads_unavailable = &reads.Add({{"result", "unavailable"}});
  sar_requests = Counter(r, "ashiato_aggregator_subjectaccessreview_requests_total",
                         "SubjectAccessReview calls made");
  sar_errors = Counter(r, "ashiato_aggregator_subjectaccessreview_errors_total",
                       "SubjectAccessReview calls that failed (not a denial)");
  access_cache_hits = Counter(r, "ashiato_aggregator_access_cache_hits_total",
                              "Access questions answered from the cache");
  log_lines_written = Counter(r, "ashiato_aggregator_log_lines_written_total",
                              "Unified log lines written to stdout");
  log_backlog = Gauge(r, "ashiato_aggregator_log_backlog_lines",
                      "Committed unified log lines not yet written to stdout");
  live_config_changes = Counter(r, "ashiato_aggregator_live_config_changes_total",
                                "Changes of the live configuration ConfigMap applied");
  live_config_refused = Counter(r, "ashiato_aggregator_live_config_refused_total",
                                "Invalid changes of the live configuration ConfigMap refused "
                                "(the last good configuration stayed in force)");
  live_config_invalid = Gauge(r, "ashiato_aggregator_live_config_invalid",
                              "1 while the live configuration ConfigMap holds a refused change");
  reports_unavailable = Counter(r, "ashiato_aggregator_reports_unavailable_total",
                                "Reports refused with 503 because the history store could not "
                                "commit");
  pods_tracked = Gauge(r, "ashiato_aggregator_pods", "Live pods in the cluster view");
  nodes_known = Gauge(r, "ashiato_aggregator_nodes", "Nodes whose agent has reported");
  nodes_stale = Gauge(r, "ashiato_aggregator_nodes_stale",
                      "Nodes whose agent has been silent longer than --stale-after");
  reports_waiting = Gauge(r, "ashiato_aggregator_reports_waiting",
                          "Reports queued for the next commit of the history store");
}

}  // namespace ashiato
