#include "common/kube_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/http_server.h"

namespace ashiato {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kube_client_test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content, bool exec = false) {
    std::string p = path_ + "/" + name;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p) << content;
    if (exec) chmod(p.c_str(), 0755);
    return p;
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(path_ + "/" + name);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = old;
    had_ = old != nullptr;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

// base64 of "-----BEGIN CERTIFICATE-----\nabc\n".
constexpr const char* kCaB64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmFiYwo=";

const char* kKubeconfig = R"(apiVersion: v1
kind: Config
current-context: main
clusters:
- name: c1
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmFiYwo=
- name: c2
  cluster:
    server: http://127.0.0.1:8080
    certificate-authority: certs/ca.crt
    insecure-skip-tls-verify: true
contexts:
- name: main
  context: {cluster: c1, user: alice, namespace: team-a}
- name: other
  context: {cluster: c2, user: bob}
- name: plugin
  context: {cluster: c2, user: carol}
- name: broken
  context: {cluster: nope, user: alice}
users:
- name: alice
  user:
    token: alice-token
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
- name: bob
  user:
    tokenFile: secrets/bob-token
    client-certificate: certs/bob.crt
    client-key: /abs/bob.key
- name: carol
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/plugin.sh
      args: ["--flag", "x y"]
      env: [{name: PLUGIN_MODE, value: good}]
)";

TEST(KubeConfigTest, CurrentContextWithDataFields) {
  TempDir dir;
  auto config = LoadKubeConfigFile(dir.Write("config", kKubeconfig));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "https://10.0.0.1:6443");
  EXPECT_EQ(config->ca_pem, "-----BEGIN CERTIFICATE-----\nabc\n");
  EXPECT_EQ(config->token, "alice-token");
  EXPECT_EQ(config->client_cert_pem, "cert");
  EXPECT_EQ(config->client_key_pem, "key");
  EXPECT_EQ(config->namespace_, "team-a");
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_FALSE(config->exec.has_value());
  EXPECT_FALSE(config->in_cluster);
}

TEST(KubeConfigTest, ExplicitContextAndRelativePaths) {
  TempDir dir;
  auto config = LoadKubeConfigFile(dir.Write("sub/config", kKubeconfig), "other");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "http://127.0.0.1:8080");
  EXPECT_EQ(config->ca_file, dir.path() + "/sub/certs/ca.crt");
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->token_file, dir.path() + "/sub/secrets/bob-token");
  EXPECT_EQ(config->client_cert_file, dir.path() + "/sub/certs/bob.crt");
  EXPECT_EQ(config->client_key_file, "/abs/bob.key");
}

TEST(KubeConfigTest, ExecPlugin) {
  TempDir dir;
  auto config = LoadKubeConfigFile(dir.Write("config", kKubeconfig), "plugin");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(config->exec.has_value());
  EXPECT_EQ(config->exec->command, dir.path() + "/bin/plugin.sh");
  EXPECT_EQ(config->exec->args, (std::vector<std::string>{"--flag", "x y"}));
  ASSERT_EQ(config->exec->env.size(), 1u);
  EXPECT_EQ(config->exec->env[0].first, "PLUGIN_MODE");
  EXPECT_EQ(config->exec->api_version, "client.authentication.k8s.io/v1");
}

TEST(KubeConfigTest, ClearErrors) {
  TempDir dir;
  std::string path = dir.Write("config", kKubeconfig);
  auto missing = LoadKubeConfigFile(path, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("context \"nope\" not found"), std::string::npos);
  auto broken = LoadKubeConfigFile(path, "broken");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("cluster \"nope\""), std::string::npos);
  auto nofile = LoadKubeConfigFile(dir.path() + "/absent");
  EXPECT_FALSE(nofile.ok());
  auto bad = LoadKubeConfigFile(dir.Write("bad", "clusters: [unclosed"));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto nocurrent = LoadKubeConfigFile(dir.Write("nocur", "apiVersion: v1\nkind: Config\n"));
  EXPECT_NE(nocurrent.status().message().find("current-context"), std::string::npos);
}

TEST(KubeConfigTest, ResolveOrder) {
  TempDir dir;
  std::string a = dir.Write("a", kKubeconfig);
  std::string b = dir.Write("b", R"(current-context: bctx
clusters: [{name: bc, cluster: {server: "http://b:1"}}]
contexts: [{name: bctx, context: {cluster: bc}}]
)");
  ScopedEnv home("HOME", dir.path().c_str());
  ScopedEnv host("KUBERNETES_SERVICE_HOST", nullptr);
  {
    // Explicit path wins over $KUBECONFIG.
    ScopedEnv kc("KUBECONFIG", b.c_str());
    auto config = ResolveKubeConfig(a, "");
    ASSERT_TRUE(config.ok());
    EXPECT_EQ(config->server, "https://10.0.0.1:6443");
    // $KUBECONFIG, merged: the first file's current-context wins.
    auto merged = ResolveKubeConfig("", "");
    ASSERT_TRUE(merged.ok());
    EXPECT_EQ(merged->server, "http://b:1");
  }
  {
    std::string list = b + ":" + dir.path() + "/absent:" + a;
    ScopedEnv kc("KUBECONFIG", list.c_str());
    auto config = ResolveKubeConfig("", "other");  // Context from the second file.
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    EXPECT_EQ(config->server, "http://127.0.0.1:8080");
  }
  {
    ScopedEnv kc("KUBECONFIG", nullptr);
    auto none = ResolveKubeConfig("", "");
    ASSERT_FALSE(none.ok());
    EXPECT_NE(none.status().message().find(".kube/config"), std::string::npos);
    dir.Write(".kube/config", kKubeconfig);
    auto home_config = ResolveKubeConfig("", "");
    ASSERT_TRUE(home_config.ok());
    EXPECT_EQ(home_config->token, "alice-token");
  }
}

TEST(KubeConfigTest, InCluster) {
  TempDir dir;
  dir.Write("sa/token", "tok-1\n");
  dir.Write("sa/ca.crt", "CA");
  dir.Write("sa/namespace", "ashiato\n");
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", nullptr);
    EXPECT_FALSE(LoadInClusterConfig(dir.path() + "/sa").ok());
  }
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00::1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  auto config = LoadInClusterConfig(dir.path() + "/sa");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->in_cluster);
  EXPECT_EQ(config->server, "https://[fd00::1]:443");
  EXPECT_EQ(config->ca_file, dir.path() + "/sa/ca.crt");
  EXPECT_EQ(config->token_file, dir.path() + "/sa/token");
  EXPECT_EQ(config->namespace_, "ashiato");
  TokenSource tokens(*config);
  EXPECT_EQ(tokens.Token(), "tok-1");
  EXPECT_FALSE(LoadInClusterConfig(dir.path() + "/missing").ok());
}

TEST(TokenSourceTest, TokenFileReReadWhenItChanges) {
  TempDir dir;
  KubeConfig config;
  config.token_file = dir.Write("token", "first\n");
  TokenSource tokens(config);
  EXPECT_EQ(tokens.Token(), "first");
  // Rotation the way kubelet does it: a new file renamed into place.
  std::string tmp = dir.Write("token.new", "second");
  fs::rename(tmp, config.token_file);
  struct timespec times[2] = {{0, UTIME_NOW}, {1, 0}};  // Force a distinct mtime.
  utimensat(AT_FDCWD, config.token_file.c_str(), times, 0);
  EXPECT_EQ(tokens.Token(), "second");
  // A missing file keeps the last good token.
  fs::remove(config.token_file);
  EXPECT_EQ(tokens.Token(), "second");
}

TEST(TokenSourceTest, StaticToken) {
  KubeConfig config;
  config.token = "static";
  TokenSource tokens(config);
  EXPECT_EQ(tokens.Token(), "static");
  tokens.Invalidate();
  EXPECT_EQ(tokens.Token(), "static");
  EXPECT_EQ(TokenSource(KubeConfig{}).Token(), "");
}

// A fake credential plugin: counts its runs, records how it was called, and
// answers as PLUGIN_MODE says.
std::string WritePlugin(TempDir& dir) {
  return dir.Write("plugin.sh", R"(#!/bin/sh
d=$(dirname "$0")
n=$(cat "$d/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/count"
echo "$KUBERNETES_EXEC_INFO" > "$d/info"
echo "$*" > "$d/args"
if [ -t 0 ]; then echo tty > "$d/stdin"; else echo notty > "$d/stdin"; fi
case "$PLUGIN_MODE" in
  good) echo "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-$n\",\"expirationTimestamp\":\"2200-01-01T00:00:00Z\"}}" ;;
  expired) echo "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-$n\",\"expirationTimestamp\":\"2000-01-01T00:00:00Z\"}}" ;;
  cert) echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"CERT","clientKeyData":"KEY"}}' ;;
  wrongversion) echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"x"}}' ;;
  fail) echo "no credentials for you" >&2; exit 3 ;;
esac
)",
                   /*exec=*/true);
}

KubeConfig PluginConfig(const std::string& command, const std::string& mode) {
  KubeConfig config;
  ExecCredentialPlugin plugin;
  plugin.command = command;
  plugin.args = {"get-token", "--cluster=c1"};
  plugin.env = {{"PLUGIN_MODE", mode}};
  plugin.api_version = "client.authentication.k8s.io/v1";
  config.exec = plugin;
  return config;
}

TEST(TokenSourceTest, ExecPluginCachedUntilExpiryOrInvalidate) {
  TempDir dir;
  std::string plugin = WritePlugin(dir);
  TokenSource tokens(PluginConfig(plugin, "good"));
  EXPECT_EQ(tokens.Token(), "exec-1");
  EXPECT_EQ(tokens.Token(), "exec-1");  // Cached: not expired.
  EXPECT_EQ(dir.Read("count"), "1\n");
  EXPECT_EQ(dir.Read("args"), "get-token --cluster=c1\n");
  EXPECT_EQ(dir.Read("stdin"), "notty\n");
  json info = json::parse(dir.Read("info"));
  EXPECT_EQ(info["kind"], "ExecCredential");
  EXPECT_EQ(info["apiVersion"], "client.authentication.k8s.io/v1");
  EXPECT_EQ(info["spec"]["interactive"], false);
  tokens.Invalidate();
  EXPECT_EQ(tokens.Token(), "exec-2");
}

TEST(TokenSourceTest, ExecPluginRerunWhenExpired) {
  TempDir dir;
  TokenSource tokens(PluginConfig(WritePlugin(dir), "expired"));
  EXPECT_EQ(tokens.Token(), "exec-1");
  EXPECT_EQ(tokens.Token(), "exec-2");
}

TEST(TokenSourceTest, ExecPluginErrors) {
  TempDir dir;
  std::string plugin = WritePlugin(dir);
  TokenSource failing(PluginConfig(plugin, "fail"));
  EXPECT_EQ(failing.Token(), "");
  EXPECT_NE(failing.LastError().find("no credentials for you"), std::string::npos);
  EXPECT_NE(failing.LastError().find("exit 3"), std::string::npos);
  TokenSource wrong(PluginConfig(plugin, "wrongversion"));
  EXPECT_EQ(wrong.Token(), "");
  EXPECT_NE(wrong.LastError().find("v1beta1"), std::string::npos);
  TokenSource missing(PluginConfig(dir.path() + "/absent", "good"));
  EXPECT_EQ(missing.Token(), "");
  EXPECT_FALSE(missing.LastError().empty());
}

TEST(TokenSourceTest, ExecPluginClientCertificate) {
  TempDir dir;
  TokenSource tokens(PluginConfig(WritePlugin(dir), "cert"));
  std::string cert, key;
  ASSERT_TRUE(tokens.ExecClientCertificate(&cert, &key));
  EXPECT_EQ(cert, "CERT");
  EXPECT_EQ(key, "KEY");
  EXPECT_EQ(tokens.Token(), "");
}

TEST(StatusFromApiResponseTest, MapsCodesAndKeepsMessage) {
  ClientResponse r;
  r.status = 200;
  EXPECT_TRUE(StatusFromApiResponse(r).ok());
  r.status = 410;
  r.body = R"J({"kind":"Status","apiVersion":"v1","status":"Failure",
              "message":"too old resource version: 5 (10)","reason":"Expired","code":410})J";
  Status s = StatusFromApiResponse(r);
  EXPECT_EQ(s.code(), StatusCode::kExpired);
  EXPECT_EQ(s.message(), "too old resource version: 5 (10)");
  EXPECT_EQ(s.http_status(), 410);

  r.status = 429;
  r.body = R"({"kind":"Status","message":"slow down","details":{"retryAfterSeconds":2}})";
  s = StatusFromApiResponse(r);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.retry_after_seconds(), 2);
  r.headers["retry-after"] = "7";
  EXPECT_EQ(StatusFromApiResponse(r).retry_after_seconds(), 7);

  auto code_of = [](long status, const std::string& body = "") {
    ClientResponse x;
    x.status = status;
    x.body = body;
    return StatusFromApiResponse(x).code();
  };
  EXPECT_EQ(code_of(404), StatusCode::kNotFound);
  EXPECT_EQ(code_of(409), StatusCode::kConflict);
  EXPECT_EQ(code_of(409, R"({"kind":"Status","reason":"AlreadyExists"})"),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(code_of(401), StatusCode::kUnauthenticated);
  EXPECT_EQ(code_of(403), StatusCode::kPermissionDenied);
  EXPECT_EQ(code_of(500, "<html>oops"), StatusCode::kUnavailable);
  EXPECT_EQ(code_of(503), StatusCode::kUnavailable);
  EXPECT_EQ(code_of(400), StatusCode::kInvalidArgument);
  EXPECT_EQ(code_of(418), StatusCode::kInternal);
  ClientResponse html;
  html.status = 502;
  html.body = "bad gateway";
  EXPECT_NE(StatusFromApiResponse(html).message().find("bad gateway"), std::string::npos);
}

// A stand-in API server: counts requests, remembers the last Authorization header.
struct FakeApi {
  std::atomic<int> requests{0};
  std::mutex mu;
  std::vector<std::string> auth;
  std::string accepted_token;
  std::unique_ptr<HttpServer> server;

  void Start() {
    auto s = HttpServer::Start({}, [this](const HttpRequest& req) {
      ++requests;
      std::string a = req.Header("authorization");
      {
        std::lock_guard<std::mutex> lock(mu);
        auth.push_back(a);
        if (a != "Bearer " + accepted_token) {
          return HttpResponse::Json(
              401, R"({"kind":"Status","status":"Failure","message":"Unauthorized","code":401})");
        }
      }
      if (req.path == "/api/v1/pods" && req.Query("watch") == "1") {
        HttpResponse resp;
        resp.stream = std::make_shared<ResponseStream>();
        resp.stream->Write(R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})"
                           "\n");
        resp.stream->Write(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})"
                           "\n");
        resp.stream->Close();
        return resp;
      }
      if (req.path == "/api/v1/pods") {
        return HttpResponse::Json(
            200, R"({"kind":"PodList","items":[],"metadata":{"resourceVersion":"7"}})");
      }
      if (req.path == "/api/v1/namespaces/x/pods" && req.method == "POST") {
        return HttpResponse::Json(201, req.body);
      }
      return HttpResponse::Json(
          404,
          R"({"kind":"Status","message":"pods \"q\" not found","reason":"NotFound","code":404})");
    });
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server = std::move(*s);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }
};

TEST(KubeClientTest, RequestsCarryTokenAndMapErrors) {
  FakeApi api;
  api.accepted_token = "static";
  api.Start();
  KubeConfig config;
  config.server = api.url() + "/";
  config.token = "static";
  KubeClient client(config);
  auto list = client.Get("/api/v1/pods");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ((*list)["metadata"]["resourceVersion"], "7");
  json body = {{"metadata", {{"name", "p"}}}};
  auto created = client.Request("POST", "/api/v1/namespaces/x/pods", &body);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(*created, body);
  auto missing = client.Get("/api/v1/namespaces/x/pods/q");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "pods \"q\" not found");
}

TEST(KubeClientTest, RetriesOnceAfter401WithFreshExecToken) {
  TempDir dir;
  FakeApi api;
  api.accepted_token = "exec-2";  // The first token the plugin prints is stale.
  api.Start();
  KubeConfig config = PluginConfig(WritePlugin(dir), "good");
  config.server = api.url();
  KubeClient client(config);
  auto list = client.Get("/api/v1/pods");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(api.requests.load(), 2);
  EXPECT_EQ(dir.Read("count"), "2\n");

  // A token that stays bad: exactly one retry, then Unauthenticated.
  api.accepted_token = "never";
  auto denied = client.Get("/api/v1/pods");
  EXPECT_EQ(denied.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(api.requests.load(), 4);
}

TEST(KubeClientTest, WatchStreamsEvents) {
  FakeApi api;
  api.accepted_token = "t";
  api.Start();
  KubeConfig config;
  config.server = api.url();
  config.token = "t";
  KubeClient client(config);
  std::vector<std::string> types;
  Status s = client.Watch(
      "/api/v1/pods?watch=1",
      [&](const json& e) {
        types.push_back(e["type"]);
        return true;
      },
      std::chrono::seconds(10));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "BOOKMARK"}));

  types.clear();
  s = client.Watch(
      "/api/v1/pods?watch=1",
      [&](const json& e) {
        types.push_back(e["type"]);
        return false;  // Stop after the first.
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(types.size(), 1u);

  s = client.Watch(
      "/api/v1/nodes?watch=1", [](const json&) { return true; }, std::chrono::seconds(10));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
}

TEST(KubeClientTest, CancelAbortsAndUnreachableIsUnavailable) {
  KubeConfig config;
  config.server = "http://127.0.0.1:1";
  KubeClient client(config);
  auto r = client.Get("/api/v1/pods");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  client.Cancel();
  EXPECT_EQ(client.Get("/api/v1/pods").status().code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace ashiato
