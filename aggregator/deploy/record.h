// DeploymentRecord: the body of GitHub's "Create an artifact deployment
// record" (POST /orgs/{org}/artifacts/metadata/deployment-record), and the
// one line per attempt outcome deployment-tracker prints.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace ashiato {

struct DeploymentRecord {
  std::string name;     // Image repository, without tag or digest ("ghcr.io/org/app").
  std::string digest;   // "sha256:...".
  std::string version;  // The tag when the image reference has one.
  std::string status;   // "deployed" or "decommissioned".
  std::string logical_environment, physical_environment, cluster;
  std::string deployment_name;  // DN_TEMPLATE rendered.

  nlohmann::json ToJson() const;
  // Missing fields stay empty.
  static DeploymentRecord FromJson(const nlohmann::json& j);
};

// Splits an image reference into repository and tag:
// "nginx:1.27" -> ("nginx", "1.27"); "reg:5000/a/b@sha256:..." -> ("reg:5000/a/b", "");
// "reg:5000/a/b:v2@sha256:..." -> ("reg:5000/a/b", "v2").
std::pair<std::string, std::string> SplitImageReference(const std::string& image);

// "[2024-01-15T10:30:00Z] OK CREATED name=... deployment_name=... digest=... status=..."
// (event CREATED for deployed, DELETED for decommissioned, as deployment-tracker);
// with a non-empty `error`, "FAILED" and " error=...".
std::string OutcomeLine(const std::string& rfc3339, const DeploymentRecord& r,
                        const std::string& error);

}  // namespace ashiato
