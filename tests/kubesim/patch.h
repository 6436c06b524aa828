// Patch formats the API server accepts, applied to an object's JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kubesim {

enum class PatchType { kMerge, kStrategic, kJsonPatch, kApply };

// From the Content-Type header; nullopt for an unsupported type (415).
std::optional<PatchType> ParsePatchType(const std::string& content_type);

// RFC 7386 JSON merge patch.
void MergePatch(nlohmann::json& target, const nlohmann::json& patch);
// Strategic merge patch for the core fields Ashiato and kubectl touch: like a
// merge patch, but lists with a merge key (conditions by type, containers
// and containerStatuses by name, ownerReferences by uid, podIPs by ip,
// addresses by type, ...) are merged element-wise; `$patch: delete`,
// `$patch: replace` and `$setElementOrder`/`$retainKeys` directives are honoured
// or ignored as harmless.
void StrategicMergePatch(nlohmann::json& target, const nlohmann::json& patch);
// Server-side apply, simplified: the applied configuration is merged into
// the live object (no field ownership tracking).
void ApplyPatch(nlohmann::json& target, const nlohmann::json& applied);

// Parses a request body that is JSON or YAML into JSON. nullopt if neither.
std::optional<nlohmann::json> ParseJsonOrYaml(const std::string& body);

}  // namespace kubesim
