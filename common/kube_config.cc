// Kubeconfig and in-cluster configuration loading (see kube_client.h).
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/base64.h"
#include "common/kube_client.h"

namespace ashiato {

namespace {

namespace fs = std::filesystem;

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Scalar(const YAML::Node& node, const char* key) {
  if (!node.IsMap()) return "";
  YAML::Node v = node[key];
  if (!v || !v.IsScalar()) return "";
  return v.as<std::string>();
}

// A named entry (cluster, user or context) and the directory of the file it
// came from, against which its relative paths resolve.
struct Entry {
  YAML::Node node;
  fs::path dir;
};

// Clusters, users and contexts of one or more merged kubeconfig files: the
// first file that defines a name wins, as kubectl merges $KUBECONFIG.
struct Merged {
  std::map<std::string, Entry> clusters, users, contexts;
  std::string current_context;
};

Status MergeFile(const std::string& path, Merged* merged) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return NotFound("kubeconfig " + path + " cannot be read");
  } catch (const YAML::Exception& e) {
    return InvalidArgument("kubeconfig " + path + " is not valid YAML: " + e.what());
  }
  if (root.IsNull()) return Status::Ok();  // Empty file: nothing to merge.
  if (!root.IsMap()) return InvalidArgument("kubeconfig " + path + " is not a YAML map");
  fs::path dir = fs::absolute(fs::path(path)).parent_path();
  auto add = [&](const char* list, const char* inner, std::map<std::string, Entry>* out) {
    YAML::Node items = root[list];
    if (!items || !items.IsSequence()) return;
    for (const auto& item : items) {
      std::string name = Scalar(item, "name");
      if (name.empty() || out->count(name)) continue;
      YAML::Node body = item[inner];
      (*out)[name] = Entry{body ? body : YAML::Node(YAML::NodeType::Map), dir};
    }
  };
  add("clusters", "cluster", &merged->clusters);
  add("users", "user", &merged->users);
  add("contexts", "context", &merged->contexts);
  if (merged->current_context.empty()) merged->current_context = Scalar(root, "current-context");
  return Status::Ok();
}

std::string Resolve(const fs::path& dir, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_absolute()) return p;
  return (dir / path).lexically_normal().string();
}

Result<std::string> DecodeBase64Field(const std::string& in, const std::string& what) {
  auto decoded = Base64Decode(in);
  if (!decoded) return InvalidArgument(what + " is not valid base64");
  return *decoded;
}

Result<KubeConfig> BuildConfig(const Merged& m, const std::string& context,
                               const std::string& sources) {
  std::string ctx_name = context.empty() ? m.current_context : context;
  if (ctx_name.empty()) {
    return InvalidArgument("kubeconfig " + sources + " has no current-context; pass --context");
  }
  auto ctx = m.contexts.find(ctx_name);
  if (ctx == m.contexts.end()) {
    return NotFound("context \"" + ctx_name + "\" not found in kubeconfig " + sources);
  }
  KubeConfig config;
  config.namespace_ = Scalar(ctx->second.node, "namespace");
  std::string cluster_name = Scalar(ctx->second.node, "cluster");
  auto cluster = m.clusters.find(cluster_name);
  if (cluster == m.clusters.end()) {
    return NotFound("cluster \"" + cluster_name + "\" of context \"" + ctx_name +
                    "\" not found in kubeconfig " + sources);
  }
  const YAML::Node& c = cluster->second.node;
  config.server = Scalar(c, "server");
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  if (config.server.empty()) {
    return InvalidArgument("cluster \"" + cluster_name + "\" has no server in " + sources);
  }
  config.ca_file = Resolve(cluster->second.dir, Scalar(c, "certificate-authority"));
  std::string ca_data = Scalar(c, "certificate-authority-data");
  if (!ca_data.empty()) {
    auto pem = DecodeBase64Field(ca_data, "certificate-authority-data");
    if (!pem.ok()) return pem.status();
    config.ca_pem = *pem;
  }
  config.insecure_skip_tls_verify = Scalar(c, "insecure-skip-tls-verify") == "true";

  std::string user_name = Scalar(ctx->second.node, "user");
  if (user_name.empty()) return config;  // Anonymous.
  auto user = m.users.find(user_name);
  if (user == m.users.end()) {
    return NotFound("user \"" + user_name + "\" of context \"" + ctx_name +
                    "\" not found in kubeconfig " + sources);
  }
  const YAML::Node& u = user->second.node;
  const fs::path& udir = user->second.dir;
  config.client_cert_file = Resolve(udir, Scalar(u, "client-certificate"));
  config.client_key_file = Resolve(udir, Scalar(u, "client-key"));
  for (auto [key, out] : {std::pair{"client-certificate-data", &config.client_cert_pem},
                          std::pair{"client-key-data", &config.client_key_pem}}) {
    std::string data = Scalar(u, key);
    if (data.empty()) continue;
    auto pem = DecodeBase64Field(data, key);
    if (!pem.ok()) return pem.status();
    *out = *pem;
  }
  config.token = Scalar(u, "token");
  config.token_file = Resolve(udir, Scalar(u, "tokenFile"));
  YAML::Node exec = u["exec"];
  if (exec && exec.IsMap()) {
    ExecCredentialPlugin plugin;
    plugin.command = Scalar(exec, "command");
    // As client-go: a command with a path separator is relative to the
    // kubeconfig; a bare name is looked up on PATH.
    if (plugin.command.find('/') != std::string::npos) {
      plugin.command = Resolve(udir, plugin.command);
    }
    plugin.api_version = Scalar(exec, "apiVersion");
    if (plugin.command.empty())
      return InvalidArgument("exec plugin of \"" + user_name + "\" has no command");
    if (plugin.api_version.empty()) {
      return InvalidArgument("exec plugin of \"" + user_name + "\" has no apiVersion");
    }
    YAML::Node args = exec["args"];
    if (args && args.IsSequence()) {
      for (const auto& a : args) plugin.args.push_back(a.as<std::string>());
    }
    YAML::Node env = exec["env"];
    if (env && env.IsSequence()) {
      for (const auto& e : env) plugin.env.emplace_back(Scalar(e, "name"), Scalar(e, "value"));
    }
    config.exec = std::move(plugin);
  }
  if (u["auth-provider"]) {
    return InvalidArgument("user \"" + user_name +
                           "\" uses auth-provider, which is not supported; use an exec plugin");
  }
  return config;
}

bool FileExists(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

Result<KubeConfig> LoadKubeConfigFiles(const std::vector<std::string>& paths,
                                       const std::string& context) {
  Merged merged;
  std::string sources;
  // yaml-cpp throws on a node of an unexpected kind (a map where a scalar
  // belongs, a subscript of a scalar): an error in the file, not a crash.
  try {
    for (const auto& p : paths) {
      Status s = MergeFile(p, &merged);
      if (!s.ok()) return s;
      sources += (sources.empty() ? "" : ":") + p;
    }
    return BuildConfig(merged, context, sources);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("kubeconfig " + (sources.empty() ? paths.front() : sources) +
                           " is not a valid kubeconfig: " + e.what());
  }
}

}  // namespace

Result<KubeConfig> LoadKubeConfigFile(const std::string& path, const std::string& context) {
  return LoadKubeConfigFiles({path}, context);
}

Result<KubeConfig> LoadInClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return NotFound(
        "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  }
  KubeConfig config;
  config.in_cluster = true;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6 literal.
  config.server = "https://" + h + ":" + port;
  config.token_file = sa_dir + "/token";
  if (!FileExists(config.token_file)) {
    return NotFound("in-cluster: service account token " + config.token_file + " not found");
  }
  std::string ca = sa_dir + "/ca.crt";
  if (FileExists(ca)) config.ca_file = ca;
  auto ns = ReadFile(sa_dir + "/namespace");
  if (ns.ok()) config.namespace_ = Trim(*ns);
  return config;
}

Result<KubeConfig> ResolveKubeConfig(const std::string& explicit_path, const std::string& context) {
  if (!explicit_path.empty()) return LoadKubeConfigFile(explicit_path, context);
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    std::vector<std::string> paths;
    std::stringstream ss(env);
    std::string p;
    while (std::getline(ss, p, ':')) {
      if (!p.empty() && FileExists(p)) paths.push_back(p);
    }
    if (paths.empty()) {
      return NotFound(std::string("$KUBECONFIG=") + env + " names no readable file");
    }
    return LoadKubeConfigFiles(paths, context);
  }
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0' && context.empty()) return LoadInClusterConfig();
  const char* home = std::getenv("HOME");
  std::string home_config = std::string(home != nullptr ? home : "") + "/.kube/config";
  if (FileExists(home_config)) return LoadKubeConfigFile(home_config, context);
  return NotFound(
      "no cluster configuration: tried --kubeconfig (not set), $KUBECONFIG (not set), "
      "in-cluster (KUBERNETES_SERVICE_HOST not set) and " +
      home_config + " (not found)");
}

}  // namespace ashiato
