#include "agent/configmap_sink.h"

namespace ashiato {

void ConfigMapSink::OnEvent(const std::string& event_type, const PodRecord& record) {
  SystemTime now = clock_->Now();
  if (event_type == "DELETED") {
    writer_->PodGone(record.namespace_, record.name, record.node_name, now);
  } else {
    writer_->PodSeen(record.namespace_, record.name, record.node_name, now);
  }
}

Status ConfigMapSink::Flush(std::chrono::milliseconds) { return writer_->FlushNow(); }

}  // namespace ashiato
