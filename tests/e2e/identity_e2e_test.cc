// End to end, real processes over loopback: kubesim + ashiato-aggregator +
// ashiato-agents. What says where a record comes from (issue 13): the
// cluster name on log lines, ConfigMap labels and API answers; the node's
// addresses and zone/region (the aggregator's Node watch) on log lines and
// in /v1/pods and /v1/ips, kept for a deleted node across a restart; and
// opt-in annotation capture by key prefix.
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

constexpr char kCluster[] = "prod-eu-1";

class IdentityE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KubesimProcess::HaveKubectl()) GTEST_SKIP() << "kubectl not on PATH";
    auto sim = KubesimProcess::Start(
        {.nodes = 3, .pods_per_node = 1, .extra_args = {"--bookmark-interval-ms", "200"}});
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim.value());
    dir_ = testing::MakeTempDir("ashiato-identity-e2e");
    ASSERT_EQ(
        sim_->Kubectl({"create", "serviceaccount", "ashiato-agent", "-n", "ashiato"}).exit_code, 0);
    auto t = sim_->Kubectl(
        {"create", "token", "ashiato-agent", "-n", "ashiato", "--audience", "ashiato"});
    ASSERT_EQ(t.exit_code, 0);
    token_file_ = dir_ + "/agent-token";
    std::ofstream(token_file_) << t.out.substr(0, t.out.find_last_not_of(" \n") + 1);
    StartAggregator();
  }

  void TearDown() override {
    for (auto& a : agents_) {
      if (a) a->Stop(5000ms);
    }
    if (agg_) agg_->Stop(10000ms);
    if (!dir_.empty() && !HasFailure()) testing::RemoveTree(dir_);
    if (HasFailure()) std::fprintf(stderr, "e2e files kept in %s\n", dir_.c_str());
  }

  // On port 0; the port is read from its "serving on port N" log line. The
  // cluster name comes from the CLUSTER environment variable, as in a pod.
  void StartAggregator() {
    const uint64_t from = testing::FileSize(dir_ + "/aggregator.err");
    agg_ = Subprocess::Start(
        {Bin("ASHIATO_AGGREGATOR_BIN", AGGREGATOR_BIN), "--listen", "127.0.0.1:0", "--kubeconfig",
         sim_->kubeconfig_path(), "--auth", "tokenreview", "--allow-unbound-agent-tokens",
         "--read-auth", "none", "--data-dir", dir_ + "/data", "--store-in-cm", "--cm-namespace",
         "default", "--cm-debounce", "100ms"},
        dir_ + "/aggregator.out", dir_ + "/aggregator.err", {std::string("CLUSTER=") + kCluster});
    ASSERT_TRUE(agg_ != nullptr);
    uint16_t port =
        testing::WaitForReportedPort(dir_ + "/aggregator.err", from, "serving on port ", 20000ms);
    ASSERT_NE(port, 0) << "aggregator did not come up; see " << dir_ << "/aggregator.err";
    url_ = "http://127.0.0.1:" + std::to_string(port);
  }

  void StartAgent(const std::string& node, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {Bin("ASHIATO_AGENT_BIN", AGENT_BIN),
                                     "--kubeconfig",
                                     sim_->kubeconfig_path(),
                                     "--node",
                                     node,
                                     "--aggregator",
                                     url_,
                                     "--allow-insecure-aggregator",
                                     "--aggregator-token-file",
                                     token_file_,
                                     "--batch-delay",
                                     "50ms",
                                     "--cluster-name",
                                     kCluster};
    argv.insert(argv.end(), extra.begin(), extra.end());
    agents_.push_back(Subprocess::Start(argv, dir_ + "/agent-" + node + ".out",
                                        dir_ + "/agent-" + node + ".err"));
    ASSERT_TRUE(agents_.back() != nullptr);
  }

  // Status and body of GET path.
  std::pair<int, json> Get(const std::string& path) {
    HttpClient c({.base_url = url_});
    auto r = c.Do("GET", path);
    if (!r.ok()) return {0, json()};
    return {static_cast<int>(r->status), json::parse(r->body, nullptr, false)};
  }

  std::vector<json> Lines(const std::string& file) {
    std::vector<json> out;
    for (const auto& l : testing::ReadLines(dir_ + "/" + file)) {
      json j = json::parse(l, nullptr, false);
      if (j.is_object()) out.push_back(j);
    }
    return out;
  }
  // The first unified log line of `pod` with `event`; null if none yet.
  json LogLine(const std::string& pod, const std::string& event) {
    for (const auto& j : Lines("aggregator.out")) {
      if (j.value("pod_name", "") == pod && j.value("event", "") == event) return j;
    }
    return json();
  }
  json WaitLogLine(const std::string& pod, const std::string& event) {
    json line;
    testing::WaitFor(
        [&] {
          line = LogLine(pod, event);
          return !line.is_null();
        },
        20000ms);
    return line;
  }

  // What kubesim says of a node, as the aggregator should render it.
  json NodeAddresses(const std::string& node) {
    auto n = sim_->KubeJson("GET", "/api/v1/nodes/" + node);
    json out = json::array();
    if (!n.ok()) return out;
    for (const auto& a : (*n)["status"]["addresses"]) {
      out.push_back({{"address", a["address"]}, {"type", a["type"]}});
    }
    return out;
  }
  std::string NodeLabel(const std::string& node, const std::string& key) {
    auto n = sim_->KubeJson("GET", "/api/v1/nodes/" + node);
    return n.ok() ? (*n)["metadata"]["labels"].value(key, "") : "";
  }

  void CreatePod(const std::string& name, const std::string& node, const json& annotations) {
    json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", {{"name", name}, {"namespace", "default"}, {"annotations", annotations}}},
        {"spec",
         {{"nodeName", node}, {"containers", {{{"name", "app"}, {"image", "nginx:1.27"}}}}}}};
    std::string path = dir_ + "/" + name + ".json";
    std::ofstream(path) << pod.dump();
    ASSERT_EQ(sim_->Kubectl({"create", "-f", path}).exit_code, 0);
  }
  void SetPodIp(const std::string& name, const std::string& ip) {
    json patch = {{"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
    ASSERT_EQ(sim_->Kubectl({"patch", "pod", name, "-n", "default", "--subresource=status",
                             "--type=merge", "-p", patch.dump()})
                  .exit_code,
              0);
  }

  std::unique_ptr<KubesimProcess> sim_;
  std::string dir_, token_file_, url_;
  std::unique_ptr<Subprocess> agg_;
  std::vector<std::unique_ptr<Subprocess>> agents_;
};

TEST_F(IdentityE2E, ClusterNameOnLogLinesConfigMapLabelsAndAnswers) {
  StartAgent("node-1");
  CreatePod("named", "node-1", json::object());
  json line = WaitLogLine("named", "CREATED");
  ASSERT_TRUE(line.is_object()) << "no CREATED line for the pod";
  EXPECT_EQ(line.value("cluster", ""), kCluster) << line.dump();
  // Every line, SYNC and IMAGE_* included.
  for (const auto& j : Lines("aggregator.out")) EXPECT_EQ(j.value("cluster", ""), kCluster);
  // The agent's own per-node lines too (--cluster-name on the agent).
  bool agent_line = testing::WaitFor(
      [&] {
        for (const auto& j : Lines("agent-node-1.out")) {
          if (j.value("pod_name", "") == "named") return j.value("cluster", "") == kCluster;
        }
        return false;
      },
      10000ms);
  EXPECT_TRUE(agent_line) << "agent line without the cluster";

  // Every /v1 answer, errors included.
  auto [code, pods] = Get("/v1/pods");
  EXPECT_EQ(code, 200);
  EXPECT_EQ(pods.value("cluster", ""), kCluster);
  auto [code2, missing] = Get("/v1/pods/default/no-such-pod");
  EXPECT_EQ(code2, 404);
  EXPECT_EQ(missing.value("cluster", ""), kCluster) << missing.dump();
  auto [code3, history] = Get("/v1/history?namespace=default&name=named");
  EXPECT_EQ(code3, 200);
  EXPECT_EQ(history.value("cluster", ""), kCluster);
  EXPECT_FALSE(history["events"].empty());

  // The hourly ConfigMap: the new label beside the unchanged ones.
  json cm;
  bool written = testing::WaitFor(
      [&] {
        auto list = sim_->KubeJson(
            "GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%3Dpod-ashiato");
        if (!list.ok() || (*list)["items"].empty()) return false;
        cm = (*list)["items"][0];
        return cm["data"].contains("default_named");
      },
      20000ms);
  ASSERT_TRUE(written) << "no hourly ConfigMap with the pod";
  const json& labels = cm["metadata"]["labels"];
  EXPECT_EQ(labels.value("ashiato.io/cluster", ""), kCluster);
  EXPECT_EQ(labels.value("app", ""), "pod-ashiato");
  EXPECT_EQ(labels.value("type", ""), "pod-node-mapping");
  EXPECT_EQ(cm["metadata"]["name"].get<std::string>().rfind("pod-ashiato-", 0), 0u);
  // One node in the hour: exactly the node name, as pod-ashiato wrote it.
  EXPECT_EQ(cm["data"]["default_named"], "node-1");
}

TEST_F(IdentityE2E, NodeAddressesAndZoneOnLinesAndAnswersAndKeptForADeletedNode) {
  StartAgent("node-2");
  StartAgent("node-3");
  CreatePod("on-two", "node-2", json::object());
  CreatePod("on-three", "node-3", json::object());
  SetPodIp("on-three", "10.77.0.3");
  json two = WaitLogLine("on-two", "CREATED");
  ASSERT_TRUE(two.is_object());
  json addresses2 = NodeAddresses("node-2");
  ASSERT_GE(addresses2.size(), 2u);  // InternalIP and Hostname at least.
  EXPECT_EQ(two["node_addresses"], addresses2) << two.dump();
  EXPECT_EQ(two.value("node_zone", ""), NodeLabel("node-2", "topology.kubernetes.io/zone"));
  EXPECT_EQ(two.value("node_region", ""), NodeLabel("node-2", "topology.kubernetes.io/region"));
  EXPECT_FALSE(two.value("node_zone", "").empty());
  EXPECT_FALSE(two.value("node_region", "").empty());

  // /v1/pods: the node's addresses and zone beside the pod.
  auto [code, pods] = Get("/v1/pods?namespace=default");
  ASSERT_EQ(code, 200);
  bool found = false;
  for (const auto& p : pods["pods"]) {
    if (p["pod_name"] != "on-two") continue;
    found = true;
    EXPECT_EQ(p["node_addresses"], addresses2);
    EXPECT_EQ(p.value("node_zone", ""), two.value("node_zone", ""));
  }
  EXPECT_TRUE(found);

  // /v1/ips: who held the IP, and that node's addresses.
  json addresses3 = NodeAddresses("node-3");
  json holders;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        holders = Get("/v1/ips/10.77.0.3").second["holders"];
        return holders.is_array() && !holders.empty();
      },
      20000ms));
  EXPECT_EQ(holders[0]["node_name"], "node-3");
  EXPECT_EQ(holders[0]["node_addresses"], addresses3);

  // node-3 leaves the cluster; after a restart its last addresses still
  // answer for the history (the store keeps them).
  for (auto& a : agents_) a->Stop(5000ms);
  ASSERT_EQ(sim_->Kubectl({"delete", "node", "node-3"}).exit_code, 0);
  // Whether the aggregator saw the DELETED event before it stopped or finds
  // the node missing from its first list after the restart, the node stays
  // known with its last addresses.
  ASSERT_GE(agg_->Stop(10000ms), 0);
  agg_.reset();
  StartAggregator();
  json after;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        after = Get("/v1/ips/10.77.0.3").second["holders"];
        return after.is_array() && !after.empty();
      },
      20000ms));
  EXPECT_EQ(after[0]["node_name"], "node-3");
  EXPECT_EQ(after[0]["node_addresses"], addresses3) << after.dump();
  // The history lines kept what they said when written.
  auto [hcode, history] = Get("/v1/history?namespace=default&name=on-three");
  ASSERT_EQ(hcode, 200);
  ASSERT_FALSE(history["events"].empty());
  EXPECT_EQ(history["events"][0]["node_addresses"], addresses3);
}

TEST_F(IdentityE2E, AnnotationCapturedByPrefixAndOtherIgnored) {
  StartAgent("node-1", {"--capture-annotations", "example.com/*,team"});
  CreatePod("annotated", "node-1",
            {{"example.com/owner", "payments"},
             {"example.com/ticket", "OPS-12"},
             {"team", "core"},
             {"other.io/secret-ish", "hunter2"},
             {"teams", "not-an-exact-match"}});
  json line = WaitLogLine("annotated", "CREATED");
  ASSERT_TRUE(line.is_object());
  json want = {
      {"example.com/owner", "payments"}, {"example.com/ticket", "OPS-12"}, {"team", "core"}};
  EXPECT_EQ(line["annotations"], want) << line.dump();
  // The agent's line, the API and the history say the same.
  bool agent_line = testing::WaitFor(
      [&] {
        for (const auto& j : Lines("agent-node-1.out")) {
          if (j.value("pod_name", "") == "annotated") return j["annotations"] == want;
        }
        return false;
      },
      10000ms);
  EXPECT_TRUE(agent_line);
  auto [code, pod] = Get("/v1/pods/default/annotated");
  ASSERT_EQ(code, 200);
  EXPECT_EQ(pod["current"]["annotations"], want);
  EXPECT_EQ(pod["uids"][0]["history"][0]["annotations"], want);
  // A change of a captured annotation is a change; of another, nothing.
  ASSERT_EQ(sim_->Kubectl({"annotate", "pod", "annotated", "-n", "default", "--overwrite",
                           "other.io/secret-ish=changed"})
                .exit_code,
            0);
  ASSERT_EQ(sim_->Kubectl({"annotate", "pod", "annotated", "-n", "default", "--overwrite",
                           "example.com/ticket=OPS-13"})
                .exit_code,
            0);
  json updated = WaitLogLine("annotated", "UPDATED");
  ASSERT_TRUE(updated.is_object());
  EXPECT_EQ(updated["annotations"]["example.com/ticket"], "OPS-13");
  int updates = 0;
  for (const auto& j : Lines("aggregator.out")) {
    updates += j.value("pod_name", "") == "annotated" && j.value("event", "") == "UPDATED";
  }
  EXPECT_EQ(updates, 1) << "an ignored annotation's change must not be logged";

  // Pods of an agent that captures nothing carry no annotations field.
  for (const auto& j : Lines("aggregator.out")) {
    if (j.value("pod_name", "") != "annotated") {
      EXPECT_FALSE(j.contains("annotations"));
    }
  }
}

}  // namespace
}  // namespace ashiato
