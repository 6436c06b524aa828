#include "agent/stdout_sink.h"

namespace ashiato {

std::string FormatEventLine(const std::string& event_type, const PodRecord& record,
                            SystemTime now) {
  // event and timestamp first so the line reads well; the rest sorted.
  std::string rest = PodRecordToLogJson(record).dump();
  std::string line = "{\"event\":" + nlohmann::json(event_type).dump() +
                     ",\"timestamp\":" + nlohmann::json(FormatRfc3339Micros(now)).dump();
  if (rest.size() > 2)
    line += "," + rest.substr(1);
  else
    line += "}";
  return line;
}

void StdoutSink::OnEvent(const std::string& event_type, const PodRecord& record) {
  std::string line = FormatEventLine(event_type, record, clock_->Now());
  line.push_back('\n');
  fwrite(line.data(), 1, line.size(), out_);
  fflush(out_);
}

Status StdoutSink::Flush(std::chrono::milliseconds) {
  if (fflush(out_) != 0) return Internal("flushing stdout failed");
  return Status::Ok();
}

}  // namespace ashiato
