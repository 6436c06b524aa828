// StdoutSink: the agent's per-node JSON log, one line per event on a FILE*
// (stdout), flushed per line so a log shipper sees each event at once.
#pragma once

#include <cstdio>
#include <string>

#include "agent/event_sink.h"
#include "common/time_util.h"

namespace ashiato {

class StdoutSink : public EventSink {
 public:
  explicit StdoutSink(FILE* out = stdout, const Clock* clock = Clock::Real(),
                      std::string cluster = "")
      : out_(out), clock_(clock), cluster_(std::move(cluster)) {}
  void OnEvent(const std::string& event_type, const PodRecord& record) override;
  // The log has no snapshot lines: a snapshot is for the aggregator.
  void OnSnapshot(const std::vector<PodRecord>&) override {}
  // One "PERIODIC" line per pod, all with the same timestamp.
  void OnLogAll(const std::vector<PodRecord>& all) override;
  Status Flush(std::chrono::milliseconds deadline) override;

 private:
  FILE* out_;
  const Clock* clock_;
  std::string cluster_;
};

// One log line without the trailing newline: {"event":...,"timestamp":...,<PodRecordToLogJson>},
// with "cluster" among the sorted fields when `cluster` is not empty.
std::string FormatEventLine(const std::string& event_type, const PodRecord& record, SystemTime now,
                            const std::string& cluster = "");

}  // namespace ashiato
