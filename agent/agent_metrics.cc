#include "agent/agent_metrics.h"

#include <prometheus/text_serializer.h>

namespace ashiato {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

AgentMetrics::AgentMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  watch_restarts_ = &prometheus::BuildCounter()
                         .Name("ashiato_agent_watch_restarts_total")
                         .Help("Pod watches that ended and were opened again")
                         .Register(*registry_)
                         .Add({});
  relists_ = &prometheus::BuildCounter()
                  .Name("ashiato_agent_relists_total")
                  .Help("Relists after a watch expired (410), however many lists each took")
                  .Register(*registry_)
                  .Add({});
  live_config_changes_ = &prometheus::BuildCounter()
                              .Name("ashiato_agent_live_config_changes_total")
                              .Help("Configurations of the live configuration ConfigMap applied")
                              .Register(*registry_)
                              .Add({});
  live_config_refused_ = &prometheus::BuildCounter()
                              .Name("ashiato_agent_live_config_refused_total")
                              .Help(
                                  "Invalid changes of the live configuration ConfigMap refused "
                                  "(the last good configuration stayed in force)")
                              .Register(*registry_)
                              .Add({});
  live_config_invalid_ =
      &prometheus::BuildGauge()
           .Name("ashiato_agent_live_config_invalid")
           .Help("1 while the live configuration ConfigMap holds a refused change")
           .Register(*registry_)
           .Add({});
  events_ = &prometheus::BuildCounter()
                 .Name("ashiato_agent_events_total")
                 .Help("Events emitted, by type")
                 .Register(*registry_);
  api_errors_ = &prometheus::BuildCounter()
                     .Name("ashiato_agent_api_errors_total")
                     .Help("Failed Kubernetes API calls, by HTTP status or error kind")
                     .Register(*registry_);
  pods_tracked_ = &prometheus::BuildGauge()
                       .Name("ashiato_agent_pods_tracked")
                       .Help("Pods of this node in the agent's view")
                       .Register(*registry_)
                       .Add({});
  watch_open_ = &prometheus::BuildGauge()
                     .Name("ashiato_agent_watch_open")
                     .Help("1 while the pod watch is open")
                     .Register(*registry_)
                     .Add({});
  last_event_age_ = &prometheus::BuildGauge()
                         .Name("ashiato_agent_last_event_age_seconds")
                         .Help("Seconds since the last emitted event (since start if none)")
                         .Register(*registry_)
                         .Add({});
  for (const char* t : {"SYNC", "CREATED", "UPDATED", "DELETED"}) events_->Add({{"type", t}});
  push_replays_ = &prometheus::BuildCounter()
                       .Name("ashiato_agent_push_replays_total")
                       .Help(
                           "Times the aggregator was found to have lost state and the retained "
                           "changes were replayed, then a snapshot sent; by reason (instance, "
                           "committed_seq)")
                       .Register(*registry_);
  for (const char* r : {"instance", "committed_seq"}) push_replays_->Add({{"reason", r}});
  push_replay_dropped_ = &prometheus::BuildCounter()
                              .Name("ashiato_agent_push_replay_dropped_total")
                              .Help(
                                  "Retained changes dropped because more pods than "
                                  "--replay-max changed within --replay-window")
                              .Register(*registry_)
                              .Add({});
  push_replay_expired_ = &prometheus::BuildCounter()
                              .Name("ashiato_agent_push_replay_expired_total")
                              .Help("Retained changes pruned after --replay-window")
                              .Register(*registry_)
                              .Add({});
  push_replay_retained_ = &prometheus::BuildGauge()
                               .Name("ashiato_agent_push_replay_retained")
                               .Help("Pods whose latest delivered change is retained for a replay")
                               .Register(*registry_)
                               .Add({});
  push_requests_ = &prometheus::BuildCounter()
                        .Name("ashiato_agent_push_requests_total")
                        .Help(
                            "POST /v1/reports attempts to the aggregator, by result (delivered, "
                            "failed: retried, rejected: batch dropped)")
                        .Register(*registry_);
  for (const char* r : {"delivered", "failed", "rejected"}) push_requests_->Add({{"result", r}});
}

void AgentMetrics::PushRequest(const std::string& result) {
  push_requests_->Add({{"result", result}}).Increment();
}

void AgentMetrics::PushReplay(const std::string& reason) {
  push_replays_->Add({{"reason", reason}}).Increment();
}

void AgentMetrics::Event(const std::string& type) {
  events_->Add({{"type", type}}).Increment();
  last_event_ms_ = NowMs();
}

void AgentMetrics::ApiError(const Status& status) {
  std::string code = status.http_status() != 0 ? std::to_string(status.http_status())
                                               : StatusCodeName(status.code());
  api_errors_->Add({{"code", code}}).Increment();
}

std::string AgentMetrics::Serialize() {
  int64_t last = last_event_ms_.load();
  int64_t since =
      last != 0 ? last
                : std::chrono::duration_cast<std::chrono::milliseconds>(start_.time_since_epoch())
                      .count();
  last_event_age_->Set(static_cast<double>(NowMs() - since) / 1000.0);
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace ashiato
