// PodRecord: the compact state of a pod that Ashiato tracks: what a user asks
// about after an incident (node, IPs, images, phase, readiness, owner), and
// nothing else. The agent builds it from a Pod object, prints it, and sends
// it to the aggregator; the aggregator stores and prints it.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/annotation_capture.h"

namespace ashiato {

struct ContainerRecord {
  std::string name;
  std::string image;     // spec image, e.g. "nginx:1.27".
  std::string image_id;  // status imageID with digest, "" until the kubelet reports it.
  bool operator==(const ContainerRecord&) const = default;
};

struct ConditionRecord {
  std::string type;    // "Ready", "PodScheduled", ...
  std::string status;  // "True", "False", "Unknown".
  std::string last_transition_time;
  bool operator==(const ConditionRecord&) const = default;
};

struct PodRecord {
  std::string uid;
  std::string namespace_;
  std::string name;
  std::string node_name;
  std::string pod_ip;
  std::vector<std::string> pod_ips;
  std::string host_ip;
  std::string phase;
  std::vector<ConditionRecord> conditions;
  std::vector<ContainerRecord> containers;  // Init containers first, then app containers.
  std::string owner_kind;                   // "Deployment" when inferred from a ReplicaSet.
  std::string owner_name;
  bool owner_inferred = false;
  std::map<std::string, std::string> labels;
  // Only the annotations --capture-annotations asks for (none by default).
  std::map<std::string, std::string> annotations;
  std::string creation_timestamp;
  std::string deletion_timestamp;  // Set once deletion started.
  std::string resource_version;    // Opaque; compared with CompareResourceVersions.

  // Returns true iff every field a user cares about is equal: everything
  // except resource_version.
  bool SameObservableState(const PodRecord& other) const;
  // "namespace/name".
  std::string Key() const { return namespace_ + "/" + name; }
};

// Builds the record from a Kubernetes Pod object (v1). Unknown fields are
// ignored; missing fields stay empty. Annotations are copied only as
// `capture` selects them (null: none).
PodRecord PodRecordFromPodJson(const nlohmann::json& pod,
                               const AnnotationCapture* capture = nullptr);

// The shared log schema (agent stdout and aggregator unified log), without
// `event`/`timestamp`, which the caller adds. Keeps the old poller's field
// names (DESIGN.md, Output compatibility).
nlohmann::json PodRecordToLogJson(const PodRecord& record);

// Resolves a ReplicaSet name to its Deployment by the pod-template-hash
// suffix rule ("web-7d4b9c8f6d" -> "web"); returns "" when the name has no
// such suffix.
std::string DeploymentFromReplicaSetName(const std::string& replicaset);
// As above, but when `pod_template_hash` (the pod's label) is non-empty the
// suffix must equal it exactly.
std::string DeploymentFromReplicaSetName(const std::string& replicaset,
                                         const std::string& pod_template_hash);

// Parses a line in the PodRecordToLogJson schema back (extra fields such as
// `event` are ignored). The inverse of PodRecordToLogJson.
PodRecord PodRecordFromLogJson(const nlohmann::json& j);

// Orders resource versions: negative, zero, positive like strcmp. Numeric
// when both are decimal (etcd revisions, as every API server emits); else
// byte order.
int CompareResourceVersions(const std::string& a, const std::string& b);

}  // namespace ashiato
