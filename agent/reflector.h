// Reflector: client-go's list-then-watch loop for the pods of one node, on
// ListWatcher (common/list_watch.h), which does the listing, watching,
// relisting on 410 and backoff; the Reflector turns the objects into
// PodRecords (with the annotations `annotations` asks for).
//
// Every request carries fieldSelector=spec.nodeName=<node>, unless
// `all_nodes` (debugging, oneshot only).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "agent/pod_api.h"
#include "common/annotation_capture.h"
#include "common/backoff.h"
#include "common/list_watch.h"
#include "common/pod_record.h"

namespace ashiato {

// The list-watch knobs (quorum_list, page_size, watch timeouts, backoff,
// healthy_after, seed) of ListWatchOptions; its path, selector_query and kind
// are the Reflector's to set.
struct ReflectorOptions : ListWatchOptions {
  // spec.nodeName to select. Required unless all_nodes.
  std::string node;
  // No field selector (debugging only; refused by the agent outside --oneshot).
  bool all_nodes = false;
  // labelSelector sent to the server ("" = none).
  std::string label_selector;
  // Annotations copied into the records (none by default).
  AnnotationCapture annotations;
};

// What the reflector reports. Called on the reflector's thread.
class ReflectorHandler {
 public:
  virtual ~ReflectorHandler() = default;
  // A complete list of the node's pods (first list or relist).
  virtual void OnList(const std::vector<PodRecord>& pods) = 0;
  // One watch event: "ADDED", "MODIFIED" or "DELETED".
  virtual void OnWatchEvent(const std::string& type, const PodRecord& pod) = 0;
  // The watch stream is open (true) or closed (false): readiness.
  virtual void OnWatchState(bool open) { (void)open; }
  // Diagnostics for metrics.
  virtual void OnRelist() {}
  virtual void OnWatchRestart() {}
  virtual void OnApiError(const Status& status) { (void)status; }
};

class Reflector : private ListWatchHandler {
 public:
  Reflector(ReflectorOptions options, PodApi* api, ReflectorHandler* handler);

  // Lists once (resourceVersion=0, or quorum with quorum_list) and returns
  // the pods and the list's resourceVersion. No retries.
  Result<std::vector<PodRecord>> ListOnce(bool quorum, std::string* resource_version);

  // The resourceVersion the next (re)list asks for (ListWatcher's).
  std::string RelistResourceVersion() const { return watcher_.RelistResourceVersion(); }

  // Lists, then watches until Stop(). Returns OK after Stop().
  Status Run() { return watcher_.Run(); }
  // Makes Run() return soon: cancels the call in flight. Thread-safe.
  void Stop() { watcher_.Stop(); }

  // The query the reflector sends, e.g. for logs: "fieldSelector=...".
  std::string SelectorQuery() const;

  // Captures these annotations from now on and relists (from the watch
  // cache), so every pod's record carries them within seconds (the live
  // configuration's captureAnnotations). Thread-safe.
  void SetAnnotationCapture(AnnotationCapture capture);

 private:
  // ListWatchHandler: objects to PodRecords.
  void OnListBegin() override { listed_.clear(); }
  void OnListObject(const nlohmann::json& object) override;
  void OnListDone() override;
  void OnWatchEvent(const std::string& type, const nlohmann::json& object) override;
  void OnWatchState(bool open) override { handler_->OnWatchState(open); }
  void OnRelist() override { handler_->OnRelist(); }
  void OnWatchRestart() override { handler_->OnWatchRestart(); }
  void OnApiError(const Status& status) override { handler_->OnApiError(status); }
  ListWatchOptions WatchOptions() const;
  PodRecord ToRecord(const nlohmann::json& object);

  ReflectorOptions options_;
  std::mutex capture_mu_;  // Guards options_.annotations.
  ReflectorHandler* handler_;
  std::vector<PodRecord> listed_;  // The list being received.
  ListWatcher watcher_;
};

}  // namespace ashiato
