// End to end, real processes over loopback: kubesim (RBAC enforced) +
// ashiato-aggregator + an ashiato-agent running as the ashiato-agent service
// account with exactly daemonset/base/agent-rbac.yaml. The live
// configuration ConfigMap (issue 13, docs/live-config.md): a scope change
// applied without restart (pods entering it are SYNC, pods leaving it are
// not DELETED), an invalid change refused with a log line and a metric
// while the last good one stays, annotation capture changed on the agents,
// and the log format switched to text.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/http_client.h"
#include "tests/kubesim/kubesim_process.h"
#include "tests/testing/subprocess.h"

namespace ashiato {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::KubesimProcess;
using testing::Subprocess;
constexpr auto Bin = testing::BinFromEnv;

class LiveConfigE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KubesimProcess::HaveKubectl()) GTEST_SKIP() << "kubectl not on PATH";
    auto sim = KubesimProcess::Start(
        {.nodes = 1,
         .pods_per_node = 0,
         // TLS: kubectl sends the admin token only over HTTPS, and RBAC refuses
         // anonymous requests.
         .tls = true,
         .extra_args = {"--bookmark-interval-ms", "200", "--authorization-mode", "RBAC"}});
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim.value());
    dir_ = testing::MakeTempDir("ashiato-live-config-e2e");
    for (const char* ns : {"ashiato", "team-a", "kube-system", "default"}) {
      (void)sim_->Kubectl({"create", "namespace", ns});
    }
    // The agent's own RBAC, as shipped: pods cluster-wide, and the one ConfigMap.
    auto applied = sim_->Kubectl(
        {"apply", "-f", std::string(ASHIATO_SOURCE_DIR) + "/daemonset/base/agent-rbac.yaml"});
    ASSERT_EQ(applied.exit_code, 0) << applied.err;
    auto push = sim_->Kubectl(
        {"create", "token", "ashiato-agent", "-n", "ashiato", "--audience", "ashiato"});
    ASSERT_EQ(push.exit_code, 0);
    token_file_ = dir_ + "/agent-token";
    std::ofstream(token_file_) << Trimmed(push.out);
    auto api = sim_->Kubectl({"create", "token", "ashiato-agent", "-n", "ashiato"});
    ASSERT_EQ(api.exit_code, 0);
    agent_kubeconfig_ = dir_ + "/agent-kubeconfig";
    std::ofstream(dir_ + "/ca.crt") << sim_->ca_pem();
    std::ofstream(agent_kubeconfig_)
        << "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: "
        << sim_->server_url() << "\n    certificate-authority: " << dir_
        << "/ca.crt\nusers:\n- name: agent\n  user:\n    token: " << Trimmed(api.out)
        << "\ncontexts:\n- name: agent\n  context:\n    cluster: sim\n    user: agent\n"
        << "current-context: agent\n";
  }

  void TearDown() override {
    if (agent_) agent_->Stop(5000ms);
    if (agg_) agg_->Stop(10000ms);
    if (!dir_.empty() && !HasFailure()) testing::RemoveTree(dir_);
    if (HasFailure()) std::fprintf(stderr, "e2e files kept in %s\n", dir_.c_str());
  }

  static std::string Trimmed(const std::string& s) {
    return s.substr(0, s.find_last_not_of(" \n") + 1);
  }

  void StartAggregator() {
    agg_ =
        Subprocess::Start({Bin("ASHIATO_AGGREGATOR_BIN", AGGREGATOR_BIN), "--listen", "127.0.0.1:0",
                           "--kubeconfig", sim_->kubeconfig_path(), "--auth", "tokenreview",
                           "--allow-unbound-agent-tokens", "--read-auth", "none", "--data-dir",
                           dir_ + "/data", "--config-map", "ashiato/ashiato-config"},
                          dir_ + "/aggregator.out", dir_ + "/aggregator.err");
    ASSERT_TRUE(agg_ != nullptr);
    uint16_t port =
        testing::WaitForReportedPort(dir_ + "/aggregator.err", 0, "serving on port ", 20000ms);
    ASSERT_NE(port, 0) << "aggregator did not come up; see " << dir_ << "/aggregator.err";
    url_ = "http://127.0.0.1:" + std::to_string(port);
  }

  void StartAgent() {
    agent_ = Subprocess::Start(
        {Bin("ASHIATO_AGENT_BIN", AGENT_BIN), "--kubeconfig", agent_kubeconfig_, "--node", "node-1",
         "--aggregator", url_, "--allow-insecure-aggregator", "--aggregator-token-file",
         token_file_, "--config-map", "ashiato/ashiato-config"},
        dir_ + "/agent.out", dir_ + "/agent.err");
    ASSERT_TRUE(agent_ != nullptr);
  }

  // Creates or replaces the live configuration.
  void SetConfig(const json& data) {
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", "ashiato-config"}, {"namespace", "ashiato"}}},
               {"data", data}};
    std::string path = dir_ + "/config.json";
    std::ofstream(path) << cm.dump();
    auto r = sim_->Kubectl({"apply", "-f", path});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  void CreatePod(const std::string& ns, const std::string& name, const json& annotations = {}) {
    json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", name},
          {"namespace", ns},
          {"annotations", annotations.is_null() ? json::object() : annotations}}},
        {"spec",
         {{"nodeName", "node-1"}, {"containers", {{{"name", "app"}, {"image", "nginx:1.27"}}}}}}};
    std::string path = dir_ + "/" + ns + "-" + name + ".json";
    std::ofstream(path) << pod.dump();
    auto r = sim_->Kubectl({"create", "-f", path});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // The unified log's JSON lines.
  std::vector<json> Lines() {
    std::vector<json> out;
    for (const auto& l : testing::ReadLines(dir_ + "/aggregator.out")) {
      json j = json::parse(l, nullptr, false);
      if (j.is_object()) out.push_back(j);
    }
    return out;
  }
  int Count(const std::string& ns, const std::string& pod, const std::string& event) {
    int n = 0;
    for (const auto& j : Lines()) {
      if (j.value("namespace", "") == ns && j.value("pod_name", "") == pod &&
          (event.empty() || j.value("event", "") == event)) {
        ++n;
      }
    }
    return n;
  }
  bool WaitLine(const std::string& ns, const std::string& pod, const std::string& event) {
    return testing::WaitFor([&] { return Count(ns, pod, event) > 0; }, 20000ms);
  }
  int ErrLines(const std::string& file, const std::string& needle) {
    int n = 0;
    for (const auto& l : testing::ReadLines(dir_ + "/" + file)) {
      if (l.find(needle) != std::string::npos) ++n;
    }
    return n;
  }
  double Metric(const std::string& name) {
    HttpClient c({.base_url = url_});
    auto r = c.Do("GET", "/metrics");
    if (!r.ok()) return -1;
    size_t at = r->body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(r->body.substr(at + name.size() + 2));
  }

  std::unique_ptr<KubesimProcess> sim_;
  std::string dir_, token_file_, agent_kubeconfig_, url_;
  std::unique_ptr<Subprocess> agg_, agent_;
};

TEST_F(LiveConfigE2E, ScopeChangesApplyWithoutRestartAndBadOnesAreRefused) {
  SetConfig({{"namespaces", "team-*"}});
  CreatePod("team-a", "app-1");
  CreatePod("kube-system", "sys-1");
  CreatePod("default", "other-1");
  StartAggregator();
  StartAgent();

  // Only team-a is reported. The three pods come in one snapshot, committed
  // and printed in one batch: once app-1's line is there, the others would be.
  ASSERT_TRUE(WaitLine("team-a", "app-1", "SYNC")) << "no SYNC line for team-a/app-1";
  EXPECT_EQ(Count("kube-system", "sys-1", ""), 0);
  EXPECT_EQ(Count("default", "other-1", ""), 0);
  // History keeps every pod: out of scope is not forgotten.
  HttpClient c({.base_url = url_});
  auto hist = c.Do("GET", "/v1/history?namespace=kube-system&name=sys-1");
  ASSERT_TRUE(hist.ok());
  EXPECT_FALSE(json::parse(hist->body)["events"].empty()) << hist->body;

  // Widen: kube-system comes into scope as SYNC, logged once with what changed.
  SetConfig({{"namespaces", "team-*, *-system"}});
  ASSERT_TRUE(WaitLine("kube-system", "sys-1", "SYNC")) << "kube-system/sys-1 did not enter";
  EXPECT_EQ(Count("default", "other-1", ""), 0);
  EXPECT_EQ(
      ErrLines("aggregator.err", "changed: namespaces: \\\"team-*\\\" -> \\\"*-system,team-*\\\""),
      1);

  // Invalid: refused, logged, counted; the last good scope stays in force.
  SetConfig({{"namespaces", "team-*, *-system"}, {"labelSelector", "tier in ("}});
  ASSERT_TRUE(
      testing::WaitFor([&] { return ErrLines("aggregator.err", "change refused") > 0; }, 20000ms));
  EXPECT_TRUE(testing::WaitFor(
      [&] { return Metric("ashiato_aggregator_live_config_invalid") == 1; }, 10000ms));
  EXPECT_EQ(Metric("ashiato_aggregator_live_config_refused_total"), 1);
  CreatePod("kube-system", "sys-2");
  CreatePod("default", "other-2");
  CreatePod("team-a", "sentinel-1");
  ASSERT_TRUE(WaitLine("team-a", "sentinel-1", "CREATED"));
  EXPECT_EQ(Count("kube-system", "sys-2", "CREATED"), 1);
  EXPECT_EQ(Count("default", "other-2", ""), 0);

  // Narrow again: kube-system leaves the scope, and nothing says it was deleted,
  // not even its real deletion afterwards.
  SetConfig({{"namespaces", "team-*"}});
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Metric("ashiato_aggregator_live_config_invalid") == 0; }, 20000ms));
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return ErrLines("aggregator.err", "changed: namespaces: \\\"*-system,team-*\\\"") > 0;
      },
      20000ms));
  ASSERT_EQ(
      sim_->Kubectl({"delete", "pod", "sys-1", "-n", "kube-system", "--wait=false"}).exit_code, 0);
  CreatePod("team-a", "sentinel-2");
  ASSERT_TRUE(WaitLine("team-a", "sentinel-2", "CREATED"));
  EXPECT_EQ(Count("kube-system", "sys-1", "DELETED"), 0);
  EXPECT_EQ(Count("kube-system", "sys-2", "DELETED"), 0);
  // The deletion is in the history all the same.
  auto gone = c.Do("GET", "/v1/history?namespace=kube-system&name=sys-1");
  ASSERT_TRUE(gone.ok());
  EXPECT_NE(gone->body.find("DELETED"), std::string::npos) << gone->body;
}

TEST_F(LiveConfigE2E, AgentsCaptureAnnotationsAndTheLogTurnsToText) {
  SetConfig(json::object());
  CreatePod("team-a", "annotated", {{"example.com/team", "a"}, {"secret.example/key", "s3cr3t"}});
  StartAggregator();
  StartAgent();
  ASSERT_TRUE(WaitLine("team-a", "annotated", "SYNC"));
  for (const auto& j : Lines()) EXPECT_FALSE(j.contains("annotations")) << j.dump();

  // Captured from now on: the agent relists, so the running pod's record
  // carries the annotation within seconds, without a change to the pod.
  SetConfig({{"captureAnnotations", "example.com/*"}});
  ASSERT_TRUE(WaitLine("team-a", "annotated", "UPDATED"))
      << "the agent did not apply the new captureAnnotations";
  json updated;
  for (const auto& j : Lines()) {
    if (j.value("event", "") == "UPDATED") updated = j;
  }
  EXPECT_EQ(updated["annotations"], (json{{"example.com/team", "a"}})) << updated.dump();
  EXPECT_EQ(ErrLines("agent.err", "changed: captureAnnotations"), 1);

  // Text from now on (the JSON lines before stay as they were).
  SetConfig({{"captureAnnotations", "example.com/*"}, {"logFormat", "text"}});
  ASSERT_TRUE(
      testing::WaitFor([&] { return ErrLines("aggregator.err", "logFormat") > 0; }, 20000ms));
  CreatePod("team-a", "texted");
  bool text = testing::WaitFor(
      [&] {
        for (const auto& l : testing::ReadLines(dir_ + "/aggregator.out")) {
          if (l.find(" CREATED team-a/texted node=node-1") != std::string::npos) return true;
        }
        return false;
      },
      20000ms);
  EXPECT_TRUE(text) << "no text line for team-a/texted";
}

}  // namespace
}  // namespace ashiato
