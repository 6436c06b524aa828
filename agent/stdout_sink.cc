#include "agent/stdout_sink.h"

#include "common/report.h"

namespace ashiato {

std::string FormatEventLine(const std::string& event_type, const PodRecord& record, SystemTime now,
                            const std::string& cluster) {
  // event and timestamp first so the line reads well; the rest sorted.
  std::string line = "{\"event\":";
  AppendJsonString(event_type, &line);
  line.append(",\"timestamp\":");
  AppendJsonString(FormatRfc3339Micros(now), &line);
  std::string rest;
  LogField cluster_field{"cluster", cluster};
  AppendPodLogJson(record, &cluster_field, cluster.empty() ? 0 : 1, &rest);
  if (rest.size() > 2) {
    line.push_back(',');
    line.append(rest, 1, std::string::npos);
  } else {
    line.push_back('}');
  }
  return line;
}

void StdoutSink::OnEvent(const std::string& event_type, const PodRecord& record) {
  std::string line = FormatEventLine(event_type, record, clock_->Now(), cluster_);
  line.push_back('\n');
  fwrite(line.data(), 1, line.size(), out_);
  fflush(out_);
}

void StdoutSink::OnLogAll(const std::vector<PodRecord>& all) {
  SystemTime now = clock_->Now();
  for (const PodRecord& record : all) {
    std::string line = FormatEventLine("PERIODIC", record, now);
    line.push_back('\n');
    fwrite(line.data(), 1, line.size(), out_);
  }
  fflush(out_);
}

Status StdoutSink::Flush(std::chrono::milliseconds) {
  if (fflush(out_) != 0) return Internal("flushing stdout failed");
  return Status::Ok();
}

}  // namespace ashiato
