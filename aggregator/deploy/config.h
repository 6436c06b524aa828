// DeployConfig: where deployment records go and what they say, configured
// exactly as github/deployment-tracker is (docs/deployment-records.md):
// environment variables ORG (required to enable), BASE_URL, DN_TEMPLATE,
// LOGICAL_ENVIRONMENT, PHYSICAL_ENVIRONMENT, CLUSTER, API_TOKEN. Flags of
// the aggregator with the same meaning (--deployment-org, ...) win over the
// environment when set.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"

namespace ashiato {

struct DeployConfig {
  // ORG: the GitHub organization; "" = deployment records disabled.
  std::string org;
  // BASE_URL with its scheme ("https://" added when missing).
  std::string base_url = "https://api.github.com";
  // DN_TEMPLATE over {{namespace}}, {{deploymentName}}, {{containerName}}.
  std::string dn_template = "{{namespace}}/{{deploymentName}}/{{containerName}}";
  std::string logical_environment;
  std::string physical_environment;
  std::string cluster;
  // API_TOKEN: sent as "Authorization: Bearer"; "" sends none.
  std::string api_token;
  // --deployment-workers: concurrent POSTs.
  int workers = 2;
  // --deployment-reconcile-interval: full list of deployments to the
  // cluster endpoint, once at start and then this often; 0 = never.
  std::chrono::milliseconds reconcile_interval{std::chrono::hours(1)};
  // How long SIGTERM waits for requests in flight.
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(10)};
  // Per-request timeout (a hanging service must not hold a worker forever).
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  // Backoff between attempts of one record.
  std::chrono::milliseconds backoff_initial{std::chrono::seconds(1)};
  std::chrono::milliseconds backoff_max{std::chrono::minutes(5)};

  bool enabled() const { return !org.empty(); }
};

// The flags' values; an empty string (or negative number) means "not set":
// the environment decides.
struct DeployFlags {
  std::string org, base_url, dn_template, logical_environment, physical_environment, cluster,
      api_token_file;
  int workers = 2;
  std::chrono::milliseconds reconcile_interval{std::chrono::hours(1)};
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds backoff_initial{std::chrono::seconds(1)};
  std::chrono::milliseconds backoff_max{std::chrono::minutes(5)};
};

// Reads the environment through `getenv` (std::getenv in production), then
// the flags over it. InvalidArgument, naming the variable, for an invalid
// ORG, BASE_URL (plain http:// only to loopback or *.svc.cluster.local, as
// deployment-tracker), DN_TEMPLATE (unknown {{placeholder}}) or worker count.
Result<DeployConfig> LoadDeployConfig(const DeployFlags& flags,
                                      const std::function<const char*(const char*)>& getenv);

// Renders DN_TEMPLATE.
std::string RenderDeploymentName(const std::string& dn_template, const std::string& ns,
                                 const std::string& deployment, const std::string& container);

}  // namespace ashiato
