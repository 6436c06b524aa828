#include "aggregator/cm_fake_api.h"

#include <cctype>
#include <set>
#include <vector>

namespace ashiato {

namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(' ');
  return s.substr(b, e - b + 1);
}

// Splits at commas outside parentheses.
std::vector<std::string> SplitRequirements(const std::string& selector) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : selector) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(Trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!Trim(cur).empty() || !out.empty()) out.push_back(Trim(cur));
  return out;
}

std::set<std::string> ParseSet(const std::string& s) {
  std::set<std::string> out;
  size_t open = s.find('('), close = s.rfind(')');
  std::string inner = s.substr(open + 1, close - open - 1);
  size_t start = 0;
  while (start <= inner.size()) {
    size_t comma = inner.find(',', start);
    if (comma == std::string::npos) comma = inner.size();
    std::string v = Trim(inner.substr(start, comma - start));
    if (!v.empty()) out.insert(v);
    start = comma + 1;
  }
  return out;
}

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
  auto label = [&](const std::string& k) -> const nlohmann::json* {
    if (!labels.is_object()) return nullptr;
    auto it = labels.find(k);
    return it == labels.end() ? nullptr : &*it;
  };
  for (const std::string& req : SplitRequirements(selector)) {
    if (req.empty()) return InvalidArgument("empty requirement in selector");
    size_t sp = req.find(' ');
    if (sp != std::string::npos && req.find('(') != std::string::npos) {
      std::string key = Trim(req.substr(0, sp));
      std::string rest = Trim(req.substr(sp));
      bool in = rest.rfind("in", 0) == 0;
      bool notin = rest.rfind("notin", 0) == 0;
      if (!in && !notin) return InvalidArgument("bad selector: " + req);
      auto set = ParseSet(rest);
      const nlohmann::json* v = label(key);
      bool member = v && v->is_string() && set.count(v->get<std::string>());
      if (in && !member) return false;
      if (notin && member) return false;  // notin also matches a missing label.
      continue;
    }
    size_t ne = req.find("!=");
    size_t eq = req.find('=');
    if (ne != std::string::npos) {
      const nlohmann::json* v = label(Trim(req.substr(0, ne)));
      if (v && *v == Trim(req.substr(ne + 2))) return false;
    } else if (eq != std::string::npos) {
      size_t vstart = eq + 1;
      if (vstart < req.size() && req[vstart] == '=') ++vstart;
      const nlohmann::json* v = label(Trim(req.substr(0, eq)));
      if (!v || *v != Trim(req.substr(vstart))) return false;
    } else if (req[0] == '!') {
      if (label(Trim(req.substr(1)))) return false;
    } else {
      if (!label(req)) return false;
    }
  }
  return true;
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
