#include "agent/reflector.h"

namespace ashiato {

Reflector::Reflector(ReflectorOptions options, PodApi* api, ReflectorHandler* handler)
    : options_(std::move(options)), handler_(handler), watcher_(WatchOptions(), api, this) {}

ListWatchOptions Reflector::WatchOptions() const {
  ListWatchOptions w = options_;
  w.path = "/api/v1/pods";
  w.selector_query = SelectorQuery();
  w.kind = "pod";
  return w;
}

std::string Reflector::SelectorQuery() const {
  std::string q;
  if (!options_.all_nodes) q += "fieldSelector=" + UrlEncode("spec.nodeName=" + options_.node);
  if (!options_.label_selector.empty()) {
    if (!q.empty()) q += "&";
    q += "labelSelector=" + UrlEncode(options_.label_selector);
  }
  return q;
}

Result<std::vector<PodRecord>> Reflector::ListOnce(bool quorum, std::string* resource_version) {
  std::vector<PodRecord> pods;
  Status st = watcher_.ListOnce(quorum, resource_version, [&](const nlohmann::json& item) {
    PodRecord r = ToRecord(item);
    if (!r.uid.empty()) pods.push_back(std::move(r));
  });
  if (!st.ok()) return st;
  return pods;
}

PodRecord Reflector::ToRecord(const nlohmann::json& object) {
  std::lock_guard<std::mutex> lock(capture_mu_);
  return PodRecordFromPodJson(object, &options_.annotations);
}

void Reflector::SetAnnotationCapture(AnnotationCapture capture) {
  {
    std::lock_guard<std::mutex> lock(capture_mu_);
    options_.annotations = std::move(capture);
  }
  watcher_.RequestRelist();
}

void Reflector::OnListObject(const nlohmann::json& object) {
  PodRecord r = ToRecord(object);
  if (!r.uid.empty()) listed_.push_back(std::move(r));
}

void Reflector::OnListDone() {
  std::vector<PodRecord> pods;
  pods.swap(listed_);
  handler_->OnList(pods);
}

void Reflector::OnWatchEvent(const std::string& type, const nlohmann::json& object) {
  PodRecord pod = ToRecord(object);
  if (pod.uid.empty()) return;
  handler_->OnWatchEvent(type, pod);
}

}  // namespace ashiato
