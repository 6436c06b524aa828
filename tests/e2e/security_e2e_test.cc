// Who may do what (docs/security.md), with real processes over loopback:
// kubesim (RBAC, SubjectAccessReview, TokenReview as Kubernetes 1.28 and
// 1.32 answer it) + ashiato-aggregator + ashiato-agents, tokens minted with
// the real `kubectl create token`, roles granted with `kubectl create` and
// the shipped manifests.
//  - readers see only the namespaces whose pods they may list; no rights is
//    403; no token, or a token for another audience, is 401; /metrics needs
//    `get` on /metrics;
//  - a push is bound to the node of the pod its token was issued for, on both
//    TokenReview shapes; a token bound to no pod is refused;
//  - agents push over HTTPS with a CA file, refuse a certificate they do not
//    trust and plain HTTP unless allowed; the aggregator reloads its
//    certificate when the files change;
//  - tokens never appear in logs, metrics or error messages.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/http_client.h"
#include "common/report.h"
#include "tests/kubesim/kubesim_process.h"
#include "tests/kubesim/tls_cert.h"
#include "tests/testing/subprocess.h"

namespace ashiato {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::KubesimProcess;
using testing::Subprocess;
constexpr auto Bin = testing::BinFromEnv;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp", std::ios::trunc) << text;
  std::rename((path + ".tmp").c_str(), path.c_str());
}

class SecurityE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KubesimProcess::HaveKubectl()) GTEST_SKIP() << "kubectl not on PATH";
    dir_ = testing::MakeTempDir("ashiato-sec-e2e");
  }
  void TearDown() override {
    for (auto& a : agents_) {
      if (a) a->Stop(5000ms);
    }
    if (agg_) agg_->Stop(10000ms);
    if (!dir_.empty() && !HasFailure()) testing::RemoveTree(dir_);
    if (HasFailure()) std::fprintf(stderr, "e2e files kept in %s\n", dir_.c_str());
  }

  void StartSim(std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--bookmark-interval-ms", "200"});
    auto sim = KubesimProcess::Start({.nodes = 3, .pods_per_node = 3, .extra_args = extra});
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim.value());
    ASSERT_EQ(Kubectl({"create", "serviceaccount", "ashiato-agent", "-n", "ashiato"}).exit_code, 0);
  }

  testing::CommandResult Kubectl(const std::vector<std::string>& args) {
    auto r = sim_->Kubectl(args);
    if (r.exit_code != 0) std::fprintf(stderr, "kubectl failed: %s\n", r.err.c_str());
    return r;
  }

  // `kubectl create token SA -n NS [--audience A] [bound to pod P]`; "" on failure.
  std::string Token(const std::string& ns, const std::string& sa, const std::string& audience,
                    const std::string& bound_pod = "") {
    std::vector<std::string> args = {"create", "token", sa, "-n", ns};
    if (!audience.empty()) args.insert(args.end(), {"--audience", audience});
    if (!bound_pod.empty()) {
      args.insert(args.end(), {"--bound-object-kind", "Pod", "--bound-object-name", bound_pod});
    }
    std::string t = Kubectl(args).out;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    return t;
  }
  std::string TokenFile(const std::string& name, const std::string& token) {
    std::string path = dir_ + "/" + name;
    WriteFile(path, token);
    return path;
  }

  // An agent pod (what the DaemonSet creates), so that its token can be bound to it.
  void CreateAgentPod(const std::string& node) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "ashiato-agent-" + node}, {"namespace", "ashiato"}}},
                {"spec",
                 {{"nodeName", node},
                  {"serviceAccountName", "ashiato-agent"},
                  {"containers",
                   {{{"name", "agent"}, {"image", "ghcr.io/ashiato/ashiato-agent:0.1.0"}}}}}}};
    std::string path = dir_ + "/pod-" + node + ".json";
    WriteFile(path, pod.dump());
    // --validate=false: kubectl validates against OpenAPI v2 for servers older
    // than it supports v3 for, and kubesim serves only v3.
    ASSERT_EQ(Kubectl({"create", "--validate=false", "-f", path}).exit_code, 0);
  }

  void StartAggregator(std::vector<std::string> extra, const std::string& ca_pem = "") {
    scheme_ = ca_pem.empty() ? "http" : "https";
    ca_pem_ = ca_pem;
    const std::string err = dir_ + "/aggregator.err";
    const uint64_t from = testing::FileSize(err);
    std::vector<std::string> args = {Bin("ASHIATO_AGGREGATOR_BIN", AGGREGATOR_BIN),
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--kubeconfig",
                                     sim_->kubeconfig_path(),
                                     "--data-dir",
                                     dir_ + "/data",
                                     "--log-level",
                                     "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    agg_ = Subprocess::Start(args, dir_ + "/aggregator.out", err);
    ASSERT_TRUE(agg_ != nullptr);
    port_ = testing::WaitForReportedPort(err, from, "serving on port ", 20000ms);
    ASSERT_NE(port_, 0) << "aggregator reported no port; see " << err;
    url_ = scheme_ + "://127.0.0.1:" + std::to_string(port_);
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          auto r = Get("/readyz");
          return r.ok() && r->status == 200;
        },
        20000ms))
        << "aggregator did not come up; see " << dir_ << "/aggregator.err";
  }

  Subprocess* StartAgent(const std::string& node, const std::string& token_file,
                         std::vector<std::string> extra) {
    std::vector<std::string> args = {Bin("ASHIATO_AGENT_BIN", AGENT_BIN),
                                     "--kubeconfig",
                                     sim_->kubeconfig_path(),
                                     "--node",
                                     node,
                                     "--aggregator-token-file",
                                     token_file,
                                     "--batch-delay",
                                     "50ms",
                                     "--log-level",
                                     "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string name = "agent-" + node + "-" + std::to_string(agents_.size());
    agents_.push_back(
        Subprocess::Start(args, dir_ + "/" + name + ".out", dir_ + "/" + name + ".err"));
    return agents_.back().get();
  }

  Result<ClientResponse> Get(const std::string& path, const std::string& token = "") {
    HttpClient c({.base_url = url_, .ca_pem = ca_pem_});
    std::vector<std::pair<std::string, std::string>> h;
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    auto r = c.Do("GET", path, "", h);
    if (r.ok()) bodies_ += r->body + "\n";
    return r;
  }
  // GET as `token`: status and the JSON body (null when not JSON).
  std::pair<long, json> As(const std::string& token, const std::string& path) {
    auto r = Get(path, token);
    if (!r.ok()) return {-1, nullptr};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  long Push(const std::string& token, const std::string& node, const std::string& epoch) {
    Report r;
    r.node = node;
    r.epoch = epoch;
    r.seq = 1;
    r.snapshot = true;  // Would wipe the node's pods if accepted.
    HttpClient c({.base_url = url_, .ca_pem = ca_pem_});
    auto resp = c.Do("POST", "/v1/reports", EncodeReport(r),
                     {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
    if (!resp.ok()) return -1;
    bodies_ += resp->body + "\n";
    return resp->status;
  }
  bool LogHas(Subprocess* p, const std::string& text) {
    return ReadAll(p->stderr_path()).find(text) != std::string::npos;
  }

  // uid -> namespace of the scheduled pods in kubesim.
  std::map<std::string, std::string> SimPods() {
    std::map<std::string, std::string> out;
    auto pods = sim_->KubeJson("GET", "/api/v1/pods");
    if (!pods.ok()) return out;
    for (const auto& p : (*pods)["items"]) {
      if (p["spec"].value("nodeName", "").empty()) continue;
      out[p["metadata"]["uid"]] = p["metadata"]["namespace"];
    }
    return out;
  }

  std::unique_ptr<KubesimProcess> sim_;
  std::string dir_, url_, scheme_, ca_pem_;
  std::string bodies_;  // Every answer the test received (for the token hygiene check).
  uint16_t port_ = 0;
  std::unique_ptr<Subprocess> agg_;
  std::vector<std::unique_ptr<Subprocess>> agents_;
};

std::set<std::string> NamespacesOf(const json& j, const std::string& list) {
  std::set<std::string> out;
  if (!j.is_object() || !j.contains(list)) return {"<no " + list + ">"};
  for (const auto& x : j[list]) out.insert(x["namespace"].get<std::string>());
  return out;
}

TEST_F(SecurityE2E, ReadersSeeOnlyTheNamespacesWhosePodsTheyMayList) {
  StartSim();
  StartAggregator({"--allow-unbound-agent-tokens"});  // Reads: --read-auth tokenreview (default).
  std::string agent_token = TokenFile("agent-token", Token("ashiato", "ashiato-agent", "ashiato"));
  for (int i = 1; i <= 3; ++i) {
    StartAgent("node-" + std::to_string(i), agent_token,
               {"--aggregator", url_, "--allow-insecure-aggregator"});
  }
  // The shipped reader roles, and the namespaced example as an operator applies them.
  std::string src = ASHIATO_SOURCE_DIR;
  ASSERT_EQ(
      Kubectl({"apply", "--server-side", "-f", src + "/daemonset/base/reader-rbac.yaml"}).exit_code,
      0);
  ASSERT_EQ(
      Kubectl({"apply", "--server-side", "-f", src + "/daemonset/examples/reader-namespaced.yaml"})
          .exit_code,
      0);
  ASSERT_EQ(Kubectl({"create", "serviceaccount", "oncall", "-n", "default"}).exit_code, 0);
  ASSERT_EQ(Kubectl({"create", "clusterrolebinding", "oncall", "--clusterrole=ashiato-reader",
                     "--serviceaccount=default:oncall"})
                .exit_code,
            0);
  ASSERT_EQ(Kubectl({"create", "serviceaccount", "nobody", "-n", "default"}).exit_code, 0);
  ASSERT_EQ(Kubectl({"create", "serviceaccount", "prometheus", "-n", "default"}).exit_code, 0);
  ASSERT_EQ(Kubectl({"create", "clusterrolebinding", "prometheus",
                     "--clusterrole=ashiato-metrics-reader", "--serviceaccount=default:prometheus"})
                .exit_code,
            0);
  // The documented recipe: kubectl create token ... --audience ashiato.
  std::string oncall = Token("default", "oncall", "ashiato");
  std::string team_a = Token("team-a", "ashiato-reader", "ashiato");
  std::string nobody = Token("default", "nobody", "ashiato");
  std::string oncall_api = Token("default", "oncall", "");  // The API server's audience.
  std::string prometheus = Token("default", "prometheus", "");
  ASSERT_FALSE(oncall.empty() || team_a.empty() || nobody.empty() || prometheus.empty());

  // Cluster-wide: everything, once the agents have reported it.
  auto sim = SimPods();
  std::set<std::string> all_namespaces;
  size_t team_a_pods = 0;
  for (const auto& [uid, ns] : sim) {
    all_namespaces.insert(ns);
    team_a_pods += ns == "team-a";
  }
  ASSERT_GT(team_a_pods, 0u);
  ASSERT_GT(all_namespaces.size(), 1u);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto [code, pods] = As(oncall, "/v1/pods");
        return code == 200 && pods["count"] == sim.size();
      },
      30000ms))
      << As(oncall, "/v1/pods").second.dump();
  EXPECT_EQ(NamespacesOf(As(oncall, "/v1/pods").second, "pods"), all_namespaces);
  auto nodes = As(oncall, "/v1/nodes");
  EXPECT_EQ(nodes.first, 200);
  EXPECT_EQ(nodes.second["count"], 3);

  // Namespaced (RoleBinding in team-a): every endpoint answers about team-a only.
  auto [code, pods] = As(team_a, "/v1/pods");
  ASSERT_EQ(code, 200) << pods.dump();
  EXPECT_EQ(NamespacesOf(pods, "pods"), std::set<std::string>{"team-a"});
  EXPECT_EQ(pods["count"], team_a_pods);
  EXPECT_EQ(NamespacesOf(As(team_a, "/v1/history").second, "events"),
            std::set<std::string>{"team-a"});
  EXPECT_EQ(NamespacesOf(As(team_a, "/v1/placements").second, "placements"),
            std::set<std::string>{"team-a"});
  EXPECT_EQ(As(team_a, "/v1/nodes").first, 403);
  EXPECT_EQ(As(team_a, "/v1/pods?namespace=default").first, 403);
  EXPECT_EQ(As(team_a, "/v1/history?namespace=default").first, 403);
  EXPECT_EQ(As(team_a, "/v1/pods?namespace=team-a").second["count"], team_a_pods);
  // A pod of another namespace, by name, IP and image.
  json other;
  json all_pods = As(oncall, "/v1/pods").second;
  for (const auto& p : all_pods["pods"]) {
    if (p["namespace"] != "team-a" && !p["pod_ip"].get<std::string>().empty()) other = p;
  }
  ASSERT_TRUE(other.is_object());
  std::string other_path = "/v1/pods/" + other["namespace"].get<std::string>() + "/" +
                           other["pod_name"].get<std::string>();
  EXPECT_EQ(As(oncall, other_path).first, 200);
  EXPECT_EQ(As(team_a, other_path).first, 403);
  std::string ip_path = "/v1/ips/" + other["pod_ip"].get<std::string>();
  EXPECT_EQ(As(oncall, ip_path).second["holders"].size(), 1u);
  EXPECT_EQ(As(team_a, ip_path).second["holders"].size(), 0u);
  std::set<std::string> team_a_images, oncall_images;
  json team_a_answer = As(team_a, "/v1/images").second,
       oncall_answer = As(oncall, "/v1/images").second;
  for (const auto& i : team_a_answer["images"]) team_a_images.insert(i["image"]);
  for (const auto& i : oncall_answer["images"]) oncall_images.insert(i["image"]);
  EXPECT_LT(team_a_images.size(), oncall_images.size());
  std::string foreign_image;
  for (const auto& i : oncall_images) {
    if (!team_a_images.count(i)) foreign_image = i;
  }
  ASSERT_FALSE(foreign_image.empty());
  std::string image_path = "/v1/images/" + UrlEncode(foreign_image);
  EXPECT_GT(As(oncall, image_path).second["count"], 0);
  EXPECT_EQ(As(team_a, image_path).second["count"], 0);

  // No rights: 403. No token, a token for another audience, garbage: 401.
  for (const char* path : {"/v1/pods", "/v1/history", "/v1/images", "/v1/nodes"}) {
    EXPECT_EQ(As(nobody, path).first, 403) << path;
    EXPECT_EQ(As("", path).first, 401) << path;
    EXPECT_EQ(As(oncall_api, path).first, 401) << path << ": a token for the API server";
    EXPECT_EQ(As("not-a-token", path).first, 401) << path;
  }
  // The agents' push token never reads.
  EXPECT_EQ(As(ReadAll(agent_token), "/v1/pods").first, 403);
  // /metrics, as kube-rbac-proxy: a token for the API server, and get on /metrics.
  EXPECT_EQ(As("", "/metrics").first, 401);
  EXPECT_EQ(As(oncall_api, "/metrics").first, 403) << "may read pods, may not get /metrics";
  auto metrics = Get("/metrics", prometheus);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("ashiato_aggregator_reads_total{result=\"filtered\"}"),
            std::string::npos);
  // Health stays open for the kubelet.
  EXPECT_EQ(As("", "/healthz").first, 200);
  EXPECT_EQ(As("", "/readyz").first, 200);
}

// A pod-bound push token is bound to its pod's node, whatever the server's
// TokenReview says about it: 1.28 names only the pod (the aggregator looks it
// up), 1.32 also the node.
class NodeBindingE2E : public SecurityE2E, public ::testing::WithParamInterface<const char*> {};

TEST_P(NodeBindingE2E, ANodeOneTokenCannotPushForNodeTwo) {
  const std::string version = GetParam();
  StartSim({"--kube-version", version});
  for (const char* node : {"node-1", "node-2"}) CreateAgentPod(node);
  StartAggregator({"--read-auth", "none"});  // No --allow-unbound-agent-tokens.
  std::string token1 = Token("ashiato", "ashiato-agent", "ashiato", "ashiato-agent-node-1");
  std::string token2 = Token("ashiato", "ashiato-agent", "ashiato", "ashiato-agent-node-2");
  std::string unbound = Token("ashiato", "ashiato-agent", "ashiato");
  ASSERT_FALSE(token1.empty() || token2.empty() || unbound.empty());
  auto since = sim_->Requests();
  ASSERT_TRUE(since.ok());
  // The node-1 agent with its own token gets in.
  StartAgent("node-1", TokenFile("token-1", token1),
             {"--aggregator", url_, "--allow-insecure-aggregator"});
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto [code, nodes] = As("", "/v1/nodes");
        return code == 200 && nodes["count"] == 1 && nodes["nodes"][0]["node"] == "node-1";
      },
      20000ms));
  // Node-1's token for node-2: refused, however it is sent.
  EXPECT_EQ(Push(token1, "node-2", "forged"), 403);
  EXPECT_NE(bodies_.find("bound to node \\\"node-1\\\""), std::string::npos) << bodies_;
  EXPECT_EQ(Push(token2, "node-2", "real"), 200) << "node-2's own token may";
  EXPECT_EQ(Push(unbound, "node-2", "unbound"), 403) << "a token bound to no pod";
  EXPECT_NE(bodies_.find("--allow-unbound-agent-tokens"), std::string::npos);
  Subprocess* forger = StartAgent("node-3", TokenFile("token-forged", token1),
                                  {"--aggregator", url_, "--allow-insecure-aggregator"});
  ASSERT_TRUE(testing::WaitFor([&] { return LogHas(forger, "HTTP 403"); }, 20000ms))
      << ReadAll(forger->stderr_path());
  auto nodes = As("", "/v1/nodes").second;
  std::set<std::string> names;
  for (const auto& n : nodes["nodes"]) names.insert(n["node"]);
  EXPECT_EQ(names, (std::set<std::string>{"node-1", "node-2"})) << nodes.dump();
  // Before 1.30 the binding came from a GET of the token's pod; from 1.30 on
  // from the review itself.
  auto requests = sim_->Requests();
  ASSERT_TRUE(requests.ok());
  int pod_gets = 0;
  for (const auto& r : *requests) {
    pod_gets += r["verb"] == "get" && r["resource"] == "pods" && r["namespace"] == "ashiato" &&
                r["name"] == "ashiato-agent-node-1";
  }
  if (version < std::string("1.30")) {
    EXPECT_GE(pod_gets, 1) << "the aggregator must look the pod up";
  } else {
    EXPECT_EQ(pod_gets, 0) << "the node-name extra needs no lookup";
  }
}

INSTANTIATE_TEST_SUITE_P(TokenReviewShapes, NodeBindingE2E, ::testing::Values("1.28", "1.32"),
                         [](const auto& info) {
                           std::string v = info.param;
                           return "Kubernetes" + v.substr(0, 1) + "_" + v.substr(2);
                         });

TEST_F(SecurityE2E, AgentsPushOverHttpsAndRefuseWhatTheyCannotTrust) {
  StartSim();
  auto a = kubesim::GenerateTlsMaterial(), b = kubesim::GenerateTlsMaterial();
  ASSERT_TRUE(a.ok() && b.ok());
  std::string cert = dir_ + "/tls.crt", key = dir_ + "/tls.key";
  WriteFile(cert, a->cert_pem);
  WriteFile(key, a->key_pem);
  std::string ca_a = TokenFile("ca-a.crt", a->ca_pem), ca_b = TokenFile("ca-b.crt", b->ca_pem);
  StartAggregator({"--read-auth", "none", "--allow-unbound-agent-tokens", "--tls-cert-file", cert,
                   "--tls-key-file", key, "--tls-reload-interval", "100ms"},
                  a->ca_pem);
  std::string token = TokenFile("agent-token", Token("ashiato", "ashiato-agent", "ashiato"));
  // Trusted through --aggregator-ca-file: delivers.
  StartAgent("node-1", token, {"--aggregator", url_, "--aggregator-ca-file", ca_a});
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto [code, n] = As("", "/v1/nodes");
        return code == 200 && n["count"] == 1;
      },
      20000ms))
      << ReadAll(dir_ + "/aggregator.err");
  // A certificate from a CA it does not trust: refused, nothing delivered.
  Subprocess* wary =
      StartAgent("node-2", token, {"--aggregator", url_, "--aggregator-ca-file", ca_b});
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        // curl's verdict, e.g. "SSL certificate problem: unable to get local issuer certificate".
        std::string err = ReadAll(wary->stderr_path());
        return err.find("cannot reach aggregator") != std::string::npos &&
               err.find("SSL") != std::string::npos;
      },
      20000ms))
      << ReadAll(wary->stderr_path());
  // Plain http:// is refused at start unless allowed.
  Subprocess* plain =
      StartAgent("node-3", token, {"--aggregator", "http://127.0.0.1:" + std::to_string(port_)});
  int st = plain->Wait(10000ms);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 2);
  EXPECT_TRUE(LogHas(plain, "refusing to send the push token over plain http"));
  auto n = As("", "/v1/nodes").second;
  EXPECT_EQ(n["count"], 1) << n.dump();
  // cert-manager renews the certificate: new handshakes get the new one, no restart.
  WriteFile(cert, b->cert_pem);
  WriteFile(key, b->key_pem);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        HttpClient c({.base_url = url_, .ca_pem = b->ca_pem});
        auto r = c.Do("GET", "/healthz");
        return r.ok() && r->status == 200;
      },
      10000ms));
  HttpClient old_ca({.base_url = url_, .ca_pem = a->ca_pem});
  EXPECT_FALSE(old_ca.Do("GET", "/healthz").ok());
  EXPECT_NE(ReadAll(dir_ + "/aggregator.err").find("TLS certificate reloaded"), std::string::npos);
  EXPECT_TRUE(agg_->Running());
}

TEST_F(SecurityE2E, TokensNeverAppearInLogsMetricsOrErrors) {
  StartSim();
  CreateAgentPod("node-1");
  StartAggregator({});  // Every default: read auth, node-bound pushes.
  ASSERT_EQ(Kubectl({"create", "serviceaccount", "intruder", "-n", "ashiato"}).exit_code, 0);
  ASSERT_EQ(Kubectl({"create", "serviceaccount", "prometheus", "-n", "default"}).exit_code, 0);
  ASSERT_EQ(Kubectl({"apply", "--server-side", "-f",
                     std::string(ASHIATO_SOURCE_DIR) + "/daemonset/base/reader-rbac.yaml"})
                .exit_code,
            0);
  ASSERT_EQ(Kubectl({"create", "clusterrolebinding", "prometheus",
                     "--clusterrole=ashiato-metrics-reader", "--serviceaccount=default:prometheus"})
                .exit_code,
            0);
  const std::string garbage = "eyJhbGciOiJSUzI1NiJ9.not-a-real-token-but-secret-anyway.c2VjcmV0";
  std::map<std::string, std::string> tokens = {
      {"garbage", garbage},
      {"intruder", Token("ashiato", "intruder", "ashiato")},
      {"unbound agent", Token("ashiato", "ashiato-agent", "ashiato")},
      {"bound agent", Token("ashiato", "ashiato-agent", "ashiato", "ashiato-agent-node-1")},
      {"api audience", Token("ashiato", "ashiato-agent", "")},
      {"prometheus", Token("default", "prometheus", "")}};
  for (const auto& [what, t] : tokens) ASSERT_FALSE(t.empty()) << what;
  // A real agent pushing with the bad token, until it has been refused.
  Subprocess* bad = StartAgent("node-1", TokenFile("bad-token", garbage),
                               {"--aggregator", url_, "--allow-insecure-aggregator"});
  ASSERT_TRUE(testing::WaitFor([&] { return LogHas(bad, "HTTP 401"); }, 20000ms));
  // A real agent with the good one, delivering.
  Subprocess* good = StartAgent("node-1", TokenFile("good-token", tokens["bound agent"]),
                                {"--aggregator", url_, "--allow-insecure-aggregator"});
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return ReadAll(dir_ + "/aggregator.out").find("\"node_name\":\"node-1\"") !=
               std::string::npos;
      },
      20000ms));
  // Every token at every door.
  for (const auto& [what, t] : tokens) {
    Push(t, "node-1", "hygiene");
    Push(t, "node-2", "hygiene");
    for (const char* path : {"/v1/pods", "/v1/nodes", "/v1/history", "/metrics"}) As(t, path);
  }
  auto metrics = Get("/metrics", tokens["prometheus"]);
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(metrics->status, 200);
  bad->Stop(5000ms);
  good->Stop(5000ms);
  agg_->Stop(10000ms);
  agg_.reset();
  std::map<std::string, std::string> outputs = {
      {"aggregator stdout", ReadAll(dir_ + "/aggregator.out")},
      {"aggregator stderr", ReadAll(dir_ + "/aggregator.err")},
      {"bad agent stdout", ReadAll(bad->stdout_path())},
      {"bad agent stderr", ReadAll(bad->stderr_path())},
      {"good agent stdout", ReadAll(good->stdout_path())},
      {"good agent stderr", ReadAll(good->stderr_path())},
      {"HTTP answers", bodies_},
      {"metrics", metrics->body}};
  // The outputs are real: refusals were logged and answered.
  EXPECT_NE(outputs["bad agent stderr"].find("401"), std::string::npos);
  EXPECT_NE(outputs["HTTP answers"].find("token rejected"), std::string::npos);
  EXPECT_NE(outputs["metrics"].find("result=\"unauthenticated\""), std::string::npos);
  for (const auto& [what, t] : tokens) {
    // The whole token, and its signature alone (the part a log might cut out).
    std::string signature = t.substr(t.rfind('.') + 1);
    for (const auto& [where, text] : outputs) {
      EXPECT_EQ(text.find(t), std::string::npos) << "the " << what << " token is in the " << where;
      EXPECT_EQ(text.find(signature), std::string::npos)
          << "the " << what << " token's signature is in the " << where;
    }
  }
}

}  // namespace
}  // namespace ashiato
