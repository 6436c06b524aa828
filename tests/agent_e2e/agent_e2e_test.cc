// End-to-end: the real ashiato-agent binary against the real kubesim over
// loopback (HTTP and HTTPS), driven with the real kubectl and kubesim's fault
// endpoint. Every test asserts the exact event sequence the agent printed,
// that its final view equals kubesim's, and that every pod list and watch it
// sent carried the node field selector.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "common/pod_record.h"
#include "common/time_util.h"
#include "tests/kubesim/kubesim_process.h"
#include "tests/testing/subprocess.h"

namespace ashiato {
namespace {

using nlohmann::json;
using testing::KubesimProcess;
using testing::KubesimProcessOptions;
using testing::Subprocess;

constexpr auto kWait = std::chrono::seconds(20);

// The agent under test: ASHIATO_AGENT_BIN (the static agent, `make
// test-agent-static`) or this tree's.
std::string AgentBin() { return testing::BinFromEnv("ASHIATO_AGENT_BIN", AGENT_BIN); }

std::unique_ptr<KubesimProcess> StartSim(KubesimProcessOptions o) {
  auto sim = KubesimProcess::Start(o);
  EXPECT_TRUE(sim.ok()) << sim.status().ToString();
  return sim.ok() ? std::move(*sim) : nullptr;
}

// The agent's stdout lines as JSON.
std::vector<json> ReadEvents(const std::string& path) {
  std::vector<json> out;
  for (const auto& line : testing::ReadLines(path)) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

// "CREATED default/web-1" per event.
std::vector<std::string> Describe(const std::vector<json>& events, size_t from = 0) {
  std::vector<std::string> out;
  for (size_t i = from; i < events.size(); ++i) {
    out.push_back(events[i]["event"].get<std::string>() + " " +
                  events[i]["namespace"].get<std::string>() + "/" +
                  events[i]["pod_name"].get<std::string>());
  }
  return out;
}

// kubesim's pods on `node`, by UID.
std::map<std::string, PodRecord> SimPods(KubesimProcess& sim, const std::string& node) {
  auto list = sim.KubeJson("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3D" + node);
  EXPECT_TRUE(list.ok()) << list.status().ToString();
  std::map<std::string, PodRecord> out;
  if (!list.ok()) return out;
  for (const auto& item : (*list)["items"]) {
    PodRecord r = PodRecordFromPodJson(item);
    out[r.uid] = r;
  }
  return out;
}

// Replays the agent's events into a view, failing on any duplicate: a
// CREATED/SYNC of a known pod, an UPDATED that changes nothing or of an
// unknown pod, a DELETED of an unknown pod.
std::map<std::string, PodRecord> ReplayView(const std::vector<json>& events) {
  std::map<std::string, PodRecord> view;
  for (const auto& e : events) {
    std::string type = e["event"];
    PodRecord r = PodRecordFromLogJson(e);
    auto it = view.find(r.uid);
    if (type == "SYNC" || type == "CREATED") {
      EXPECT_TRUE(it == view.end()) << "duplicate " << type << " " << r.Key();
      view[r.uid] = r;
    } else if (type == "UPDATED") {
      EXPECT_TRUE(it != view.end()) << "UPDATED of unknown " << r.Key();
      if (it != view.end()) {
        EXPECT_FALSE(it->second.SameObservableState(r)) << "UPDATED without change " << r.Key();
      }
      view[r.uid] = r;
    } else if (type == "DELETED") {
      EXPECT_TRUE(it != view.end()) << "DELETED of unknown " << r.Key();
      view.erase(r.uid);
    } else {
      ADD_FAILURE() << "unknown event " << type;
    }
  }
  return view;
}

bool SameView(const std::map<std::string, PodRecord>& a,
              const std::map<std::string, PodRecord>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [uid, r] : a) {
    auto it = b.find(uid);
    if (it == b.end() || !it->second.SameObservableState(r)) return false;
  }
  return true;
}

// Every pod list/watch the agent sent carried the node's field selector.
void ExpectAllRequestsNodeSelected(KubesimProcess& sim, const std::string& node) {
  auto requests = sim.Requests();
  ASSERT_TRUE(requests.ok()) << requests.status().ToString();
  int pod_reads = 0;
  for (const auto& r : *requests) {
    if (r.value("user_agent", "").rfind("ashiato-agent", 0) != 0) continue;
    // Every request the agent sends, including ones failed by injected
    // faults (recorded before routing, so without a resource).
    EXPECT_EQ(r.value("method", ""), "GET") << r.dump();
    EXPECT_EQ(r.value("path", ""), "/api/v1/pods") << r.dump();
    ++pod_reads;
    EXPECT_NE(r.value("query", "").find("fieldSelector=spec.nodeName=" + node), std::string::npos)
        << "request without the node field selector: " << r.dump();
  }
  EXPECT_GT(pod_reads, 0);
}

class AgentProcess {
 public:
  AgentProcess(KubesimProcess& sim, const std::string& node, std::vector<std::string> extra = {}) {
    dir_ = testing::MakeTempDir("agent-e2e");
    std::vector<std::string> argv = {AgentBin(),
                                     "--kubeconfig",
                                     sim.kubeconfig_path(),
                                     "--node",
                                     node,
                                     "--backoff-initial",
                                     "50ms",
                                     "--backoff-max",
                                     "300ms",
                                     "--listen-health",
                                     "127.0.0.1:0",
                                     "--log-level",
                                     "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = Subprocess::Start(argv, dir_ + "/stdout", dir_ + "/stderr");
  }
  ~AgentProcess() {
    process_.reset();
    testing::RemoveTree(dir_);
  }
  std::vector<json> Events() { return ReadEvents(dir_ + "/stdout"); }
  bool WaitForEvents(size_t n) {
    return testing::WaitFor([&] { return Events().size() >= n; }, kWait);
  }
  // The health port, from the agent's log.
  int HealthPort() {
    int port = 0;
    testing::WaitFor(
        [&] {
          std::regex re("health and metrics on port (\\d+)");
          for (const auto& line : testing::ReadLines(dir_ + "/stderr")) {
            std::smatch m;
            if (std::regex_search(line, m, re)) port = std::stoi(m[1]);
          }
          return port != 0;
        },
        kWait);
    return port;
  }
  Subprocess& process() { return *process_; }
  std::string Stderr() {
    std::string all;
    for (const auto& l : testing::ReadLines(dir_ + "/stderr")) all += l + "\n";
    return all;
  }

 private:
  std::string dir_;
  std::unique_ptr<Subprocess> process_;
};

HttpClient HealthClient(int port) {
  HttpClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  return HttpClient(o);
}

bool Ready(int port) {
  HttpClient c = HealthClient(port);
  auto r = c.Do("GET", "/readyz");
  return r.ok() && r->status == 200;
}

// Waits until the agent's replayed view equals kubesim's.
bool ConvergesTo(AgentProcess& agent, KubesimProcess& sim, const std::string& node) {
  return testing::WaitFor(
      [&] {
        auto events = agent.Events();
        ::testing::ScopedTrace t(__FILE__, __LINE__, "replay");
        return SameView(ReplayView(events), SimPods(sim, node));
      },
      kWait);
}

void RunOneshot(bool tls) {
  KubesimProcessOptions o;
  o.nodes = 3;
  o.pods_per_node = 4;
  o.tls = tls;
  auto sim = StartSim(o);
  ASSERT_NE(sim, nullptr);
  std::string out;
  int rc = testing::RunCommand(
      {AgentBin(), "--kubeconfig", sim->kubeconfig_path(), "--node", "node-2", "--oneshot"}, &out);
  ASSERT_EQ(rc, 0) << out;
  std::vector<json> events;
  std::stringstream ss(out);
  std::string line;
  while (std::getline(ss, line)) events.push_back(json::parse(line));
  std::map<std::string, PodRecord> want = SimPods(*sim, "node-2");
  ASSERT_EQ(want.size(), 4u);
  ASSERT_EQ(events.size(), want.size());
  for (const auto& e : events) {
    EXPECT_EQ(e["event"], "SYNC");
    EXPECT_EQ(e["node_name"], "node-2");
    EXPECT_TRUE(std::regex_match(e["timestamp"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
    PodRecord r = PodRecordFromLogJson(e);
    ASSERT_TRUE(want.count(r.uid)) << e.dump();
    EXPECT_TRUE(want[r.uid].SameObservableState(r)) << e.dump();
    EXPECT_FALSE(r.containers.empty());
    EXPECT_FALSE(r.pod_ip.empty());
  }
  ExpectAllRequestsNodeSelected(*sim, "node-2");

  // --quorum-list: paginated (limit/continue) without resourceVersion=0, same pods.
  auto before = sim->Requests();
  ASSERT_TRUE(before.ok());
  std::string paged;
  rc = testing::RunCommand({AgentBin(), "--kubeconfig", sim->kubeconfig_path(), "--node", "node-2",
                            "--oneshot", "--quorum-list", "--list-page-size", "3"},
                           &paged);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(std::count(paged.begin(), paged.end(), '\n'), 4) << paged;
  auto after = sim->Requests();
  ASSERT_TRUE(after.ok());
  std::vector<std::string> queries;
  for (size_t i = before->size(); i < after->size(); ++i) {
    if ((*after)[i].value("resource", "") == "pods") queries.push_back((*after)[i]["query"]);
  }
  ASSERT_EQ(queries.size(), 2u);
  EXPECT_NE(queries[0].find("limit=3"), std::string::npos) << queries[0];
  EXPECT_EQ(queries[0].find("resourceVersion"), std::string::npos) << queries[0];
  EXPECT_NE(queries[1].find("continue="), std::string::npos) << queries[1];
  ExpectAllRequestsNodeSelected(*sim, "node-2");
}

TEST(AgentE2E, OneshotPrintsExactlyTheNodesPodsHttp) { RunOneshot(false); }
TEST(AgentE2E, OneshotPrintsExactlyTheNodesPodsHttps) { RunOneshot(true); }

TEST(AgentE2E, OneshotFailsClearlyWhenApiUnreachable) {
  std::string dir = testing::MakeTempDir("agent-e2e");
  std::string kubeconfig = dir + "/kubeconfig";
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                               "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
                               "contexts: [{name: c, context: {cluster: c}}]\n";
  auto p = Subprocess::Start({AgentBin(), "--kubeconfig", kubeconfig, "--node", "n", "--oneshot"},
                             dir + "/out", dir + "/err");
  int status = p->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  std::string err;
  for (const auto& l : testing::ReadLines(dir + "/err")) err += l;
  EXPECT_NE(err.find("cannot list pods from http://127.0.0.1:1"), std::string::npos) << err;
  EXPECT_TRUE(testing::ReadLines(dir + "/out").empty());
  testing::RemoveTree(dir);
}

TEST(AgentE2E, ContinuousCreateStatusPatchDeleteWithKubectl) {
  ASSERT_TRUE(KubesimProcess::HaveKubectl());
  KubesimProcessOptions o;
  o.nodes = 2;
  o.pods_per_node = 2;
  o.tls = true;
  // Graceful deletes set deletionTimestamp first, as with a kubelet.
  o.extra_args = {"--pod-deletion-delay-ms", "300"};
  auto sim = StartSim(o);
  ASSERT_NE(sim, nullptr);
  AgentProcess agent(*sim, "node-2");
  int port = agent.HealthPort();
  ASSERT_NE(port, 0) << agent.Stderr();
  ASSERT_TRUE(agent.WaitForEvents(2)) << agent.Stderr();
  ASSERT_TRUE(testing::WaitFor([&] { return Ready(port); }, kWait));
  size_t synced = agent.Events().size();
  ASSERT_EQ(synced, 2u);

  auto run = [&](std::vector<std::string> args) {
    auto r = sim->Kubectl(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  run({"run", "e2e-pod", "-n", "default", "--image=nginx:1.27", "--restart=Never",
       R"(--overrides={"spec":{"nodeName":"node-2"}})"});
  ASSERT_TRUE(agent.WaitForEvents(synced + 1));
  // A metadata-only change bumps the resourceVersion: no event.
  run({"annotate", "pod", "e2e-pod", "-n", "default", "note=nothing-observable"});
  run({"patch", "pod", "e2e-pod", "-n", "default", "--subresource=status", "--type=merge", "-p",
       R"({"status":{"phase":"Running","podIP":"10.244.9.9","podIPs":[{"ip":"10.244.9.9"}]}})"});
  ASSERT_TRUE(agent.WaitForEvents(synced + 2));
  run({"delete", "pod", "e2e-pod", "-n", "default", "--wait=false"});
  ASSERT_TRUE(agent.WaitForEvents(synced + 4));
  ASSERT_TRUE(ConvergesTo(agent, *sim, "node-2"));

  auto events = agent.Events();
  EXPECT_EQ(Describe(events, synced),
            (std::vector<std::string>{"CREATED default/e2e-pod", "UPDATED default/e2e-pod",
                                      "UPDATED default/e2e-pod", "DELETED default/e2e-pod"}));
  EXPECT_EQ(events[synced]["containers"][0]["image"], "nginx:1.27");
  EXPECT_EQ(events[synced + 1]["pod_ip"], "10.244.9.9");
  EXPECT_EQ(events[synced + 1]["phase"], "Running");
  EXPECT_TRUE(events[synced + 1]["deletion_timestamp"].is_null());
  EXPECT_TRUE(events[synced + 2]["deletion_timestamp"].is_string());  // Deletion started.
  EXPECT_EQ(events[synced + 3]["pod_ip"], "10.244.9.9");

  HttpClient health = HealthClient(port);
  auto metrics = health.Do("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("ashiato_agent_events_total{type=\"CREATED\"} 1\n"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("ashiato_agent_events_total{type=\"UPDATED\"} 2\n"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("ashiato_agent_events_total{type=\"SYNC\"} 2\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("ashiato_agent_pods_tracked 2"), std::string::npos);
  EXPECT_EQ(health.Do("GET", "/healthz")->status, 200);

  int status = agent.process().Stop(std::chrono::seconds(10));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ExpectAllRequestsNodeSelected(*sim, "node-2");
}

// An exec credential plugin (as kubectl runs it) supplies the token over HTTPS.
TEST(AgentE2E, OneshotWithExecCredentialPlugin) {
  KubesimProcessOptions o;
  o.nodes = 2;
  o.pods_per_node = 2;
  o.tls = true;
  auto sim = StartSim(o);
  ASSERT_NE(sim, nullptr);
  std::string dir = testing::MakeTempDir("agent-e2e");
  std::ofstream(dir + "/ca.crt") << sim->ca_pem();
  std::ofstream(dir + "/plugin.sh")
      << "#!/bin/sh\necho \"$KUBERNETES_EXEC_INFO\" > \"$(dirname \"$0\")/info\"\n"
      << "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
      << "\"status\":{\"token\":\"'\"$SIM_TOKEN\"'\"}}'\n";
  chmod((dir + "/plugin.sh").c_str(), 0755);
  // Relative paths (CA file, plugin command) resolve against the kubeconfig's directory.
  std::ofstream(dir + "/kubeconfig")
      << "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
      << "clusters: [{name: sim, cluster: {server: '" << sim->server_url()
      << "', certificate-authority: ca.crt}}]\n"
      << "contexts: [{name: sim, context: {cluster: sim, user: plugin}}]\n"
      << "users: [{name: plugin, user: {exec: {apiVersion: client.authentication.k8s.io/v1, "
      << "command: ./plugin.sh, env: [{name: SIM_TOKEN, value: '" << sim->admin_token()
      << "'}]}}}]\n";
  std::string out;
  int rc = testing::RunCommand(
      {AgentBin(), "--kubeconfig", dir + "/kubeconfig", "--node", "node-1", "--oneshot"}, &out);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  std::ifstream info(dir + "/info");
  json exec_info = json::parse(info, nullptr, false);
  EXPECT_EQ(exec_info["kind"], "ExecCredential");
  EXPECT_EQ(exec_info["spec"]["interactive"], false);
  testing::RemoveTree(dir);
}

// 429 with Retry-After: the agent waits at least that long between attempts.
TEST(AgentE2E, HonoursRetryAfterOn429) {
  KubesimProcessOptions o;
  o.nodes = 2;
  o.pods_per_node = 2;
  auto sim = StartSim(o);
  ASSERT_NE(sim, nullptr);
  ASSERT_TRUE(sim->SetFaults({{"error_rate", 1.0},
                              {"error_code", 429},
                              {"retry_after_seconds", 1},
                              {"error_path", "/api/v1/pods"}})
                  .ok());
  AgentProcess agent(*sim, "node-2");
  std::vector<SystemTime> times;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        times.clear();
        auto r = sim->Requests();
        if (!r.ok()) return false;
        for (const auto& q : *r) {
          if (q.value("path", "") == "/api/v1/pods" && q.value("code", 0) == 429) {
            times.push_back(*ParseRfc3339(q["time"].get<std::string>()));
          }
        }
        return times.size() >= 3;
      },
      kWait));
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_GE(times[i] - times[i - 1], std::chrono::milliseconds(950));
  }
  ASSERT_TRUE(sim->SetFaults({{"reset", true}}).ok());
  ASSERT_TRUE(agent.WaitForEvents(2)) << agent.Stderr();
  ASSERT_TRUE(ConvergesTo(agent, *sim, "node-2"));
  EXPECT_EQ(Describe(agent.Events()).size(), 2u);
  ExpectAllRequestsNodeSelected(*sim, "node-2");
}

json PodJson(const std::string& name, const std::string& node) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", name}}}}},
      {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "busybox:1"}}}}}}};
}

void CreatePod(KubesimProcess& sim, const std::string& name, const std::string& node) {
  auto r = sim.KubeRequest("POST", "/api/v1/namespaces/default/pods", PodJson(name, node).dump());
  ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
}

void DeletePod(KubesimProcess& sim, const std::string& ns, const std::string& name) {
  auto r = sim.KubeRequest("DELETE", "/api/v1/namespaces/" + ns + "/pods/" + name);
  ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
}

void PatchIp(KubesimProcess& sim, const std::string& name, const std::string& ip) {
  json patch = {{"status", {{"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
  auto r = sim.KubeRequest("PATCH", "/api/v1/namespaces/default/pods/" + name + "/status",
                           patch.dump(), "application/merge-patch+json");
  ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
}

// Dropped watches, a 410 with changes in the gap, and 500s: the agent ends
// with kubesim's view and prints each change exactly once.
TEST(AgentE2E, SurvivesDroppedWatchExpiryAndServerErrors) {
  KubesimProcessOptions o;
  o.nodes = 2;
  o.pods_per_node = 3;
  auto sim = StartSim(o);
  ASSERT_NE(sim, nullptr);
  AgentProcess agent(*sim, "node-2");
  int port = agent.HealthPort();
  ASSERT_TRUE(agent.WaitForEvents(3)) << agent.Stderr();
  ASSERT_TRUE(testing::WaitFor([&] { return Ready(port); }, kWait));
  std::vector<std::string> initial = Describe(agent.Events());
  std::string victim = initial[0].substr(initial[0].find(' ') + 1);  // "ns/name"
  std::string victim_ns = victim.substr(0, victim.find('/'));
  std::string victim_name = victim.substr(victim.find('/') + 1);

  // 1. A dropped watch: re-watch from the last RV, nothing re-emitted.
  ASSERT_TRUE(sim->SetFaults({{"drop_watches", true}}).ok());
  CreatePod(*sim, "after-drop", "node-2");
  ASSERT_TRUE(agent.WaitForEvents(4));

  // 2. The watch breaks and fails with 500s; meanwhile a pod is deleted, one
  // created, one changed, and history is compacted: re-watch gets 410.
  ASSERT_TRUE(
      sim->SetFaults({{"error_rate", 1.0}, {"error_code", 500}, {"error_path", "/api/v1/pods"}})
          .ok());
  ASSERT_TRUE(sim->SetFaults({{"drop_watches", true}}).ok());
  DeletePod(*sim, victim_ns, victim_name);
  CreatePod(*sim, "in-gap", "node-2");
  CreatePod(*sim, "in-gap-other-node", "node-1");
  PatchIp(*sim, "after-drop", "10.250.0.7");
  ASSERT_TRUE(sim->SetFaults({{"compact", true}}).ok());
  // Let the agent meet a few 500s before the API heals.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = sim->Requests();
        int failed = 0;
        if (r.ok()) {
          for (const auto& q : *r) failed += q.value("code", 0) == 500 ? 1 : 0;
        }
        return failed >= 3;
      },
      kWait));
  ASSERT_TRUE(sim->SetFaults({{"reset", true}}).ok());
  ASSERT_TRUE(agent.WaitForEvents(7)) << agent.Stderr();

  // 3. Flaky API (half the pod reads fail) while pods change.
  ASSERT_TRUE(
      sim->SetFaults({{"error_rate", 0.5}, {"error_code", 503}, {"error_path", "/api/v1/pods"}})
          .ok());
  ASSERT_TRUE(sim->SetFaults({{"drop_watches", true}}).ok());
  CreatePod(*sim, "flaky-1", "node-2");
  PatchIp(*sim, "flaky-1", "10.250.0.8");
  DeletePod(*sim, "default", "in-gap");
  ASSERT_TRUE(sim->SetFaults({{"drop_watches", true}}).ok());
  ASSERT_TRUE(agent.WaitForEvents(10)) << agent.Stderr();
  ASSERT_TRUE(sim->SetFaults({{"reset", true}}).ok());
  ASSERT_TRUE(ConvergesTo(agent, *sim, "node-2")) << agent.Stderr();

  auto events = agent.Events();
  EXPECT_EQ(Describe(events, 3),
            (std::vector<std::string>{
                "CREATED default/after-drop",
                // The relist after 410 reports deletions first, then by namespace/name.
                "DELETED " + victim, "UPDATED default/after-drop", "CREATED default/in-gap",
                "CREATED default/flaky-1", "UPDATED default/flaky-1", "DELETED default/in-gap"}));
  // The gap was bridged by exactly one relist (the 410), not by luck.
  auto metrics = HealthClient(port).Do("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("ashiato_agent_relists_total 1\n"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("ashiato_agent_api_errors_total{code=\"410\"} 1\n"),
            std::string::npos)
      << metrics->body;
  // And that relist was at the last RV seen, which the watch cache answers
  // (NotOlderThan), not a quorum list from etcd (kubesim counts both).
  auto lists = (*sim->Stats())["lists"]["pods"];
  EXPECT_GE(lists["cache"]["by_semantics"].value("not_older_than", 0), 1) << lists.dump();
  EXPECT_EQ(lists["etcd"]["requests"], 0) << lists.dump();
  ExpectAllRequestsNodeSelected(*sim, "node-2");
}

TEST(AgentE2E, SurvivesKubesimRestartWithStateFile) {
  KubesimProcessOptions o;
  o.nodes = 2;
  o.pods_per_node = 2;
  o.persist_state = true;
  auto sim = StartSim(o);
  ASSERT_NE(sim, nullptr);
  AgentProcess agent(*sim, "node-2");
  ASSERT_TRUE(agent.WaitForEvents(2)) << agent.Stderr();
  CreatePod(*sim, "before-restart", "node-2");
  ASSERT_TRUE(agent.WaitForEvents(3));

  ASSERT_EQ(sim->Stop(), 0);
  ASSERT_TRUE(sim->Restart().ok());
  // Changes right after the restart: seen by the watch or by a relist,
  // either way exactly once.
  DeletePod(*sim, "default", "before-restart");
  CreatePod(*sim, "after-restart", "node-2");
  ASSERT_TRUE(agent.WaitForEvents(5)) << agent.Stderr();
  ASSERT_TRUE(ConvergesTo(agent, *sim, "node-2")) << agent.Stderr();
  auto events = agent.Events();
  EXPECT_EQ(Describe(events, 2), (std::vector<std::string>{"CREATED default/before-restart",
                                                           "DELETED default/before-restart",
                                                           "CREATED default/after-restart"}));
  int status = agent.process().Stop(std::chrono::seconds(10));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ExpectAllRequestsNodeSelected(*sim, "node-2");
}

}  // namespace
}  // namespace ashiato
