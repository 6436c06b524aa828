// End to end, real processes over loopback: ashiato-agent in standalone mode
// (pod-ashiato's laptop mode: one process, one cluster-wide watch or list, no
// aggregator) against kubesim, and --log-all-every. The standalone agent's
// hourly ConfigMaps are compared with what ashiato-aggregator writes for the
// same pods (fed by per-node agents): same names, same data, byte for byte.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/http_client.h"
#include "common/pod_record.h"
#include "tests/kubesim/kubesim_process.h"
#include "tests/testing/subprocess.h"

namespace ashiato {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::KubesimProcess;
using testing::Subprocess;
constexpr auto kWait = 30000ms;

std::string AgentBin() { return testing::BinFromEnv("ASHIATO_AGENT_BIN", AGENT_BIN); }

// JSON lines of a file (stdout of an agent).
std::vector<json> JsonLines(const std::string& path) {
  std::vector<json> out;
  for (const auto& l : testing::ReadLines(path)) {
    json j = json::parse(l, nullptr, false);
    if (j.is_object()) out.push_back(j);
  }
  return out;
}

class StandaloneE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sim = KubesimProcess::Start(
        {.nodes = 3, .pods_per_node = 3, .extra_args = {"--bookmark-interval-ms", "200"}});
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim.value());
    dir_ = testing::MakeTempDir("ashiato-standalone-e2e");
  }
  void TearDown() override {
    for (auto& p : processes_) p->Stop(5000ms);
    if (!HasFailure()) testing::RemoveTree(dir_);
    if (HasFailure()) std::fprintf(stderr, "e2e files kept in %s\n", dir_.c_str());
  }

  Subprocess* Start(const std::string& name, std::vector<std::string> argv) {
    processes_.push_back(
        Subprocess::Start(argv, dir_ + "/" + name + ".out", dir_ + "/" + name + ".err"));
    EXPECT_TRUE(processes_.back() != nullptr);
    return processes_.back().get();
  }

  // POSTs an object to kubesim; fails the test on an error.
  void Create(const std::string& path, const json& object) {
    auto r = sim_->KubeRequest("POST", path, object.dump());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_LT(r->status, 300) << r->body;
  }
  void CreateNamespace(const std::string& ns) {
    Create("/api/v1/namespaces",
           {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }
  // A minimal pod; `node` "" leaves it unscheduled.
  void CreatePod(const std::string& ns, const std::string& name, const std::string& node) {
    json spec = {{"containers", {{{"name", "c"}, {"image", "busybox:1.36"}}}}};
    if (!node.empty()) spec["nodeName"] = node;
    Create("/api/v1/namespaces/" + ns + "/pods", {{"apiVersion", "v1"},
                                                  {"kind", "Pod"},
                                                  {"metadata", {{"name", name}, {"namespace", ns}}},
                                                  {"spec", spec}});
  }

  // namespace_podname -> node of every pod on a node, as pod-ashiato wrote them.
  std::map<std::string, std::string> ClusterMapping() {
    std::map<std::string, std::string> out;
    auto pods = sim_->KubeJson("GET", "/api/v1/pods");
    EXPECT_TRUE(pods.ok()) << pods.status().ToString();
    if (!pods.ok()) return out;
    for (const auto& p : (*pods)["items"]) {
      PodRecord r = PodRecordFromPodJson(p);
      if (!r.node_name.empty()) out[r.namespace_ + "_" + r.name] = r.node_name;
    }
    return out;
  }

  // The hourly ConfigMaps of `ns` (name -> object), read back with the real
  // kubectl when it is on PATH, else from the API directly.
  std::map<std::string, json> HourlyConfigMaps(const std::string& ns) {
    json list;
    if (KubesimProcess::HaveKubectl()) {
      auto r = sim_->Kubectl({"get", "cm", "-n", ns, "-l", "app=pod-ashiato", "-o", "json"});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      list = json::parse(r.out, nullptr, false);
    } else {
      auto r = sim_->KubeJson(
          "GET", "/api/v1/namespaces/" + ns + "/configmaps?labelSelector=app%3Dpod-ashiato");
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) list = *r;
    }
    std::map<std::string, json> out;
    if (!list.is_object()) return out;
    for (const auto& cm : list["items"]) out[cm["metadata"]["name"].get<std::string>()] = cm;
    return out;
  }
  // Every key of every hourly ConfigMap of `ns`, merged.
  std::map<std::string, std::string> MergedData(const std::string& ns) {
    std::map<std::string, std::string> out;
    for (const auto& [name, cm] : HourlyConfigMaps(ns)) {
      json data = cm.value("data", json::object());
      for (auto it = data.begin(); it != data.end(); ++it) out[it.key()] = it.value();
    }
    return out;
  }

  // ashiato-aggregator (port 0, parsed from its log) writing the ConfigMaps
  // to `cm_namespace`, and one agent per node pushing to it.
  void StartAggregatorAndAgents(const std::string& cm_namespace) {
    Subprocess* agg = Start(
        "aggregator", {testing::BinFromEnv("ASHIATO_AGGREGATOR_BIN", AGGREGATOR_BIN), "--listen",
                       "127.0.0.1:0", "--kubeconfig", sim_->kubeconfig_path(), "--auth", "none",
                       "--read-auth", "none", "--data-dir", dir_ + "/data", "--store-in-cm",
                       "--cm-namespace", cm_namespace, "--cm-debounce", "100ms"});
    uint16_t port = testing::WaitForReportedPort(agg->stderr_path(), 0, "serving on port ", kWait);
    ASSERT_NE(port, 0) << "aggregator did not come up; see " << dir_;
    for (int i = 1; i <= 3; ++i) {
      std::string node = "node-" + std::to_string(i);
      Start("agent-" + node, {AgentBin(), "--kubeconfig", sim_->kubeconfig_path(), "--node", node,
                              "--aggregator", "http://127.0.0.1:" + std::to_string(port),
                              "--allow-insecure-aggregator", "--batch-delay", "50ms"});
    }
  }

  std::unique_ptr<KubesimProcess> sim_;
  std::string dir_;
  std::vector<std::unique_ptr<Subprocess>> processes_;
};

// pod-ashiato's `--store-in-cm` from a laptop, once: the hour's ConfigMap
// holds exactly the cluster's pods that are on a node, and the same data as
// the aggregator writes for the same pods.
TEST_F(StandaloneE2E, OneshotWritesTheHoursConfigMapLikeTheAggregator) {
  CreateNamespace("standalone");
  CreateNamespace("aggregated");
  CreatePod("default", "unscheduled", "");  // No node: in neither ConfigMap.
  std::map<std::string, std::string> want = ClusterMapping();
  ASSERT_EQ(want.size(), 9u);

  // The aggregator first (so that both write in the same hour unless one
  // ends in between, which the comparison below detects).
  StartAggregatorAndAgents("aggregated");
  ASSERT_TRUE(testing::WaitFor([&] { return MergedData("aggregated") == want; }, kWait))
      << "aggregator's ConfigMaps: " << json(MergedData("aggregated")).dump();

  std::string out;
  int rc = testing::RunCommand({AgentBin(), "--kubeconfig", sim_->kubeconfig_path(),
                                "--store-in-cm", "--oneshot", "--cm-namespace", "standalone"},
                               &out);
  ASSERT_EQ(rc, 0) << out;
  // Its log: one SYNC line per pod of the cluster, the unscheduled one too.
  std::set<std::string> logged;
  std::stringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line);
    EXPECT_EQ(j["event"], "SYNC") << line;
    logged.insert(j["namespace"].get<std::string>() + "_" + j["pod_name"].get<std::string>());
  }
  EXPECT_EQ(logged.size(), want.size() + 1);
  EXPECT_TRUE(logged.count("default_unscheduled"));

  // Exactly the cluster's pods, at once (--oneshot flushed before exiting).
  std::map<std::string, json> standalone = HourlyConfigMaps("standalone");
  ASSERT_EQ(standalone.size(), 1u);
  EXPECT_EQ(MergedData("standalone"), want);
  const auto& [name, cm] = *standalone.begin();
  EXPECT_EQ(cm["metadata"]["labels"]["app"], "pod-ashiato");
  EXPECT_EQ(cm["metadata"]["labels"]["type"], "pod-node-mapping");
  EXPECT_EQ(name, "pod-ashiato-" + cm["metadata"]["labels"]["ashiato.io/hour"].get<std::string>());

  // The same bytes as the aggregator's ConfigMap of that hour.
  std::map<std::string, json> aggregated = HourlyConfigMaps("aggregated");
  if (!aggregated.count(name)) {
    GTEST_SKIP() << "an hour ended between the two writers (" << name << " vs "
                 << aggregated.begin()->first << "); nothing to compare";
  }
  EXPECT_EQ(cm["data"].dump(), aggregated[name]["data"].dump());
  EXPECT_EQ(cm["metadata"]["labels"].dump(), aggregated[name]["metadata"]["labels"].dump());
  EXPECT_EQ(cm["metadata"]["annotations"].dump(),
            aggregated[name]["metadata"]["annotations"].dump());

  // A second run in the same hour merges into it: nothing lost, nothing added.
  rc = testing::RunCommand({AgentBin(), "--kubeconfig", sim_->kubeconfig_path(), "--store-in-cm",
                            "--oneshot", "--cm-namespace", "standalone", "--no-stdout"},
                           &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(MergedData("standalone"), want);
}

// A write that cannot succeed (no such namespace) is an error, said once on
// stderr, and exit code 1: a script must not believe the hour was recorded.
TEST_F(StandaloneE2E, OneshotFailsClearlyWhenTheConfigMapCannotBeWritten) {
  Subprocess* agent =
      Start("bad-namespace", {AgentBin(), "--kubeconfig", sim_->kubeconfig_path(), "--store-in-cm",
                              "--oneshot", "--cm-namespace", "no-such-namespace"});
  int st = agent->Wait(kWait);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 1);
  bool said = false;
  for (const auto& l : testing::ReadLines(agent->stderr_path())) {
    said |= l.rfind(
                "ashiato-agent: cannot write the hourly ConfigMaps in namespace "
                "no-such-namespace: ",
                0) == 0;
  }
  EXPECT_TRUE(said) << agent->stderr_path();
  EXPECT_EQ(JsonLines(agent->stdout_path()).size(), ClusterMapping().size());  // Still logged.
}

// Continuous standalone mode: one cluster-wide list and watch (no field
// selector), and the ConfigMap follows the cluster within --interval.
TEST_F(StandaloneE2E, WatchKeepsTheHoursConfigMapCurrent) {
  Subprocess* agent =
      Start("standalone", {AgentBin(), "--kubeconfig", sim_->kubeconfig_path(), "--store-in-cm",
                           "--interval", "200ms", "--listen-health", "127.0.0.1:0"});
  std::map<std::string, std::string> want = ClusterMapping();
  ASSERT_TRUE(testing::WaitFor([&] { return MergedData("default") == want; }, kWait))
      << json(MergedData("default")).dump();

  CreatePod("default", "late-0", "node-2");
  want["default_late-0"] = "node-2";
  ASSERT_TRUE(testing::WaitFor([&] { return MergedData("default") == want; }, kWait))
      << json(MergedData("default")).dump();
  // A deleted pod stays in the hour it ran in.
  auto del =
      sim_->KubeRequest("DELETE", "/api/v1/namespaces/default/pods/late-0?gracePeriodSeconds=0");
  ASSERT_TRUE(del.ok() && del->status < 300);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& e : JsonLines(agent->stdout_path())) {
          if (e["event"] == "DELETED" && e["pod_name"] == "late-0") return true;
        }
        return false;
      },
      kWait));
  EXPECT_EQ(agent->Stop(10000ms), 0);
  EXPECT_EQ(MergedData("default"), want);

  // One cluster-wide list, then watches, none with a node field selector.
  auto requests = sim_->Requests();
  ASSERT_TRUE(requests.ok());
  int lists = 0, watches = 0;
  for (const auto& r : *requests) {
    if (r.value("user_agent", "").rfind("ashiato-agent", 0) != 0) continue;
    if (r.value("path", "") != "/api/v1/pods") continue;
    std::string q = r.value("query", "");
    EXPECT_EQ(q.find("fieldSelector"), std::string::npos) << r.dump();
    (q.find("watch=1") != std::string::npos ? watches : lists)++;
  }
  EXPECT_EQ(lists, 1);
  EXPECT_GE(watches, 1);
}

// Groups of "PERIODIC" lines (one dump each, all with one timestamp), in order.
std::vector<std::set<std::string>> PeriodicDumps(const std::string& path) {
  std::vector<std::set<std::string>> dumps;
  std::string last_ts;
  for (const auto& e : JsonLines(path)) {
    if (e["event"] != "PERIODIC") continue;
    if (e["timestamp"] != last_ts) dumps.emplace_back();
    last_ts = e["timestamp"];
    dumps.back().insert(e["namespace"].get<std::string>() + "_" + e["pod_name"].get<std::string>() +
                        "@" + e["node_name"].get<std::string>());
  }
  return dumps;
}

std::set<std::string> AsLogged(const std::map<std::string, std::string>& mapping,
                               const std::string& only_node = "") {
  std::set<std::string> out;
  for (const auto& [key, node] : mapping) {
    if (only_node.empty() || node == only_node) out.insert(key + "@" + node);
  }
  return out;
}

// --log-all-every: every pod in the view, again and again, in the per-node
// agent (its node's pods) and the standalone one (every pod).
TEST_F(StandaloneE2E, LogAllEveryPrintsTheWholeViewPeriodically) {
  Subprocess* per_node = Start("node-1", {AgentBin(), "--kubeconfig", sim_->kubeconfig_path(),
                                          "--node", "node-1", "--log-all-every", "200ms"});
  Subprocess* standalone = Start("standalone", {AgentBin(), "--kubeconfig", sim_->kubeconfig_path(),
                                                "--standalone", "--log-all-every", "200ms"});
  std::map<std::string, std::string> cluster = ClusterMapping();
  // Three complete dumps each (a dump is written whole before the next).
  for (const auto& [process, node_name] :
       {std::pair{per_node, std::string("node-1")}, std::pair{standalone, std::string()}}) {
    Subprocess* agent = process;  // A lambda may not capture a structured binding (C++17).
    const std::string& node = node_name;
    std::set<std::string> want = AsLogged(cluster, node);
    ASSERT_FALSE(want.empty());
    ASSERT_TRUE(
        testing::WaitFor([&] { return PeriodicDumps(agent->stdout_path()).size() >= 4; }, kWait))
        << agent->stdout_path();
    auto dumps = PeriodicDumps(agent->stdout_path());
    for (size_t i = 0; i + 1 < dumps.size(); ++i) EXPECT_EQ(dumps[i], want) << "dump " << i;
    // The change log is unaffected: one SYNC per pod, nothing else.
    int sync = 0;
    for (const auto& e : JsonLines(agent->stdout_path())) {
      if (e["event"] != "PERIODIC") {
        EXPECT_EQ(e["event"], "SYNC");
        ++sync;
      }
    }
    EXPECT_EQ(sync, static_cast<int>(want.size()));
  }
}

}  // namespace
}  // namespace ashiato
