// LiveConfigWatch: list+watches one ConfigMap (ListWatcher with
// fieldSelector=metadata.name=NAME, so RBAC can limit the caller to that one
// object with resourceNames) and turns its data into the LiveConfig in force:
//
// - a valid change is applied and logged once, naming each key that changed;
// - an invalid one is refused with one error line and a count, and the last
//   good configuration stays in force;
// - an absent (or deleted) ConfigMap means the flags' values.
//
// Offering the same data again (a relist, a watch restart) logs nothing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/list_watch.h"
#include "common/live_config.h"

namespace ashiato {

class LiveConfigWatch : private ListWatchHandler {
 public:
  struct Callbacks {
    // The configuration in force changed (also called once with the first
    // one seen). Called on the watch's thread.
    std::function<void(const LiveConfig&)> applied;
    // A change was refused (metrics).
    std::function<void(const Status&)> refused;
    // The ConfigMap's content is valid again (or still): metrics.
    std::function<void()> valid;
  };
  // `base`: the flags' values, in force while the ConfigMap is absent.
  // `api` must outlive the watch and be used by nothing else (Stop cancels it).
  LiveConfigWatch(std::string namespace_, std::string name, LiveConfig base, WatchApi* api,
                  Callbacks callbacks, ListWatchOptions options = {});
  ~LiveConfigWatch() override;

  void Start();
  void Stop();
  // Waits until the ConfigMap was read once (true), or reading it failed, or
  // `timeout` passed (false).
  bool WaitSynced(std::chrono::milliseconds timeout);

  // The ConfigMap's data as read (nullopt: absent). Public for tests.
  void Offer(const std::optional<std::map<std::string, std::string>>& data);
  LiveConfig current() const;
  std::string ref() const { return namespace_ + "/" + name_; }

 private:
  void OnListBegin() override { listed_.reset(); }
  void OnListObject(const nlohmann::json& object) override;
  void OnListDone() override;
  void OnWatchEvent(const std::string& type, const nlohmann::json& object) override;
  void OnApiError(const Status& status) override;
  static std::map<std::string, std::string> DataOf(const nlohmann::json& object);

  const std::string namespace_, name_;
  const LiveConfig base_;
  Callbacks callbacks_;
  std::optional<std::map<std::string, std::string>> listed_;
  ListWatcher watcher_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool synced_ = false;
  bool failed_ = false;
  bool offered_ = false;
  std::optional<std::map<std::string, std::string>> last_data_;
  LiveConfig current_;
  bool warned_forbidden_ = false;
};

}  // namespace ashiato
