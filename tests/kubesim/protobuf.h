// Decoding of the Kubernetes protobuf wire format ("k8s\0" + runtime.Unknown)
// for the few request bodies kubectl sends as protobuf: typed `kubectl create
// configmap|namespace|serviceaccount|token|role|clusterrole|rolebinding|
// clusterrolebinding`, `kubectl auth can-i` (SelfSubjectAccessReview) and
// DeleteOptions. Responses are always JSON (kubectl accepts it).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kubesim {

// True iff `content_type` is application/vnd.kubernetes.protobuf.
bool IsProtobuf(const std::string& content_type);
// The object as JSON, or nullopt for a malformed body or an unsupported kind.
std::optional<nlohmann::json> DecodeProtobuf(const std::string& body);

}  // namespace kubesim
