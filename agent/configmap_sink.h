// ConfigMapSink: standalone mode's path into the hourly pod-ashiato
// ConfigMaps. It hands what the agent observes to the aggregator's writer
// (aggregator/cm_writer.h), exactly as the aggregator does with what agents
// push: present pods with PodSeen, deleted ones with PodGone. One writer,
// two entry points; the ConfigMaps come out the same.
#pragma once

#include "agent/event_sink.h"
#include "aggregator/cm_writer.h"
#include "common/time_util.h"

namespace ashiato {

class ConfigMapSink : public EventSink {
 public:
  // `writer` must outlive the sink and be started by the caller.
  explicit ConfigMapSink(HourlyConfigMapWriter* writer, const Clock* clock = Clock::Real())
      : writer_(writer), clock_(clock) {}

  // SYNC, CREATED, UPDATED: PodSeen at the time observed; DELETED: PodGone.
  void OnEvent(const std::string& event_type, const PodRecord& record) override;
  // Every pod of a snapshot already arrived as an event: nothing to do.
  void OnSnapshot(const std::vector<PodRecord>&) override {}
  // Writes what changed now (FlushNow, which has its own request timeouts:
  // `deadline` is not enforced). Its first error, if any.
  Status Flush(std::chrono::milliseconds deadline) override;

 private:
  HourlyConfigMapWriter* writer_;
  const Clock* clock_;
};

}  // namespace ashiato
