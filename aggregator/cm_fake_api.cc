#include "aggregator/cm_fake_api.h"

#include <map>
#include <vector>

#include "common/label_selector.h"

namespace ashiato {

namespace {

size_t DataBytes(const nlohmann::json& cm) {
  size_t n = 0;
  if (cm.contains("data") && cm["data"].is_object()) {
    for (auto& [k, v] : cm["data"].items())
      n += k.size() + (v.is_string() ? v.get_ref<const std::string&>().size() : 0);
  }
  return n;
}

}  // namespace

Result<bool> MatchLabelSelector(const std::string& selector, const nlohmann::json& labels) {
  auto sel = LabelSelector::Parse(selector);
  if (!sel.ok()) return sel.status();
  std::map<std::string, std::string> flat;
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      if (v.is_string()) flat[k] = v.get<std::string>();
    }
  }
  return sel->Matches(flat);
}

void FakeConfigMapApi::SetHook(std::function<Status(const std::string&, const std::string&)> hook) {
  std::lock_guard<std::mutex> l(mu_);
  hook_ = std::move(hook);
}

Status FakeConfigMapApi::RunHook(const std::string& verb, const std::string& name) {
  std::function<Status(const std::string&, const std::string&)> hook;
  {
    std::lock_guard<std::mutex> l(mu_);
    hook = hook_;
  }
  return hook ? hook(verb, name) : Status::Ok();
}

nlohmann::json FakeConfigMapApi::Stamp(nlohmann::json cm, const std::string& ns) {
  cm["metadata"]["namespace"] = ns;
  cm["metadata"]["resourceVersion"] = std::to_string(++rv_);
  return cm;
}

Result<nlohmann::json> FakeConfigMapApi::Get(const std::string& ns, const std::string& name) {
  if (Status s = RunHook("get", name); !s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  ++counters_.gets;
  auto it = objects_.find(Key(ns, name));
  if (it == objects_.end()) return NotFound("configmaps \"" + name + "\" not found");
  counters_.bytes_sent += it->second.dump().size();
  return it->second;
}

Result<nlohmann::json> FakeConfigMapApi::List(const std::string& ns, const std::string& selector) {
  if (Status s = RunHook("list", ""); !s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  ++counters_.lists;
  nlohmann::json out = {{"items", nlohmann::json::array()}};
  for (const auto& [key, obj] : objects_) {
    if (key.compare(0, ns.size() + 1, ns + "/") != 0) continue;
    nlohmann::json labels = obj["metadata"].value("labels", nlohmann::json());
    if (!selector.empty()) {
      auto m = MatchLabelSelector(selector, labels);
      if (!m.ok()) return m.status();
      if (!*m) continue;
    }
    out["items"].push_back(obj);
  }
  counters_.bytes_sent += out.dump().size();
  return out;
}

Result<nlohmann::json> FakeConfigMapApi::Create(const std::string& ns, const nlohmann::json& cm) {
  std::string name = cm["metadata"].value("name", "");
  if (Status s = RunHook("create", name); !s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  ++counters_.creates;
  counters_.bytes_received += cm.dump().size();
  if (DataBytes(cm) > kMaxDataBytes) {
    return Status(StatusCode::kInvalidArgument,
                  "ConfigMap \"" + name + "\" is invalid: data: Too long")
        .set_http_status(422);
  }
  if (objects_.count(Key(ns, name))) {
    ++counters_.conflicts;
    return Status(StatusCode::kAlreadyExists, "configmaps \"" + name + "\" already exists")
        .set_http_status(409);
  }
  nlohmann::json stored = cm;
  stored["metadata"].erase("resourceVersion");
  stored = Stamp(std::move(stored), ns);
  objects_[Key(ns, name)] = stored;
  counters_.bytes_sent += stored.dump().size();
  return stored;
}

Result<nlohmann::json> FakeConfigMapApi::Update(const std::string& ns, const nlohmann::json& cm) {
  std::string name = cm["metadata"].value("name", "");
  if (Status s = RunHook("update", name); !s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  ++counters_.updates;
  counters_.bytes_received += cm.dump().size();
  auto it = objects_.find(Key(ns, name));
  if (it == objects_.end()) return NotFound("configmaps \"" + name + "\" not found");
  if (DataBytes(cm) > kMaxDataBytes) {
    return Status(StatusCode::kInvalidArgument,
                  "ConfigMap \"" + name + "\" is invalid: data: Too long")
        .set_http_status(422);
  }
  std::string rv = cm["metadata"].value("resourceVersion", "");
  if (!rv.empty() && rv != it->second["metadata"].value("resourceVersion", "")) {
    ++counters_.conflicts;
    return Status(StatusCode::kConflict, "the object has been modified").set_http_status(409);
  }
  it->second = Stamp(cm, ns);
  counters_.bytes_sent += it->second.dump().size();
  return it->second;
}

Status FakeConfigMapApi::Delete(const std::string& ns, const std::string& name) {
  if (Status s = RunHook("delete", name); !s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  ++counters_.deletes;
  if (objects_.erase(Key(ns, name)) == 0) return NotFound("configmaps \"" + name + "\" not found");
  return Status::Ok();
}

FakeConfigMapApi::Counters FakeConfigMapApi::counters() const {
  std::lock_guard<std::mutex> l(mu_);
  return counters_;
}

void FakeConfigMapApi::ResetCounters() {
  std::lock_guard<std::mutex> l(mu_);
  counters_ = Counters();
}

std::map<std::string, nlohmann::json> FakeConfigMapApi::Objects(const std::string& ns) const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<std::string, nlohmann::json> out;
  for (const auto& [key, obj] : objects_) {
    if (key.compare(0, ns.size() + 1, ns + "/") == 0) out[key.substr(ns.size() + 1)] = obj;
  }
  return out;
}

void FakeConfigMapApi::Put(const std::string& ns, nlohmann::json cm) {
  std::lock_guard<std::mutex> l(mu_);
  std::string name = cm["metadata"].value("name", "");
  objects_[Key(ns, name)] = Stamp(std::move(cm), ns);
}

}  // namespace ashiato
