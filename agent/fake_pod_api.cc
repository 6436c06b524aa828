#include "agent/fake_pod_api.h"

namespace ashiato {

using nlohmann::json;

namespace {

std::string QueryParam(const std::string& query, const std::string& key) {
  auto q = query.find('?');
  std::string rest = q == std::string::npos ? query : query.substr(q + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t amp = rest.find('&', pos);
    std::string kv = rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == key) return eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return "";
}

Status HttpError(int code, int retry_after, const std::string& message = "") {
  ClientResponse r;
  r.status = code;
  r.body = json({{"kind", "Status"},
                 {"code", code},
                 {"message", message.empty() ? "injected " + std::to_string(code) : message}})
               .dump();
  if (retry_after > 0) r.headers["retry-after"] = std::to_string(retry_after);
  return StatusFromApiResponse(r);
}

}  // namespace

json FakePodApi::MakePod(const std::string& ns, const std::string& name, const std::string& node,
                         const std::string& ip) {
  return json{{"metadata",
               {{"namespace", ns},
                {"name", name},
                {"uid", "uid-" + name},
                {"creationTimestamp", "2026-11-24T03:00:00Z"},
                {"labels", {{"app", name}}}}},
              {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "img:1"}}}}}},
              {"status", {{"phase", "Running"}, {"podIP", ip}, {"hostIP", "192.168.0.1"}}}};
}

void FakePodApi::AppendLocked(const std::string& type, json object) {
  ++rv_;
  object["metadata"]["resourceVersion"] = std::to_string(rv_);
  if (type != "DELETED") pods_[object["metadata"]["name"]] = object;
  history_.push_back({rv_, type, std::move(object)});
  cv_.notify_all();
}

void FakePodApi::Create(json pod) {
  std::lock_guard<std::mutex> lock(mu_);
  AppendLocked("ADDED", std::move(pod));
}

void FakePodApi::Modify(const std::string& name, const std::function<void(json&)>& mutate) {
  std::lock_guard<std::mutex> lock(mu_);
  json pod = pods_.at(name);
  mutate(pod);
  AppendLocked("MODIFIED", std::move(pod));
}

void FakePodApi::Delete(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  json pod = pods_.at(name);
  pods_.erase(name);
  AppendLocked("DELETED", std::move(pod));
}

void FakePodApi::Compact() {
  std::lock_guard<std::mutex> lock(mu_);
  compacted_rv_ = rv_;
  history_.clear();
}

void FakePodApi::set_expired_as_event(bool v) {
  std::lock_guard<std::mutex> lock(mu_);
  expired_as_event_ = v;
}

void FakePodApi::DropWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  ++drop_generation_;
  cv_.notify_all();
}

void FakePodApi::set_list_at_rv_status(int http_status) {
  std::lock_guard<std::mutex> lock(mu_);
  list_at_rv_status_ = http_status;
}

void FakePodApi::FailNext(int n, int http_status, int retry_after_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_n_ = n;
  fail_status_ = http_status;
  fail_retry_after_ = retry_after_seconds;
}

std::vector<std::string> FakePodApi::Queries() {
  std::lock_guard<std::mutex> lock(mu_);
  return queries_;
}
int FakePodApi::ListCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return lists_;
}
int FakePodApi::WatchCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return watches_;
}
int FakePodApi::OpenWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  return open_watches_;
}

std::optional<Status> FakePodApi::TakeFailureLocked() {
  if (fail_n_ <= 0) return std::nullopt;
  --fail_n_;
  return HttpError(fail_status_, fail_retry_after_);
}

bool FakePodApi::Selected(const json& pod, const std::string& query) const {
  std::string field = QueryParam(query, "fieldSelector");
  const std::string prefix = "spec.nodeName%3D";
  if (field.rfind(prefix, 0) == 0) return pod["spec"]["nodeName"] == field.substr(prefix.size());
  return true;
}

Result<json> FakePodApi::Get(const std::string& query) {
  std::lock_guard<std::mutex> lock(mu_);
  queries_.push_back(query);
  ++lists_;
  if (cancelled_) return Status(StatusCode::kCancelled, "cancelled");
  if (auto f = TakeFailureLocked()) return *f;
  std::string at = QueryParam(query, "resourceVersion");
  if (list_at_rv_status_ != 0 && !at.empty() && at != "0") {
    return HttpError(list_at_rv_status_, 0,
                     list_at_rv_status_ == 504
                         ? "Too large resource version: " + at + ", current: " + std::to_string(rv_)
                         : "too old resource version: " + at);
  }
  json items = json::array();
  for (const auto& [name, pod] : pods_) {
    if (Selected(pod, query)) items.push_back(pod);
  }
  return json{{"kind", "PodList"},
              {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
              {"items", items}};
}

Status FakePodApi::Watch(const std::string& query, const std::function<bool(const json&)>& on_event,
                         std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  queries_.push_back(query);
  ++watches_;
  if (cancelled_) return Status(StatusCode::kCancelled, "cancelled");
  if (auto f = TakeFailureLocked()) return *f;
  long long from = std::stoll(QueryParam(query, "resourceVersion"));
  if (from < compacted_rv_) {
    if (!expired_as_event_) return HttpError(410, 0);
    json status = {{"kind", "Status"},
                   {"code", 410},
                   {"reason", "Expired"},
                   {"message", "too old resource version"}};
    lock.unlock();
    on_event({{"type", "ERROR"}, {"object", status}});
    return Status::Ok();
  }
  ++open_watches_;
  long long generation = drop_generation_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Status result;
  while (true) {
    size_t next = 0;
    while (next < history_.size() && history_[next].rv <= from) ++next;
    if (next < history_.size()) {
      Event e = history_[next];
      from = e.rv;
      if (!Selected(e.object, query)) continue;
      lock.unlock();
      bool go_on = on_event({{"type", e.type}, {"object", e.object}});
      lock.lock();
      if (!go_on) break;
      continue;
    }
    if (cancelled_) {
      result = Status(StatusCode::kCancelled, "cancelled");
      break;
    }
    if (drop_generation_ != generation) break;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  --open_watches_;
  return result;
}

void FakePodApi::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  cv_.notify_all();
}

void FakePodApi::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = false;
}

}  // namespace ashiato
