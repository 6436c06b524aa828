// NodeWatch: the aggregator's one cluster-wide Node list+watch (ListWatcher,
// common/list_watch.h), feeding the NodeDirectory. Cheap next to pods: one
// watch for the cluster, and nodes change rarely. Needs `list` and `watch`
// on nodes (daemonset/base/aggregator-rbac.yaml).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "aggregator/node_directory.h"
#include "common/kube_client.h"
#include "common/list_watch.h"

namespace ashiato {

class NodeWatch : private ListWatchHandler {
 public:
  // `api` and `directory` must outlive the watch.
  NodeWatch(WatchApi* api, NodeDirectory* directory, ListWatchOptions options = {});
  ~NodeWatch();

  // Runs the list+watch on its own thread until Stop().
  void Start();
  void Stop();
  // Waits until the first list arrived (true), or failed, or `timeout`
  // passed (false): a forbidden or unreachable API server costs no wait.
  bool WaitSynced(std::chrono::milliseconds timeout);

 private:
  void OnListBegin() override { listed_.clear(); }
  void OnListObject(const nlohmann::json& object) override;
  void OnListDone() override;
  void OnWatchEvent(const std::string& type, const nlohmann::json& object) override;
  void OnApiError(const Status& status) override;

  NodeDirectory* directory_;
  std::vector<NodeInfo> listed_;
  ListWatcher watcher_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool synced_ = false;
  bool failed_ = false;  // An API error before the first list.
};

}  // namespace ashiato
