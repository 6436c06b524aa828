#include "common/kube_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/time_util.h"

extern char** environ;

namespace ashiato {

namespace {

using nlohmann::json;

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

constexpr auto kExecTimeout = std::chrono::seconds(60);

// Runs `plugin` as kubectl does: inherits our environment plus the plugin's
// env and KUBERNETES_EXEC_INFO, stdin not a terminal (/dev/null), stdout
// captured. Returns stdout, or an error with the plugin's stderr.
Result<std::string> RunPlugin(const ExecCredentialPlugin& plugin) {
  // Everything the child needs is built before fork().
  std::vector<std::string> argv_s{plugin.command};
  argv_s.insert(argv_s.end(), plugin.args.begin(), plugin.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  json info = {{"apiVersion", plugin.api_version},
               {"kind", "ExecCredential"},
               {"spec", {{"interactive", false}}}};
  std::vector<std::string> env_s;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    std::string name = kv.substr(0, kv.find('='));
    bool overridden = name == "KUBERNETES_EXEC_INFO";
    for (const auto& [k, v] : plugin.env) overridden = overridden || k == name;
    if (!overridden) env_s.push_back(std::move(kv));
  }
  for (const auto& [k, v] : plugin.env) env_s.push_back(k + "=" + v);
  env_s.push_back("KUBERNETES_EXEC_INFO=" + info.dump());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Internal("pipe: " + std::string(strerror(errno)));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Internal("pipe: " + std::string(strerror(errno)));
  }
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    return Internal("fork: " + std::string(strerror(errno)));
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execvpe(argv[0], argv.data(), envp.data());
    const char msg[] = "exec of credential plugin failed\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  std::string out, err;
  auto deadline = std::chrono::steady_clock::now() + kExecTimeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int n = poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t r = read(fds[i].fd, buf, sizeof(buf));
      if (r > 0) {
        (i == 0 ? out : err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  if (timed_out) kill(pid, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return Unavailable("credential plugin " + plugin.command + " timed out");
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Unavailable("credential plugin " + plugin.command + " failed (exit " +
                       std::to_string(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) +
                       "): " + Trim(err));
  }
  return out;
}

long long FileMtimeNs(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

}  // namespace

Result<ExecCredentialStatus> ParseExecCredential(std::string_view plugin_stdout,
                                                 const std::string& api_version,
                                                 const std::string& command) {
  json cred = json::parse(plugin_stdout, nullptr, /*allow_exceptions=*/false);
  // json::value() throws when the key holds another type: read strings
  // only, and call anything else malformed.
  bool malformed = false;
  auto str = [&malformed](const json& obj, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::string();
    if (!it->is_string()) {
      malformed = true;
      return std::string();
    }
    return it->get<std::string>();
  };
  if (!cred.is_object() || str(cred, "kind") != "ExecCredential") {
    return InvalidArgument("credential plugin " + command + " did not print an ExecCredential");
  }
  std::string got = str(cred, "apiVersion");
  if (got != api_version) {
    return InvalidArgument("credential plugin returned apiVersion \"" + got + "\", want \"" +
                           api_version + "\"");
  }
  const json& status =
      cred.contains("status") && cred["status"].is_object() ? cred["status"] : json::object();
  ExecCredentialStatus out;
  out.token = str(status, "token");
  out.client_certificate_pem = str(status, "clientCertificateData");
  out.client_key_pem = str(status, "clientKeyData");
  std::string exp = str(status, "expirationTimestamp");
  if (malformed) {
    return InvalidArgument("credential plugin " + command +
                           " printed an ExecCredential with a non-string field");
  }
  if (!exp.empty()) out.expires = ParseRfc3339(exp);
  if (out.token.empty() && out.client_certificate_pem.empty()) {
    return InvalidArgument("credential plugin returned neither a token nor a client certificate");
  }
  return out;
}

TokenSource::TokenSource(const KubeConfig& config) : config_(config) {}

std::string TokenSource::Token() {
  std::lock_guard<std::mutex> lock(mu_);
  // As client-go: an explicit token file or token wins over an exec plugin.
  if (!config_.token_file.empty()) {
    long long mtime = FileMtimeNs(config_.token_file);
    if (mtime != file_mtime_ns_ || cached_.empty()) {
      std::ifstream in(config_.token_file);
      if (in) {
        std::ostringstream ss;
        ss << in.rdbuf();
        cached_ = Trim(ss.str());
        file_mtime_ns_ = mtime;
      } else {
        last_error_ = "cannot read token file " + config_.token_file;
        // Keep the last good token: a rotation replaces the file atomically.
      }
    }
    return cached_;
  }
  if (!config_.token.empty()) return config_.token;
  if (config_.exec) {
    bool expired =
        expires_.time_since_epoch().count() != 0 && std::chrono::system_clock::now() >= expires_;
    if (!exec_valid_ || expired) RunExecLocked();
    return cached_;
  }
  return "";
}

void TokenSource::RunExecLocked() {
  exec_valid_ = false;
  cached_.clear();
  expires_ = {};
  auto out = RunPlugin(*config_.exec);
  if (!out.ok()) {
    last_error_ = out.status().message();
    spdlog::warn("exec credential plugin: {}", last_error_);
    return;
  }
  auto cred = ParseExecCredential(*out, config_.exec->api_version, config_.exec->command);
  if (!cred.ok()) {
    last_error_ = cred.status().message();
    spdlog::warn("{}", last_error_);
    return;
  }
  cached_ = std::move(cred->token);
  exec_cert_pem_ = std::move(cred->client_certificate_pem);
  exec_key_pem_ = std::move(cred->client_key_pem);
  if (cred->expires) expires_ = *cred->expires;
  last_error_.clear();
  exec_valid_ = true;
}

void TokenSource::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  file_mtime_ns_ = -1;
  if (!config_.token_file.empty()) cached_.clear();
  exec_valid_ = false;
}

bool TokenSource::ExecClientCertificate(std::string* cert_pem, std::string* key_pem) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!config_.exec) return false;
  if (!exec_valid_) RunExecLocked();
  if (exec_cert_pem_.empty()) return false;
  *cert_pem = exec_cert_pem_;
  *key_pem = exec_key_pem_;
  return true;
}

std::string TokenSource::LastError() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

Status StatusFromApiResponse(const ClientResponse& response) {
  long code = response.status;
  if (code >= 200 && code < 300) return Status::Ok();
  std::string message;
  std::string reason;
  int retry_after = 0;
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  // Comparing (not json::value()) never throws when "kind" is not a string.
  if (body.is_object() && body.contains("kind") && body["kind"] == "Status") {
    if (body.contains("message") && body["message"].is_string()) message = body["message"];
    if (body.contains("reason") && body["reason"].is_string()) reason = body["reason"];
    if (body.contains("details") && body["details"].is_object()) {
      const json& d = body["details"];
      if (d.contains("retryAfterSeconds") && d["retryAfterSeconds"].is_number_integer()) {
        retry_after = d["retryAfterSeconds"].get<int>();
      }
    }
  }
  if (message.empty()) {
    message = "HTTP " + std::to_string(code);
    std::string snippet = Trim(response.body.substr(0, 200));
    if (!snippet.empty()) message += ": " + snippet;
  }
  std::string header = response.Header("retry-after");
  if (!header.empty()) {
    char* end = nullptr;
    long v = std::strtol(header.c_str(), &end, 10);
    if (end != header.c_str() && v >= 0) retry_after = static_cast<int>(v);
  }
  StatusCode sc = StatusCode::kInternal;
  switch (code) {
    case 400:
    case 422:
      sc = StatusCode::kInvalidArgument;
      break;
    case 401:
      sc = StatusCode::kUnauthenticated;
      break;
    case 403:
      sc = StatusCode::kPermissionDenied;
      break;
    case 404:
      sc = StatusCode::kNotFound;
      break;
    case 409:
      sc = reason == "AlreadyExists" ? StatusCode::kAlreadyExists : StatusCode::kConflict;
      break;
    case 410:
      sc = StatusCode::kExpired;
      break;
    case 413:
      sc = StatusCode::kResourceExhausted;
      break;
    default:
      if (code == 429 || code >= 500) sc = StatusCode::kUnavailable;
  }
  Status s(sc, message);
  s.set_http_status(static_cast<int>(code));
  s.set_retry_after_seconds(retry_after);
  return s;
}

namespace {

HttpClientOptions ClientOptions(const KubeConfig& config, const std::string& user_agent,
                                const std::shared_ptr<TokenSource>& tokens) {
  HttpClientOptions o;
  o.base_url = config.server;
  while (!o.base_url.empty() && o.base_url.back() == '/') o.base_url.pop_back();
  o.ca_file = config.ca_file;
  o.ca_pem = config.ca_pem;
  o.insecure_skip_tls_verify = config.insecure_skip_tls_verify;
  o.client_cert_file = config.client_cert_file;
  o.client_key_file = config.client_key_file;
  o.client_cert_pem = config.client_cert_pem;
  o.client_key_pem = config.client_key_pem;
  if (config.exec && o.client_cert_pem.empty() && o.client_cert_file.empty()) {
    std::string cert, key;
    if (tokens->ExecClientCertificate(&cert, &key)) {
      o.client_cert_pem = cert;
      o.client_key_pem = key;
    }
  }
  std::weak_ptr<TokenSource> weak = tokens;
  o.bearer_token = [weak]() {
    auto t = weak.lock();
    return t ? t->Token() : std::string();
  };
  o.user_agent = user_agent;
  return o;
}

}  // namespace

KubeClient::KubeClient(const KubeConfig& config, std::string user_agent)
    : tokens_(std::make_shared<TokenSource>(config)),
      http_(ClientOptions(config, user_agent, tokens_)) {}

Result<json> KubeClient::Request(const std::string& method, const std::string& path_and_query,
                                 const json* body, const std::string& content_type,
                                 std::chrono::milliseconds timeout) {
  std::string payload = body != nullptr ? body->dump() : "";
  std::vector<std::pair<std::string, std::string>> headers = {{"Accept", "application/json"}};
  if (body != nullptr) headers.emplace_back("Content-Type", content_type);
  for (int attempt = 0;; ++attempt) {
    auto resp = http_.Do(method, path_and_query, payload, headers, timeout.count());
    if (!resp.ok()) return resp.status();
    if (resp->status == 401 && attempt == 0) {
      tokens_->Invalidate();  // A rotated or expired token: fetch a fresh one once.
      continue;
    }
    Status s = StatusFromApiResponse(*resp);
    if (!s.ok()) return s;
    if (resp->body.empty()) return json(nullptr);
    json parsed = json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      return Internal(method + " " + path_and_query + ": response is not JSON");
    }
    return parsed;
  }
}

Status KubeClient::Watch(const std::string& path_and_query,
                         const std::function<bool(const json& event)>& on_event,
                         std::chrono::milliseconds timeout) {
  Status parse_error;
  std::function<bool(std::string_view)> on_line = [&](std::string_view line) {
    json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object()) {
      parse_error = Internal("watch " + path_and_query + ": event is not a JSON object");
      return false;
    }
    return on_event(event);
  };
  for (int attempt = 0;; ++attempt) {
    auto resp = http_.StreamLines(path_and_query, on_line, static_cast<long>(timeout.count()));
    if (!parse_error.ok()) return parse_error;
    if (!resp.ok()) return resp.status();
    if (resp->status == 401 && attempt == 0) {
      tokens_->Invalidate();
      continue;
    }
    return StatusFromApiResponse(*resp);
  }
}

}  // namespace ashiato
