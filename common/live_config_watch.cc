#include "common/live_config_watch.h"

#include <spdlog/spdlog.h>

#include "common/http_client.h"

namespace ashiato {
namespace {

ListWatchOptions ConfigMapOptions(ListWatchOptions o, const std::string& ns,
                                  const std::string& name) {
  o.path = "/api/v1/namespaces/" + ns + "/configmaps";
  o.selector_query = "fieldSelector=" + UrlEncode("metadata.name=" + name);
  o.kind = "configmap";
  return o;
}

std::string JoinLines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace

LiveConfigWatch::LiveConfigWatch(std::string namespace_, std::string name, LiveConfig base,
                                 WatchApi* api, Callbacks callbacks, ListWatchOptions options)
    : namespace_(std::move(namespace_)),
      name_(std::move(name)),
      base_(std::move(base)),
      callbacks_(std::move(callbacks)),
      watcher_(ConfigMapOptions(std::move(options), this->namespace_, this->name_), api, this),
      current_(base_) {}

LiveConfigWatch::~LiveConfigWatch() { Stop(); }

void LiveConfigWatch::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { (void)watcher_.Run(); });
}

void LiveConfigWatch::Stop() {
  watcher_.Stop();
  if (thread_.joinable()) thread_.join();
}

bool LiveConfigWatch::WaitSynced(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, timeout, [this] { return synced_ || failed_; });
  return synced_;
}

LiveConfig LiveConfigWatch::current() const {
  std::lock_guard<std::mutex> l(mu_);
  return current_;
}

std::map<std::string, std::string> LiveConfigWatch::DataOf(const nlohmann::json& object) {
  std::map<std::string, std::string> data;
  auto it = object.find("data");
  if (it == object.end() || !it->is_object()) return data;
  for (const auto& [k, v] : it->items()) {
    if (v.is_string()) data[k] = v.get<std::string>();
  }
  return data;
}

void LiveConfigWatch::OnListObject(const nlohmann::json& object) {
  if (object.value("/metadata/name"_json_pointer, "") == name_) listed_ = DataOf(object);
}

void LiveConfigWatch::OnListDone() {
  Offer(listed_);
  std::lock_guard<std::mutex> l(mu_);
  synced_ = true;
  cv_.notify_all();
}

void LiveConfigWatch::OnWatchEvent(const std::string& type, const nlohmann::json& object) {
  if (object.value("/metadata/name"_json_pointer, "") != name_) return;
  if (type == "DELETED") {
    Offer(std::nullopt);
  } else {
    Offer(DataOf(object));
  }
}

void LiveConfigWatch::OnApiError(const Status& status) {
  {
    std::lock_guard<std::mutex> l(mu_);
    failed_ = true;
    if (status.code() != StatusCode::kPermissionDenied || warned_forbidden_) {
      cv_.notify_all();
      return;
    }
    warned_forbidden_ = true;
  }
  cv_.notify_all();
  spdlog::warn(
      "live configuration {}: may not read it ({}); grant get, list and watch on that ConfigMap "
      "(resourceNames) to this service account; the flags' values stay in force",
      ref(), status.message());
}

void LiveConfigWatch::Offer(const std::optional<std::map<std::string, std::string>>& data) {
  LiveConfig applied;
  bool apply = false;
  Status refused;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (offered_ && data == last_data_) return;
    bool first = !offered_;
    offered_ = true;
    last_data_ = data;
    Result<LiveConfig> next = data ? ParseLiveConfig(*data, base_) : Result<LiveConfig>(base_);
    if (!next.ok()) {
      refused = next.status();
    } else {
      std::vector<std::string> changes = LiveConfigChanges(current_, *next);
      current_ = std::move(*next);
      if (!changes.empty()) {
        spdlog::info("live configuration {}: {}: {}", ref(),
                     !data   ? "absent, the flags' values are back"
                     : first ? "read"
                             : "changed",
                     JoinLines(changes));
      } else if (first) {
        spdlog::info("live configuration {}: {}", ref(),
                     data ? "read, same as the flags" : "absent, the flags' values are in force");
      }
      apply = first || !changes.empty();
      applied = current_;
    }
  }
  if (!refused.ok()) {
    spdlog::error("live configuration {}: change refused, the last good configuration stays: {}",
                  ref(), refused.message());
    if (callbacks_.refused) callbacks_.refused(refused);
    return;
  }
  if (callbacks_.valid) callbacks_.valid();
  if (apply && callbacks_.applied) callbacks_.applied(applied);
}

}  // namespace ashiato
