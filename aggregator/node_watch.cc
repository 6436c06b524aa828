#include "aggregator/node_watch.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

namespace ashiato {
namespace {

ListWatchOptions NodeOptions(ListWatchOptions o) {
  o.path = "/api/v1/nodes";
  o.kind = "node";
  return o;
}

}  // namespace

NodeWatch::NodeWatch(WatchApi* api, NodeDirectory* directory, ListWatchOptions options)
    : directory_(directory), watcher_(NodeOptions(std::move(options)), api, this) {}

NodeWatch::~NodeWatch() { Stop(); }

void NodeWatch::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { (void)watcher_.Run(); });
}

void NodeWatch::Stop() {
  watcher_.Stop();
  if (thread_.joinable()) thread_.join();
}

void NodeWatch::OnListObject(const nlohmann::json& object) {
  NodeInfo n = NodeInfoFromNodeJson(object);
  if (!n.name.empty()) listed_.push_back(std::move(n));
}

void NodeWatch::OnListDone() {
  directory_->Replace(listed_);
  listed_ = {};
  // The list was parsed into a JSON tree many times its size (~10 MiB for
  // 1,000 nodes); hand those pages back instead of keeping them resident.
  malloc_trim(0);
  {
    std::lock_guard<std::mutex> l(mu_);
    synced_ = true;
  }
  cv_.notify_all();
}

bool NodeWatch::WaitSynced(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, timeout, [this] { return synced_ || failed_; });
  return synced_;
}

void NodeWatch::OnWatchEvent(const std::string& type, const nlohmann::json& object) {
  NodeInfo n = NodeInfoFromNodeJson(object);
  if (n.name.empty()) return;
  if (type == "DELETED") {
    directory_->MarkDeleted(n.name);
  } else {
    directory_->Upsert(n);
  }
}

void NodeWatch::OnApiError(const Status& status) {
  {
    std::lock_guard<std::mutex> l(mu_);
    failed_ = true;
  }
  cv_.notify_all();
  if (status.code() == StatusCode::kPermissionDenied) {
    spdlog::warn(
        "node addresses: may not list/watch nodes ({}); grant list and watch on nodes to the "
        "aggregator (daemonset/base/aggregator-rbac.yaml)",
        status.message());
  }
}

}  // namespace ashiato
