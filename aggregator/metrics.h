// AggregatorMetrics: the Prometheus series of the aggregator, built once on
// a registry that /metrics serializes. Counters are thread-safe.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>

namespace ashiato {

struct AggregatorMetrics {
  explicit AggregatorMetrics(std::shared_ptr<prometheus::Registry> registry);

  std::shared_ptr<prometheus::Registry> registry;
  // POST /v1/reports outcomes.
  prometheus::Counter* reports_accepted;
  prometheus::Counter* reports_replayed;         // Same (node, epoch, seq) again.
  prometheus::Counter* reports_stale_epoch;      // From an agent process that was replaced.
  prometheus::Counter* reports_bad;              // 400.
  prometheus::Counter* reports_too_large;        // 413.
  prometheus::Counter* reports_unauthenticated;  // 401.
  prometheus::Counter* reports_forbidden;        // 403.
  prometheus::Counter* report_bytes;             // Body bytes as received.
  // Records by what dedup did with them.
  prometheus::Counter* records_applied;
  prometheus::Counter* records_duplicate;  // Same version again, or no observable change.
  prometheus::Counter* records_stale;      // Older than what we hold.
  // Unified log lines by event.
  prometheus::Counter* events_created;
  prometheus::Counter* events_updated;
  prometheus::Counter* events_deleted;
  prometheus::Counter* events_sync;
  prometheus::Counter* events_image_added;
  prometheus::Counter* events_image_removed;
  prometheus::Counter* tokenreview_requests;
  prometheus::Counter* tokenreview_errors;
  prometheus::Counter* token_cache_hits;
  // Pod GETs that bind a pod-bound token to its node (Kubernetes < 1.30).
  prometheus::Counter* agent_pod_lookups;
  prometheus::Counter* agent_pod_lookup_errors;
  // Reads (query API and /metrics) by outcome: allowed (everything),
  // filtered (to some namespaces), unauthenticated, forbidden, unavailable.
  prometheus::Counter* reads_allowed;
  prometheus::Counter* reads_filtered;
  prometheus::Counter* reads_unauthenticated;
  prometheus::Counter* reads_forbidden;
  prometheus::Counter* reads_unavailable;
  prometheus::Counter* sar_requests;       // SubjectAccessReview calls made.
  prometheus::Counter* sar_errors;         // ... that failed (not a denial).
  prometheus::Counter* access_cache_hits;  // Answered from the cache.
  // The unified log writer (aggregator/log_writer.h).
  prometheus::Counter* log_lines_written;
  prometheus::Gauge* log_backlog;  // Committed lines not yet written to stdout.
  // The live configuration (common/live_config_watch.h).
  prometheus::Counter* live_config_changes;  // Valid changes applied.
  prometheus::Counter* live_config_refused;  // Invalid changes refused.
  prometheus::Gauge* live_config_invalid;    // 1 while the ConfigMap holds a refused change.
  // Reports refused with 503 because the store could not commit.
  prometheus::Counter* reports_unavailable;
  prometheus::Gauge* pods_tracked;
  prometheus::Gauge* nodes_known;
  prometheus::Gauge* nodes_stale;
  prometheus::Gauge* reports_waiting;  // Queued for the next group commit.
};

}  // namespace ashiato
