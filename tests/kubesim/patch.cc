#include "tests/kubesim/patch.h"

#include <yaml-cpp/yaml.h>

#include <map>

namespace kubesim {
namespace {

using json = nlohmann::json;

const std::map<std::string, std::string>& MergeKeys() {
  static const std::map<std::string, std::string> kKeys = {
      {"conditions", "type"},
      {"containers", "name"},
      {"initContainers", "name"},
      {"ephemeralContainers", "name"},
      {"containerStatuses", "name"},
      {"initContainerStatuses", "name"},
      {"ownerReferences", "uid"},
      {"podIPs", "ip"},
      {"hostIPs", "ip"},
      {"addresses", "type"},
      {"volumes", "name"},
      {"env", "name"},
      {"ports", "containerPort"},
      {"volumeMounts", "mountPath"},
      {"tolerations", "key"},
      {"imagePullSecrets", "name"},
      {"secrets", "name"},
      {"finalizers", ""},
  };
  return kKeys;
}

void StrategicList(json& target, const json& patch, const std::string& key) {
  if (!target.is_array()) target = json::array();
  if (key.empty()) {
    // Primitive list with merge semantics (finalizers): union.
    for (const auto& v : patch) {
      if (std::find(target.begin(), target.end(), v) == target.end()) target.push_back(v);
    }
    return;
  }
  for (const auto& p : patch) {
    if (!p.is_object() || !p.contains(key)) {
      target.push_back(p);
      continue;
    }
    auto it = std::find_if(target.begin(), target.end(), [&](const json& t) {
      return t.is_object() && t.contains(key) && t[key] == p[key];
    });
    std::string directive = p.value("$patch", "");
    if (directive == "delete") {
      if (it != target.end()) target.erase(it);
      continue;
    }
    if (it == target.end()) {
      json copy = p;
      copy.erase("$patch");
      target.push_back(copy);
    } else {
      StrategicMergePatch(*it, p);
    }
  }
}

json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return s;
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      if (!s.empty() && s.find_first_not_of("-0123456789") == std::string::npos && s != "-") {
        try {
          return std::stoll(s);
        } catch (...) {
        }
      }
      return s;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& e : n) a.push_back(YamlToJson(e));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return o;
    }
  }
  return nullptr;
}

}  // namespace

std::optional<PatchType> ParsePatchType(const std::string& content_type) {
  std::string ct = content_type.substr(0, content_type.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  if (ct == "application/merge-patch+json") return PatchType::kMerge;
  if (ct == "application/strategic-merge-patch+json") return PatchType::kStrategic;
  if (ct == "application/json-patch+json") return PatchType::kJsonPatch;
  if (ct == "application/apply-patch+yaml" || ct == "application/apply-patch+cbor")
    return PatchType::kApply;
  return std::nullopt;
}

void MergePatch(json& target, const json& patch) { target.merge_patch(patch); }

void StrategicMergePatch(json& target, const json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  if (patch.value("$patch", "") == "replace") {
    target = patch;
    target.erase("$patch");
    return;
  }
  for (const auto& [k, v] : patch.items()) {
    if (k.rfind("$setElementOrder/", 0) == 0 || k == "$retainKeys" || k == "$patch" ||
        k.rfind("$deleteFromPrimitiveList/", 0) == 0) {
      continue;
    }
    if (v.is_null()) {
      target.erase(k);
    } else if (v.is_object()) {
      StrategicMergePatch(target[k], v);
    } else if (v.is_array() && MergeKeys().count(k)) {
      StrategicList(target[k], v, MergeKeys().at(k));
    } else {
      target[k] = v;
    }
  }
}

void ApplyPatch(json& target, const json& applied) { StrategicMergePatch(target, applied); }

std::optional<json> ParseJsonOrYaml(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded()) return j;
  try {
    YAML::Node n = YAML::Load(body);
    return YamlToJson(n);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace kubesim
