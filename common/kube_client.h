// Kubernetes API access: where the API server is and who we are (kubeconfig
// or in-cluster), and a thin client for JSON requests and watch streams.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_client.h"
#include "common/status.h"

namespace ashiato {

// An `exec` credential plugin as kubeconfig describes it (client.authentication.k8s.io).
struct ExecCredentialPlugin {
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string api_version;  // e.g. "client.authentication.k8s.io/v1".
};

struct KubeConfig {
  std::string server;  // "https://host:port".
  std::string ca_file;
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  std::string client_cert_file, client_key_file, client_cert_pem, client_key_pem;
  std::string token;       // Static token.
  std::string token_file;  // Re-read when it changes (bound tokens rotate).
  std::optional<ExecCredentialPlugin> exec;
  std::string namespace_;  // Context namespace, or the pod's namespace in-cluster.
  bool in_cluster = false;
};

// Loads `path` (a kubeconfig file) using `context` or the current context.
Result<KubeConfig> LoadKubeConfigFile(const std::string& path, const std::string& context = "");
// In-cluster: KUBERNETES_SERVICE_HOST/PORT and the service account files under `sa_dir`.
Result<KubeConfig> LoadInClusterConfig(
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");
// The usual order: explicit path, else $KUBECONFIG, else in-cluster when
// running in a pod, else ~/.kube/config. Clear error naming what was tried.
Result<KubeConfig> ResolveKubeConfig(const std::string& explicit_path, const std::string& context);

// What an exec credential plugin printed (an ExecCredential's status).
struct ExecCredentialStatus {
  std::string token;
  std::string client_certificate_pem, client_key_pem;
  // status.expirationTimestamp; nullopt when absent or unparseable.
  std::optional<std::chrono::system_clock::time_point> expires;
};

// Parses the stdout of the exec plugin `command` that must answer with
// `api_version`. InvalidArgument when it is not an ExecCredential of that
// version or carries neither a token nor a client certificate.
Result<ExecCredentialStatus> ParseExecCredential(std::string_view plugin_stdout,
                                                 const std::string& api_version,
                                                 const std::string& command);

// Supplies the current bearer token: static, re-read from a file when its
// mtime changes, or obtained from an exec plugin and cached until it expires.
// Thread-safe.
class TokenSource {
 public:
  explicit TokenSource(const KubeConfig& config);
  // The token to send now ("" when the config has none).
  std::string Token();
  // Forget a cached exec/file token (call after a 401).
  void Invalidate();
  // The client certificate and key (PEM) an exec plugin returned, running
  // it if needed. Returns false when the plugin gave none (or there is no plugin).
  bool ExecClientCertificate(std::string* cert_pem, std::string* key_pem);
  // The last exec plugin or token file error ("" if none), for diagnostics.
  std::string LastError();

 private:
  // Runs the exec plugin and caches its answer. Requires mu_.
  void RunExecLocked();

  std::mutex mu_;
  KubeConfig config_;
  std::string cached_;
  std::chrono::system_clock::time_point expires_{};
  long long file_mtime_ns_ = -1;
  bool exec_valid_ = false;
  std::string exec_cert_pem_, exec_key_pem_;
  std::string last_error_;
};

// Maps an HTTP answer from the API server to a Status: 2xx OK, 404 NotFound,
// 409 Conflict, 410 Expired, 401/403, 429/5xx Unavailable (Retry-After kept),
// others Internal. The message comes from the Status object's message when present.
Status StatusFromApiResponse(const ClientResponse& response);

class KubeClient {
 public:
  explicit KubeClient(const KubeConfig& config, std::string user_agent = "ashiato");

  // JSON request; non-2xx answers become a Status (see StatusFromApiResponse).
  // `content_type` matters for PATCH ("application/merge-patch+json").
  // `timeout` bounds the whole request (negative: the client default, 30 s).
  Result<nlohmann::json> Request(const std::string& method, const std::string& path_and_query,
                                 const nlohmann::json* body = nullptr,
                                 const std::string& content_type = "application/json",
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));
  Result<nlohmann::json> Get(const std::string& path_and_query) {
    return Request("GET", path_and_query);
  }

  // Opens a watch (path must include watch=1) and calls on_event for each
  // event object until the stream ends (OK), on_event returns false (OK),
  // or an error. A non-2xx answer is returned as a Status.
  Status Watch(const std::string& path_and_query,
               const std::function<bool(const nlohmann::json& event)>& on_event,
               std::chrono::milliseconds timeout);

  // Aborts a running Watch/Request from another thread.
  void Cancel() { http_.Cancel(); }
  // Undoes Cancel() for later calls.
  void ResetCancel() { http_.Reset(); }
  TokenSource& tokens() { return *tokens_; }

 private:
  std::shared_ptr<TokenSource> tokens_;
  HttpClient http_;
};

}  // namespace ashiato
