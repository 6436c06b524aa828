#include "aggregator/deploy/record.h"

namespace ashiato {

nlohmann::json DeploymentRecord::ToJson() const {
  nlohmann::json j = {{"name", name},
                      {"digest", digest},
                      {"status", status},
                      {"logical_environment", logical_environment},
                      {"physical_environment", physical_environment},
                      {"cluster", cluster},
                      {"deployment_name", deployment_name}};
  if (!version.empty()) j["version"] = version;
  return j;
}

DeploymentRecord DeploymentRecord::FromJson(const nlohmann::json& j) {
  DeploymentRecord r;
  auto get = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  r.name = get("name");
  r.digest = get("digest");
  r.version = get("version");
  r.status = get("status");
  r.logical_environment = get("logical_environment");
  r.physical_environment = get("physical_environment");
  r.cluster = get("cluster");
  r.deployment_name = get("deployment_name");
  return r;
}

std::pair<std::string, std::string> SplitImageReference(const std::string& image) {
  std::string ref = image.substr(0, image.find('@'));
  size_t slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {ref.substr(0, colon), ref.substr(colon + 1)};
  }
  return {ref, ""};
}

std::string OutcomeLine(const std::string& rfc3339, const DeploymentRecord& r,
                        const std::string& error) {
  std::string event = r.status == "decommissioned" ? "DELETED" : "CREATED";
  std::string line = "[" + rfc3339 + "] " + (error.empty() ? "OK " : "FAILED ") + event +
                     " name=" + r.name + " deployment_name=" + r.deployment_name +
                     " digest=" + r.digest + " status=" + r.status;
  if (!error.empty()) line += " error=" + error;
  return line;
}

}  // namespace ashiato
