#include "aggregator/deploy/config.h"

#include <fstream>
#include <regex>
#include <sstream>

namespace ashiato {
namespace {

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

bool StartsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

}  // namespace

std::string RenderDeploymentName(const std::string& dn_template, const std::string& ns,
                                 const std::string& deployment, const std::string& container) {
  std::string out = dn_template;
  ReplaceAll(out, "{{namespace}}", ns);
  ReplaceAll(out, "{{deploymentName}}", deployment);
  ReplaceAll(out, "{{containerName}}", container);
  return out;
}

Result<DeployConfig> LoadDeployConfig(const DeployFlags& flags,
                                      const std::function<const char*(const char*)>& getenv) {
  DeployConfig c;
  auto pick = [&](const std::string& flag, const char* env, std::string* out) {
    if (!flag.empty()) {
      *out = flag;
      return;
    }
    const char* v = getenv(env);
    if (v && *v) *out = v;
  };
  pick(flags.org, "ORG", &c.org);
  pick(flags.base_url, "BASE_URL", &c.base_url);
  pick(flags.dn_template, "DN_TEMPLATE", &c.dn_template);
  pick(flags.logical_environment, "LOGICAL_ENVIRONMENT", &c.logical_environment);
  pick(flags.physical_environment, "PHYSICAL_ENVIRONMENT", &c.physical_environment);
  pick(flags.cluster, "CLUSTER", &c.cluster);
  if (!flags.api_token_file.empty()) {
    std::ifstream in(flags.api_token_file);
    if (!in) {
      return InvalidArgument("--deployment-api-token-file: cannot read " + flags.api_token_file);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    c.api_token = ss.str();
    while (!c.api_token.empty() && (c.api_token.back() == '\n' || c.api_token.back() == ' ' ||
                                    c.api_token.back() == '\r')) {
      c.api_token.pop_back();
    }
  } else if (const char* t = getenv("API_TOKEN"); t && *t) {
    c.api_token = t;
  }
  c.workers = flags.workers;
  c.reconcile_interval = flags.reconcile_interval;
  c.drain_timeout = flags.drain_timeout;
  c.request_timeout = flags.request_timeout;
  c.backoff_initial = flags.backoff_initial;
  c.backoff_max = flags.backoff_max;
  if (!c.enabled()) return c;
  static const std::regex kOrg("^[A-Za-z0-9_-]+$");
  if (!std::regex_match(c.org, kOrg)) {
    return InvalidArgument("ORG \"" + c.org +
                           "\": an organization name is letters, digits, '-' and '_'");
  }
  if (!StartsWith(c.base_url, "https://") && !StartsWith(c.base_url, "http://")) {
    if (c.base_url.find("://") != std::string::npos) {
      return InvalidArgument("BASE_URL \"" + c.base_url + "\": only http:// and https://");
    }
    c.base_url = "https://" + c.base_url;
  }
  while (!c.base_url.empty() && c.base_url.back() == '/') c.base_url.pop_back();
  if (StartsWith(c.base_url, "http://")) {
    std::string host = c.base_url.substr(7);
    host = host.substr(0, host.find('/'));
    std::string name =
        host.substr(0, host.rfind(':') == std::string::npos ? host.size() : host.rfind(':'));
    bool local = name == "localhost" || name == "127.0.0.1" || name == "[::1]" ||
                 (name.size() > 18 && name.substr(name.size() - 18) == ".svc.cluster.local");
    if (!local) {
      return InvalidArgument("BASE_URL \"" + c.base_url +
                             "\": plain http is allowed only to localhost or *.svc.cluster.local "
                             "(the token would cross the network unencrypted); use https://");
    }
  }
  if (c.base_url == "https://" || c.base_url == "http://") {
    return InvalidArgument("BASE_URL: no host");
  }
  // Only the three placeholders deployment-tracker knows.
  static const std::regex kPlaceholder(R"(\{\{([^}]*)\}\})");
  for (std::sregex_iterator it(c.dn_template.begin(), c.dn_template.end(), kPlaceholder), end;
       it != end; ++it) {
    std::string p = (*it)[1];
    if (p != "namespace" && p != "deploymentName" && p != "containerName") {
      return InvalidArgument("DN_TEMPLATE \"" + c.dn_template + "\": unknown placeholder {{" + p +
                             "}} (use {{namespace}}, {{deploymentName}}, {{containerName}})");
    }
  }
  if (c.dn_template.empty()) return InvalidArgument("DN_TEMPLATE is empty");
  if (c.workers < 1 || c.workers > 64) {
    return InvalidArgument("--deployment-workers " + std::to_string(c.workers) +
                           ": between 1 and 64");
  }
  if (c.backoff_initial.count() <= 0 || c.backoff_max < c.backoff_initial) {
    return InvalidArgument("--deployment-backoff: initial must be positive and not above max");
  }
  if (c.reconcile_interval.count() < 0) {
    return InvalidArgument("--deployment-reconcile-interval must not be negative");
  }
  return c;
}

}  // namespace ashiato
