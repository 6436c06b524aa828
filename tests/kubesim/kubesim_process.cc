#include "tests/kubesim/kubesim_process.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/base64.h"

namespace ashiato::testing {
namespace {

#ifndef KUBESIM_BIN
#define KUBESIM_BIN "kubesim"
#endif

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

// The value after "key: " on the first line that has it.
std::string YamlValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto p = line.find(key + ": ");
    if (p != std::string::npos && line.find_first_not_of(" -") == p)
      return line.substr(p + key.size() + 2);
  }
  return "";
}

}  // namespace

Result<std::unique_ptr<KubesimProcess>> KubesimProcess::Start(KubesimProcessOptions options) {
  std::unique_ptr<KubesimProcess> p(new KubesimProcess());
  p->options_ = std::move(options);
  p->dir_ = MakeTempDir("kubesim");
  p->kubeconfig_path_ = p->dir_ + "/kubeconfig";
  p->stdout_path_ = p->dir_ + "/kubesim.stdout";
  p->stderr_path_ = p->dir_ + "/kubesim.stderr";
  p->state_file_ = p->options_.state_file;
  if (p->state_file_.empty() && p->options_.persist_state) p->state_file_ = p->dir_ + "/state.json";
  p->port_ = p->options_.port;
  Status s = p->Launch();
  if (!s.ok()) return s;
  return p;
}

Status KubesimProcess::Launch() {
  unlink(kubeconfig_path_.c_str());
  std::vector<std::string> argv = {KUBESIM_BIN,
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port_),
                                   "--nodes",
                                   std::to_string(options_.nodes),
                                   "--pods-per-node",
                                   std::to_string(options_.pods_per_node),
                                   "--kubeconfig-out",
                                   kubeconfig_path_,
                                   "--seed",
                                   std::to_string(options_.seed)};
  if (options_.tls) argv.push_back("--tls");
  if (options_.churn > 0) {
    argv.push_back("--churn");
    argv.push_back(std::to_string(options_.churn));
  }
  if (!state_file_.empty()) {
    argv.push_back("--state-file");
    argv.push_back(state_file_);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process_ = Subprocess::Start(argv, stdout_path_, stderr_path_);
  if (!process_) return Internal("cannot start " + std::string(KUBESIM_BIN));
  bool up =
      WaitFor([&] { return access(kubeconfig_path_.c_str(), R_OK) == 0 || !process_->Running(); },
              options_.start_timeout);
  if (!up || access(kubeconfig_path_.c_str(), R_OK) != 0) {
    process_->Kill();
    return Unavailable("kubesim did not come up; stderr: " + Tail(ReadFile(stderr_path_), 2000));
  }
  std::string kc = ReadFile(kubeconfig_path_);
  server_url_ = YamlValue(kc, "server");
  admin_token_ = YamlValue(kc, "token");
  std::string ca = YamlValue(kc, "certificate-authority-data");
  ca_pem_ = ca.empty() ? "" : Base64Decode(ca).value_or("");
  port_ = static_cast<uint16_t>(std::stoi(server_url_.substr(server_url_.rfind(':') + 1)));
  client_ = std::make_unique<HttpClient>(client_options());
  return Status::Ok();
}

KubesimProcess::~KubesimProcess() {
  client_.reset();
  if (process_) process_->Kill();
  process_.reset();
  if (!dir_.empty()) RemoveTree(dir_);
}

pid_t KubesimProcess::pid() const { return process_ ? process_->pid() : -1; }

bool KubesimProcess::Running() { return process_ && process_->Running(); }

int KubesimProcess::Stop() {
  if (!process_ || !process_->Running()) return -1;
  client_.reset();
  int status = process_->Stop(std::chrono::milliseconds(20000));
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void KubesimProcess::Kill() {
  client_.reset();
  if (process_) process_->Kill();
}

Status KubesimProcess::Restart() {
  if (process_ && process_->Running()) Stop();
  return Launch();
}

HttpClientOptions KubesimProcess::client_options() const {
  HttpClientOptions o;
  o.base_url = server_url_;
  o.ca_pem = ca_pem_;
  std::string token = admin_token_;
  o.bearer_token = [token] { return token; };
  o.request_timeout_ms = 30000;
  return o;
}

Result<ClientResponse> KubesimProcess::KubeRequest(const std::string& method,
                                                   const std::string& path, const std::string& body,
                                                   const std::string& content_type) {
  if (!client_) client_ = std::make_unique<HttpClient>(client_options());
  std::vector<std::pair<std::string, std::string>> headers;
  if (!body.empty()) headers.emplace_back("Content-Type", content_type);
  headers.emplace_back("Accept", "application/json");
  return client_->Do(method, path, body, headers);
}

Result<nlohmann::json> KubesimProcess::KubeJson(const std::string& method, const std::string& path,
                                                const std::string& body,
                                                const std::string& content_type) {
  auto r = KubeRequest(method, path, body, content_type);
  if (!r.ok()) return r.status();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded())
    return Internal("not JSON (HTTP " + std::to_string(r->status) + "): " + Tail(r->body, 500));
  return j;
}

bool KubesimProcess::HaveKubectl() {
  std::string out;
  return RunCommand({"/bin/sh", "-c", "command -v kubectl"}, &out,
                    std::chrono::milliseconds(10000)) == 0;
}

CommandResult KubesimProcess::Kubectl(const std::vector<std::string>& args,
                                      std::chrono::milliseconds timeout) {
  CommandResult res;
  std::string base = dir_ + "/kubectl-" + std::to_string(kubectl_runs_++);
  std::vector<std::string> argv = {"kubectl", "--kubeconfig", kubeconfig_path_};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Subprocess::Start(argv, base + ".out", base + ".err",
                             {"HOME=" + dir_, "KUBECACHEDIR=" + dir_ + "/kubecache"});
  if (!p) return res;
  int status = p->Wait(timeout);
  if (status == -1) {
    p->Kill();
  } else {
    res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  res.out = ReadFile(base + ".out");
  res.err = ReadFile(base + ".err");
  return res;
}

std::unique_ptr<Subprocess> KubesimProcess::StartKubectl(const std::vector<std::string>& args) {
  std::string base = dir_ + "/kubectl-bg-" + std::to_string(kubectl_runs_++);
  std::vector<std::string> argv = {"kubectl", "--kubeconfig", kubeconfig_path_};
  argv.insert(argv.end(), args.begin(), args.end());
  return Subprocess::Start(argv, base + ".out", base + ".err",
                           {"HOME=" + dir_, "KUBECACHEDIR=" + dir_ + "/kubecache"});
}

Status KubesimProcess::SetFaults(const nlohmann::json& faults) {
  auto r = KubeRequest("POST", "/kubesim/v1/faults", faults.dump());
  if (!r.ok()) return r.status();
  if (r->status != 200)
    return Internal("faults: HTTP " + std::to_string(r->status) + ": " + r->body);
  return Status::Ok();
}

Result<nlohmann::json> KubesimProcess::Requests(uint64_t since) {
  auto j = KubeJson("GET", "/kubesim/v1/requests?since=" + std::to_string(since));
  if (!j.ok()) return j.status();
  return (*j)["requests"];
}

Result<nlohmann::json> KubesimProcess::Stats() { return KubeJson("GET", "/kubesim/v1/stats"); }

Result<std::string> KubesimProcess::CreateToken(const std::string& ns,
                                                const std::string& service_account,
                                                const std::vector<std::string>& audiences,
                                                const std::string& bound_pod,
                                                int64_t expiration_seconds) {
  nlohmann::json spec = nlohmann::json::object();
  if (!audiences.empty()) spec["audiences"] = audiences;
  if (expiration_seconds > 0) spec["expirationSeconds"] = expiration_seconds;
  if (!bound_pod.empty())
    spec["boundObjectRef"] = {{"kind", "Pod"}, {"apiVersion", "v1"}, {"name", bound_pod}};
  nlohmann::json body = {
      {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  auto r = KubeJson("POST",
                    "/api/v1/namespaces/" + ns + "/serviceaccounts/" + service_account + "/token",
                    body.dump());
  if (!r.ok()) return r.status();
  if (!r->contains("status") || !(*r)["status"].contains("token"))
    return Internal("TokenRequest failed: " + r->dump());
  return (*r)["status"]["token"].get<std::string>();
}

}  // namespace ashiato::testing
