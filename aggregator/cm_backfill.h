// ConfigMapBackfill: on start, rebuilds the hourly ConfigMaps of every hour
// still inside --cm-retention from the history store's placements, so a
// debounced write that died with the previous process is written by its
// successor. Newest hour first, one hour in memory at a time, on its own
// thread (the writer merges with what the API server holds and writes only
// what is missing, within its byte budget).
#pragma once

#include <atomic>
#include <functional>
#include <thread>

#include "aggregator/cm_writer.h"
#include "aggregator/store/store.h"

namespace ashiato {

class ConfigMapBackfill {
 public:
  ConfigMapBackfill(Store* store, HourlyConfigMapWriter* writer, const Clock* clock);
  ~ConfigMapBackfill();  // Stop().

  // Only placements `keep` accepts are written (the live configuration's
  // scope); call before Start(). Default: all.
  void SetFilter(std::function<bool(const Interval&)> keep) { keep_ = std::move(keep); }
  void Start();
  void Stop();
  // Hours handed to the writer so far.
  int hours_done() const { return hours_done_.load(); }

 private:
  void Run();

  Store* store_;
  HourlyConfigMapWriter* writer_;
  const Clock* clock_;
  std::function<bool(const Interval&)> keep_;
  std::atomic<bool> stop_{false};
  std::atomic<int> hours_done_{0};
  std::thread thread_;
};

}  // namespace ashiato
