// KubesimProcess: runs build/bin/kubesim as a child process for tests, waits
// for its kubeconfig, and offers small helpers to talk to it (raw API
// requests, the real kubectl, the /kubesim/v1 control endpoints).
//
//   auto sim = KubesimProcess::Start({.nodes = 3, .pods_per_node = 4});
//   ASSERT_TRUE(sim.ok()) << sim.status().ToString();
//   auto r = (*sim)->KubeRequest("GET", "/api/v1/pods");
//   auto k = (*sim)->Kubectl({"get", "pods", "-A"});
//
// Each instance owns a temporary directory (kubeconfig, logs, state file),
// removed by the destructor, which also kills the process if still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/status.h"
#include "tests/testing/subprocess.h"

namespace ashiato::testing {

struct KubesimProcessOptions {
  int nodes = 3;
  int pods_per_node = 4;
  bool tls = false;
  double churn = 0;  // Pod changes per second.
  uint64_t seed = 1;
  // More flags, e.g. {"--bookmark-interval-ms", "200"}.
  std::vector<std::string> extra_args;
  // State file path; "" = none unless persist_state (then <dir>/state.json).
  std::string state_file;
  bool persist_state = false;
  // Port to listen on (0 = any free port; Restart() reuses the bound one).
  uint16_t port = 0;
  // How long to wait for the kubeconfig to appear.
  std::chrono::milliseconds start_timeout{30000};
};

struct CommandResult {
  int exit_code = -1;  // -1 on timeout.
  std::string out;     // stdout
  std::string err;     // stderr
};

class KubesimProcess {
 public:
  // Spawns kubesim and waits for its kubeconfig. Fails with the tail of its
  // stderr if it exits or does not come up within the timeout.
  static Result<std::unique_ptr<KubesimProcess>> Start(KubesimProcessOptions options = {});
  ~KubesimProcess();

  const std::string& kubeconfig_path() const { return kubeconfig_path_; }
  const std::string& server_url() const { return server_url_; }  // "http(s)://127.0.0.1:PORT"
  uint16_t port() const { return port_; }
  const std::string& admin_token() const { return admin_token_; }
  const std::string& ca_pem() const { return ca_pem_; }  // Empty without TLS.
  const std::string& dir() const { return dir_; }        // The instance's temp directory.
  const std::string& state_file() const { return state_file_; }
  const std::string& stderr_path() const { return stderr_path_; }
  pid_t pid() const;
  bool Running();

  // SIGTERM and wait (kubesim saves its state and exits 0). Returns the exit
  // code, or -1 if it had to be killed or was not running.
  int Stop();
  // SIGKILL (no state saved).
  void Kill();
  // Starts kubesim again on the same port with the same options (and state
  // file, if any); waits for the new kubeconfig.
  Status Restart();

  // Client options for this instance (URL, CA, admin token); build your own
  // HttpClient from them, e.g. for a watch stream.
  HttpClientOptions client_options() const;
  // One request with the admin token. `body` is sent with `content_type`.
  Result<ClientResponse> KubeRequest(const std::string& method, const std::string& path,
                                     const std::string& body = "",
                                     const std::string& content_type = "application/json");
  // Same, parsing the body as JSON (error if the body is not JSON).
  Result<nlohmann::json> KubeJson(const std::string& method, const std::string& path,
                                  const std::string& body = "",
                                  const std::string& content_type = "application/json");

  // Runs the real kubectl with --kubeconfig set.
  CommandResult Kubectl(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));
  // Starts kubectl in the background (e.g. `get pods --watch`); its stdout
  // goes to the returned process's stdout_path().
  std::unique_ptr<Subprocess> StartKubectl(const std::vector<std::string>& args);
  // True iff kubectl is on PATH.
  static bool HaveKubectl();

  // POST /kubesim/v1/faults with `faults` (see docs/kubesim.md).
  Status SetFaults(const nlohmann::json& faults);
  // GET /kubesim/v1/requests?since=N: the recorded requests array.
  Result<nlohmann::json> Requests(uint64_t since = 0);
  // GET /kubesim/v1/stats.
  Result<nlohmann::json> Stats();
  // A service account token from the TokenRequest API (kubectl create token).
  Result<std::string> CreateToken(const std::string& ns, const std::string& service_account,
                                  const std::vector<std::string>& audiences = {},
                                  const std::string& bound_pod = "",
                                  int64_t expiration_seconds = 0);

 private:
  KubesimProcess() = default;
  Status Launch();

  KubesimProcessOptions options_;
  std::unique_ptr<Subprocess> process_;
  std::unique_ptr<HttpClient> client_;
  std::string dir_, kubeconfig_path_, server_url_, admin_token_, ca_pem_, state_file_;
  std::string stdout_path_, stderr_path_;
  uint16_t port_ = 0;
  int kubectl_runs_ = 0;
};

}  // namespace ashiato::testing
