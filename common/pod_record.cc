#include "common/pod_record.h"

#include <algorithm>
#include <string_view>

#include "common/json_fields.h"

namespace ashiato {

namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) { return JsonStringField(j, key); }
const json& Obj(const json& j, const char* key) { return JsonField(j, key); }

// The alphabet of rand.SafeEncodeString, which generates pod-template-hash
// values (no vowels, no 0/1/3 so no words form).
bool IsSafeEncodeChar(char c) {
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  return kAlphabet.find(c) != std::string_view::npos;
}

void AddContainers(const json& specs, const json& statuses, std::vector<ContainerRecord>* out) {
  if (!specs.is_array()) return;
  for (const auto& c : specs) {
    ContainerRecord rec;
    rec.name = Str(c, "name");
    rec.image = Str(c, "image");
    if (statuses.is_array()) {
      for (const auto& s : statuses) {
        if (Str(s, "name") == rec.name) {
          rec.image_id = Str(s, "imageID");
          break;
        }
      }
    }
    out->push_back(std::move(rec));
  }
}

bool IsDecimal(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

bool PodRecord::SameObservableState(const PodRecord& o) const {
  return uid == o.uid && namespace_ == o.namespace_ && name == o.name && node_name == o.node_name &&
         pod_ip == o.pod_ip && pod_ips == o.pod_ips && host_ip == o.host_ip && phase == o.phase &&
         conditions == o.conditions && containers == o.containers && owner_kind == o.owner_kind &&
         owner_name == o.owner_name && owner_inferred == o.owner_inferred && labels == o.labels &&
         annotations == o.annotations && creation_timestamp == o.creation_timestamp &&
         deletion_timestamp == o.deletion_timestamp;
}

std::string DeploymentFromReplicaSetName(const std::string& replicaset,
                                         const std::string& pod_template_hash) {
  auto dash = replicaset.rfind('-');
  if (dash == std::string::npos || dash == 0) return "";
  std::string suffix = replicaset.substr(dash + 1);
  if (!pod_template_hash.empty()) {
    return suffix == pod_template_hash ? replicaset.substr(0, dash) : "";
  }
  if (suffix.size() < 6 || suffix.size() > 10) return "";
  if (!std::all_of(suffix.begin(), suffix.end(), IsSafeEncodeChar)) return "";
  return replicaset.substr(0, dash);
}

std::string DeploymentFromReplicaSetName(const std::string& replicaset) {
  return DeploymentFromReplicaSetName(replicaset, "");
}

PodRecord PodRecordFromPodJson(const json& pod, const AnnotationCapture* capture) {
  PodRecord r;
  const json& meta = Obj(pod, "metadata");
  const json& spec = Obj(pod, "spec");
  const json& status = Obj(pod, "status");

  r.uid = Str(meta, "uid");
  r.namespace_ = Str(meta, "namespace");
  r.name = Str(meta, "name");
  r.creation_timestamp = Str(meta, "creationTimestamp");
  r.deletion_timestamp = Str(meta, "deletionTimestamp");
  r.resource_version = Str(meta, "resourceVersion");
  const json& labels = Obj(meta, "labels");
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      if (it.value().is_string()) r.labels[it.key()] = it.value().get<std::string>();
    }
  }
  const json& annotations = Obj(meta, "annotations");
  if (capture != nullptr && !capture->empty() && annotations.is_object()) {
    std::map<std::string, std::string> wanted;
    for (auto it = annotations.begin(); it != annotations.end(); ++it) {
      if (it.value().is_string() && capture->Matches(it.key())) {
        wanted[it.key()] = it.value().get<std::string>();
      }
    }
    r.annotations = capture->Select(wanted);
  }

  // The controller reference is the owner; without one, the first reference.
  const json& owners = Obj(meta, "ownerReferences");
  const json* owner = nullptr;
  if (owners.is_array()) {
    for (const auto& o : owners) {
      auto c = o.find("controller");
      if (c != o.end() && c->is_boolean() && c->get<bool>()) {
        owner = &o;
        break;
      }
    }
    if (owner == nullptr && !owners.empty()) owner = &owners[0];
  }
  if (owner != nullptr) {
    r.owner_kind = Str(*owner, "kind");
    r.owner_name = Str(*owner, "name");
    if (r.owner_kind == "ReplicaSet") {
      auto hash_it = r.labels.find("pod-template-hash");
      std::string deployment = DeploymentFromReplicaSetName(
          r.owner_name, hash_it == r.labels.end() ? "" : hash_it->second);
      if (!deployment.empty()) {
        r.owner_kind = "Deployment";
        r.owner_name = deployment;
        r.owner_inferred = true;
      }
    }
  }

  r.node_name = Str(spec, "nodeName");
  r.phase = Str(status, "phase");
  r.pod_ip = Str(status, "podIP");
  r.host_ip = Str(status, "hostIP");
  const json& ips = Obj(status, "podIPs");
  if (ips.is_array()) {
    for (const auto& ip : ips) {
      std::string s = Str(ip, "ip");
      if (!s.empty()) r.pod_ips.push_back(s);
    }
  }
  if (r.pod_ips.empty() && !r.pod_ip.empty()) r.pod_ips.push_back(r.pod_ip);
  const json& conditions = Obj(status, "conditions");
  if (conditions.is_array()) {
    for (const auto& c : conditions) {
      r.conditions.push_back({Str(c, "type"), Str(c, "status"), Str(c, "lastTransitionTime")});
    }
  }
  AddContainers(Obj(spec, "initContainers"), Obj(status, "initContainerStatuses"), &r.containers);
  AddContainers(Obj(spec, "containers"), Obj(status, "containerStatuses"), &r.containers);
  return r;
}

json PodRecordToLogJson(const PodRecord& r) {
  json j = json::object();
  j["namespace"] = r.namespace_;
  j["pod_name"] = r.name;
  j["uid"] = r.uid;
  j["node_name"] = r.node_name;
  j["pod_ip"] = r.pod_ip;
  j["pod_ips"] = r.pod_ips;
  j["host_ip"] = r.host_ip;
  j["phase"] = r.phase;
  json conditions = json::array();
  for (const auto& c : r.conditions) {
    conditions.push_back(
        {{"type", c.type}, {"status", c.status}, {"last_transition_time", c.last_transition_time}});
  }
  j["conditions"] = std::move(conditions);
  json containers = json::array();
  for (const auto& c : r.containers) {
    containers.push_back({{"name", c.name}, {"image", c.image}, {"image_id", c.image_id}});
  }
  j["containers"] = std::move(containers);
  if (r.owner_kind.empty() && r.owner_name.empty()) {
    j["owner"] = nullptr;
  } else {
    j["owner"] = {{"kind", r.owner_kind}, {"name", r.owner_name}, {"inferred", r.owner_inferred}};
  }
  j["labels"] = r.labels;
  if (!r.annotations.empty()) j["annotations"] = r.annotations;
  j["creation_timestamp"] = r.creation_timestamp;
  j["deletion_timestamp"] =
      r.deletion_timestamp.empty() ? json(nullptr) : json(r.deletion_timestamp);
  j["resource_version"] = r.resource_version;
  return j;
}

PodRecord PodRecordFromLogJson(const json& j) {
  PodRecord r;
  r.namespace_ = Str(j, "namespace");
  r.name = Str(j, "pod_name");
  r.uid = Str(j, "uid");
  r.node_name = Str(j, "node_name");
  r.pod_ip = Str(j, "pod_ip");
  const json& ips = Obj(j, "pod_ips");
  if (ips.is_array()) {
    for (const auto& ip : ips) {
      if (ip.is_string()) r.pod_ips.push_back(ip.get<std::string>());
    }
  }
  r.host_ip = Str(j, "host_ip");
  r.phase = Str(j, "phase");
  const json& conditions = Obj(j, "conditions");
  if (conditions.is_array()) {
    for (const auto& c : conditions) {
      r.conditions.push_back({Str(c, "type"), Str(c, "status"), Str(c, "last_transition_time")});
    }
  }
  const json& containers = Obj(j, "containers");
  if (containers.is_array()) {
    for (const auto& c : containers) {
      r.containers.push_back({Str(c, "name"), Str(c, "image"), Str(c, "image_id")});
    }
  }
  const json& owner = Obj(j, "owner");
  if (owner.is_object()) {
    r.owner_kind = Str(owner, "kind");
    r.owner_name = Str(owner, "name");
    auto inferred = owner.find("inferred");
    r.owner_inferred = inferred != owner.end() && inferred->is_boolean() && inferred->get<bool>();
  }
  const json& labels = Obj(j, "labels");
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      if (it.value().is_string()) r.labels[it.key()] = it.value().get<std::string>();
    }
  }
  const json& annotations = Obj(j, "annotations");
  if (annotations.is_object()) {
    for (auto it = annotations.begin(); it != annotations.end(); ++it) {
      if (it.value().is_string()) r.annotations[it.key()] = it.value().get<std::string>();
    }
  }
  r.creation_timestamp = Str(j, "creation_timestamp");
  r.deletion_timestamp = Str(j, "deletion_timestamp");
  r.resource_version = Str(j, "resource_version");
  return r;
}

int CompareResourceVersions(const std::string& a, const std::string& b) {
  if (IsDecimal(a) && IsDecimal(b)) {
    auto strip = [](const std::string& s) {
      size_t i = s.find_first_not_of('0');
      return i == std::string::npos ? std::string_view() : std::string_view(s).substr(i);
    };
    std::string_view x = strip(a), y = strip(b);
    if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
    int c = x.compare(y);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

}  // namespace ashiato
