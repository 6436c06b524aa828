// EventSink: where the agent delivers what it observes. The stdout printer is
// one sink; the aggregator pusher (agent/pusher.h) is another. Calls into a
// sink are serialized (never concurrent) but may come from different threads
// (the reflector thread, the --interval timer, the shutdown path).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/pod_record.h"
#include "common/status.h"

namespace ashiato {

class EventSink {
 public:
  virtual ~EventSink() = default;

  // One change of one pod. `event_type` is "SYNC" (present at the first
  // list), "CREATED", "UPDATED" or "DELETED". For DELETED, `record` is the
  // last known state (deletion_timestamp set when the API server sent it).
  virtual void OnEvent(const std::string& event_type, const PodRecord& record) = 0;

  // The full current view of the node: called after each (re)list, once the
  // list's events were delivered, and every --interval. A pod absent from
  // `all` is gone from this node.
  virtual void OnSnapshot(const std::vector<PodRecord>& all) = 0;

  // --log-all-every: the full current view, to be logged as it is (not a
  // change). Only the stdout log prints it; the default ignores it.
  virtual void OnLogAll(const std::vector<PodRecord>& all) { (void)all; }

  // Delivers what is pending, giving up at `deadline` from now. Called on
  // shutdown (and after --oneshot).
  virtual Status Flush(std::chrono::milliseconds deadline) = 0;
};

}  // namespace ashiato
