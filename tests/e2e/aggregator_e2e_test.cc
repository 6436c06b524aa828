// End to end, real processes over loopback: kubesim + ashiato-aggregator
// (TokenReview auth) + 3 ashiato-agents pushing with tokens from `kubectl
// create token`. Pods are changed with the real kubectl. Delivery and
// recovery; who may push and read is security_e2e_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/http_client.h"
#include "common/report.h"
#include "common/time_util.h"
#include "tests/kubesim/kubesim_process.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/tcp_proxy.h"

namespace ashiato {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::KubesimProcess;
using testing::Subprocess;
constexpr auto Bin = testing::BinFromEnv;

// What a user can observe of a pod; equal across kubesim and the aggregator.
std::string Observable(const json& log_or_pod) {
  json j = log_or_pod;
  for (const char* k :
       {"timestamp", "aggregated_at", "observed_by", "resource_version", "event", "last_change",
        "stale", "deleted", "id", "cluster", "node_addresses", "node_zone", "node_region"}) {
    j.erase(k);
  }
  return j.dump();
}

class AggregatorE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KubesimProcess::HaveKubectl()) GTEST_SKIP() << "kubectl not on PATH";
    auto sim = KubesimProcess::Start(
        {.nodes = 3, .pods_per_node = 2, .extra_args = {"--bookmark-interval-ms", "200"}});
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim.value());
    dir_ = testing::MakeTempDir("ashiato-agg-e2e");
    ASSERT_EQ(Kubectl({"create", "serviceaccount", "ashiato-agent", "-n", "ashiato"}).exit_code, 0);
    token_file_ = dir_ + "/agent-token";
    std::string token = Token("ashiato-agent");
    ASSERT_FALSE(token.empty());
    std::ofstream(token_file_) << token;
    // The agents' one address, as a Service would be: each aggregator
    // incarnation binds port 0 and the front door forwards to it.
    front_ = std::make_unique<testing::TcpProxy>();
    ASSERT_TRUE(front_->Start());
    url_ = "http://127.0.0.1:" + std::to_string(front_->port());
    StartAggregator();
    for (int i = 1; i <= 3; ++i) StartAgent(i);
  }

  void TearDown() override {
    for (auto& a : agents_) {
      if (a) a->Stop(5000ms);
    }
    if (agg_) {
      EXPECT_EQ(StopAggregator(), 0);
    }
    if (!dir_.empty() && !HasFailure()) testing::RemoveTree(dir_);
    if (HasFailure()) std::fprintf(stderr, "e2e files kept in %s\n", dir_.c_str());
  }

  testing::CommandResult Kubectl(const std::vector<std::string>& args) {
    auto r = sim_->Kubectl(args);
    if (r.exit_code != 0) std::fprintf(stderr, "kubectl failed: %s\n", r.err.c_str());
    return r;
  }

  std::string Token(const std::string& sa) {
    auto r = Kubectl({"create", "token", sa, "-n", "ashiato", "--audience", "ashiato"});
    std::string t = r.out;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    return t;
  }

  // The aggregator keeps its store in dir_/data and writes the hourly
  // ConfigMaps to "default" after `cm_debounce` (long by default: a kill
  // lands inside the debounce window, before anything was written).
  void StartAggregator(const std::string& cm_debounce = "10m") {
    const std::string err = dir_ + "/aggregator.err";
    const uint64_t from = testing::FileSize(err);
    agg_ = Subprocess::Start(
        {Bin("ASHIATO_AGGREGATOR_BIN", AGGREGATOR_BIN), "--listen", "127.0.0.1:0", "--kubeconfig",
         sim_->kubeconfig_path(), "--auth", "tokenreview", "--data-dir", dir_ + "/data",
         "--store-in-cm", "--cm-namespace", "default", "--cm-debounce", cm_debounce, "--log-level",
         "debug", "--image-log", "both",
         // Delivery and recovery here; who may push and read: security_e2e_test.cc.
         "--read-auth", "none", "--allow-unbound-agent-tokens"},
        dir_ + "/aggregator.out", err);
    ASSERT_TRUE(agg_ != nullptr);
    uint16_t port = testing::WaitForReportedPort(err, from, "serving on port ", 20000ms);
    ASSERT_NE(port, 0) << "aggregator reported no port; see " << err;
    front_->SetTarget(port);
    HttpClient c({.base_url = url_});
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          auto r = c.Do("GET", "/readyz");
          return r.ok() && r->status == 200;
        },
        20000ms))
        << "aggregator did not come up; see " << dir_ << "/aggregator.err";
  }
  int StopAggregator() {
    int st = agg_->Stop(10000ms);
    agg_.reset();
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  void StartAgent(int i) {
    if (agents_.size() < static_cast<size_t>(i)) agents_.resize(i);
    std::string node = "node-" + std::to_string(i);
    agents_[i - 1] = Subprocess::Start(
        {Bin("ASHIATO_AGENT_BIN", AGENT_BIN), "--kubeconfig", sim_->kubeconfig_path(), "--node",
         node, "--aggregator", url_, "--allow-insecure-aggregator", "--aggregator-token-file",
         token_file_, "--batch-delay", "50ms", "--interval", "1h"},
        dir_ + "/agent-" + node + ".out", dir_ + "/agent-" + node + ".err");
    ASSERT_TRUE(agents_[i - 1] != nullptr);
  }

  json Get(const std::string& path) {
    HttpClient c({.base_url = url_});
    auto r = c.Do("GET", path);
    if (!r.ok() || r->status != 200) return json();
    return json::parse(r->body, nullptr, false);
  }

  // uid -> observable state, from kubesim through the agent's own mapping
  // (PodRecordFromPodJson), and from the aggregator.
  std::map<std::string, std::string> SimView() {
    std::map<std::string, std::string> out;
    auto pods = sim_->KubeJson("GET", "/api/v1/pods");
    if (!pods.ok()) return out;
    for (const auto& p : (*pods)["items"]) {
      PodRecord r = PodRecordFromPodJson(p);
      if (r.node_name.empty()) continue;  // Unscheduled: no agent sees it.
      out[r.uid] = Observable(PodRecordToLogJson(r));
    }
    return out;
  }
  std::map<std::string, std::string> AggView() {
    std::map<std::string, std::string> out;
    json j = Get("/v1/pods");
    if (!j.is_object()) return out;
    for (const auto& p : j["pods"]) out[p["uid"].get<std::string>()] = Observable(p);
    return out;
  }
  void ExpectConverged() {
    for (const auto& l : testing::ReadLines(dir_ + "/agent-node-1.err")) {
      ASSERT_EQ(l.find("has no pusher"), std::string::npos)
          << "ashiato-agent was built without the pusher wired in agent/main.cc";
    }
    bool ok = testing::WaitFor([&] { return SimView() == AggView(); }, 30000ms);
    EXPECT_TRUE(ok) << "aggregator view differs from kubesim:\nsim " << json(SimView()).dump()
                    << "\nagg " << json(AggView()).dump();
    // The unified log is written from the store by its own thread, a moment
    // after the commit that the API already shows: wait until it is quiet.
    size_t last = LogLines().size();
    int quiet = 0;
    testing::WaitFor(
        [&] {
          size_t now = LogLines().size();
          quiet = now == last ? quiet + 1 : 0;
          last = now;
          return quiet >= 5;
        },
        10000ms);
  }

  std::vector<json> LogLines() {
    std::vector<json> out;
    for (const auto& l : testing::ReadLines(dir_ + "/aggregator.out")) {
      json j = json::parse(l, nullptr, false);
      if (j.is_object()) out.push_back(j);
    }
    return out;
  }
  // A duplicate: a line for a uid that repeats the state of the previous
  // line for that uid, a second CREATED/SYNC or a second DELETED.
  void ExpectNoDuplicates() {
    std::map<std::string, std::vector<json>> by_uid;
    for (const auto& j : LogLines()) {
      // Images entering and leaving: ImagesEnterAndLeaveOnceAcrossRestarts.
      if (j["event"].get<std::string>().rfind("IMAGE_", 0) == 0) continue;
      by_uid[j["uid"]].push_back(j);
    }
    for (const auto& [uid, lines] : by_uid) {
      int created = 0, deleted = 0;
      for (size_t i = 0; i < lines.size(); ++i) {
        std::string ev = lines[i]["event"];
        created += (ev == "CREATED" || ev == "SYNC");
        deleted += ev == "DELETED";
        if (i > 0 && ev != "DELETED") {
          EXPECT_NE(Observable(lines[i]), Observable(lines[i - 1]))
              << "duplicate line for " << uid << ": " << lines[i].dump();
        }
      }
      EXPECT_LE(created, 1) << uid;
      EXPECT_LE(deleted, 1) << uid;
    }
  }
  int CountEvents(const std::string& name, const std::string& event) {
    int n = 0;
    for (const auto& j : LogLines()) n += j["pod_name"] == name && j["event"] == event;
    return n;
  }

  void CreatePod(const std::string& name, const std::string& node) {
    std::string path = dir_ + "/" + name + ".json";
    json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"e2e", "1"}}}}},
        {"spec",
         {{"nodeName", node}, {"containers", {{{"name", "app"}, {"image", "nginx:1.27"}}}}}}};
    std::ofstream(path) << pod.dump();
    ASSERT_EQ(Kubectl({"create", "-f", path}).exit_code, 0);
  }
  void SetPodIp(const std::string& name, const std::string& ip) {
    json patch = {{"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
    ASSERT_EQ(Kubectl({"patch", "pod", name, "-n", "default", "--subresource=status",
                       "--type=merge", "-p", patch.dump()})
                  .exit_code,
              0);
  }
  // What the kubelet reports once the container runs: the image's digest.
  void SetRunningImage(const std::string& name, const std::string& image,
                       const std::string& image_id) {
    json patch = {{"status",
                   {{"phase", "Running"},
                    {"containerStatuses",
                     {{{"name", "app"},
                       {"image", image},
                       {"imageID", image_id},
                       {"ready", true},
                       {"restartCount", 0},
                       {"state", {{"running", {{"startedAt", "2026-12-03T00:00:00Z"}}}}}}}}}}};
    ASSERT_EQ(Kubectl({"patch", "pod", name, "-n", "default", "--subresource=status",
                       "--type=merge", "-p", patch.dump()})
                  .exit_code,
              0);
  }
  int CountImageEvents(const std::string& event, const std::string& digest) {
    int n = 0;
    for (const auto& j : LogLines()) n += j["event"] == event && j.value("digest", "") == digest;
    return n;
  }
  void DeletePod(const std::string& name) {
    ASSERT_EQ(Kubectl({"delete", "pod", name, "-n", "default", "--wait=false"}).exit_code, 0);
  }

  std::unique_ptr<KubesimProcess> sim_;
  std::string dir_, token_file_, url_;
  std::unique_ptr<testing::TcpProxy> front_;
  std::unique_ptr<Subprocess> agg_;
  std::vector<std::unique_ptr<Subprocess>> agents_;
};

TEST_F(AggregatorE2E, KubectlChangesAppearExactlyOnce) {
  ExpectConverged();
  CreatePod("e2e-a", "node-1");
  CreatePod("e2e-b", "node-2");
  CreatePod("e2e-c", "node-3");
  ExpectConverged();
  SetPodIp("e2e-a", "10.9.0.1");
  ASSERT_EQ(Kubectl({"label", "pod", "e2e-b", "-n", "default", "tier=web"}).exit_code, 0);
  DeletePod("e2e-c");
  ExpectConverged();
  EXPECT_EQ(CountEvents("e2e-a", "CREATED"), 1);
  EXPECT_EQ(CountEvents("e2e-a", "UPDATED"), 1);
  EXPECT_EQ(CountEvents("e2e-b", "CREATED"), 1);
  EXPECT_EQ(CountEvents("e2e-b", "UPDATED"), 1);
  EXPECT_EQ(CountEvents("e2e-c", "CREATED"), 1);
  EXPECT_EQ(CountEvents("e2e-c", "DELETED"), 1);
  json a = Get("/v1/pods?selector=e2e%3D1");
  EXPECT_EQ(a["count"], 2);
  json nodes = Get("/v1/nodes");
  EXPECT_EQ(nodes["count"], 3);
  for (const auto& n : nodes["nodes"]) EXPECT_FALSE(n["stale"].get<bool>());
  ExpectNoDuplicates();
}

TEST_F(AggregatorE2E, AgentAndAggregatorRestartsLoseNothingAndDuplicateNothing) {
  ExpectConverged();
  CreatePod("r-1", "node-2");
  ExpectConverged();
  // Agent of node-2 killed; its node changes meanwhile.
  agents_[1]->Kill();
  CreatePod("r-2", "node-2");
  DeletePod("r-1");
  StartAgent(2);
  ExpectConverged();
  EXPECT_EQ(CountEvents("r-1", "DELETED"), 1);
  // Aggregator killed (no clean shutdown) while pods change.
  agg_->Kill();
  agg_.reset();
  CreatePod("r-3", "node-1");
  SetPodIp("r-2", "10.9.0.2");
  DeletePod("r-2");
  CreatePod("r-4", "node-3");
  StartAggregator();
  ExpectConverged();
  // And once more with a clean SIGTERM.
  EXPECT_EQ(StopAggregator(), 0);
  CreatePod("r-5", "node-3");
  StartAggregator();
  ExpectConverged();
  for (const char* p : {"r-3", "r-4", "r-5"}) {
    EXPECT_EQ(CountEvents(p, "CREATED") + CountEvents(p, "SYNC"), 1) << p;
  }
  EXPECT_EQ(CountEvents("r-2", "DELETED"), 1);
  ExpectNoDuplicates();
}

TEST_F(AggregatorE2E, ImagesEnterAndLeaveOnceAcrossRestarts) {
  ExpectConverged();
  // CreatePod's spec image, pulled as a digest no other pod here uses.
  const std::string image = "nginx:1.27", id = "docker.io/library/nginx@sha256:e2e1";
  CreatePod("img-a", "node-1");
  CreatePod("img-b", "node-2");
  SetRunningImage("img-a", image, id);
  SetRunningImage("img-b", image, id);
  ExpectConverged();
  EXPECT_EQ(CountImageEvents("IMAGE_ADDED", "sha256:e2e1"), 1);
  // kill -9 and a restart: the census comes back from the store, silently.
  agg_->Kill();
  agg_.reset();
  StartAggregator();
  ExpectConverged();
  DeletePod("img-a");
  ExpectConverged();
  EXPECT_EQ(CountImageEvents("IMAGE_REMOVED", "sha256:e2e1"), 0);
  // The last pod goes while the aggregator is down: one IMAGE_REMOVED after.
  EXPECT_EQ(StopAggregator(), 0);
  DeletePod("img-b");
  StartAggregator();
  ExpectConverged();
  EXPECT_EQ(CountImageEvents("IMAGE_ADDED", "sha256:e2e1"), 1);
  EXPECT_EQ(CountImageEvents("IMAGE_REMOVED", "sha256:e2e1"), 1);
  for (const auto& j : LogLines()) {
    if (j["event"] == "IMAGE_REMOVED" && j["digest"] == "sha256:e2e1") {
      EXPECT_EQ(j["image"], image);
      EXPECT_EQ(j["pod_name"], "img-b");
      EXPECT_EQ(j["pods"], 0);
    }
  }
  // Which nodes ran it: both, by digest, inside the window.
  json usage = Get("/v1/images/sha256:e2e1?since=2026-01-01T00:00:00Z");
  EXPECT_EQ(usage["nodes"], json({"node-1", "node-2"})) << usage.dump();
  // The same events as cluster-image-logger's text lines (--image-log both).
  int text = 0;
  for (const auto& l : testing::ReadLines(dir_ + "/aggregator.err")) {
    // Added by whichever agent reported first; removed with img-b, the last.
    text += l.rfind("[+|image]  nginx:1.27  [default|img-", 0) == 0;
    text += l == "[-|image]  nginx:1.27  [default|img-b]";
  }
  EXPECT_EQ(text, 2);
}

// Every key of this hour's (and the previous hour's) pod-ashiato ConfigMaps.
std::set<std::string> HourlyKeys(KubesimProcess& sim) {
  std::set<std::string> keys;
  auto list =
      sim.KubeJson("GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%3Dpod-ashiato");
  if (!list.ok()) return keys;
  for (const auto& cm : (*list)["items"]) {
    if (!cm.contains("data")) continue;
    for (const auto& [k, v] : cm["data"].items()) keys.insert(k);
  }
  return keys;
}

// A rollback to a release that refuses schema 5 (docs/storage.md): the
// store is taken back beside the serving aggregator, which keeps working;
// the next start migrates it up again, and the history from before is all
// there.
TEST_F(AggregatorE2E, StoreTakenBackForARollbackKeepsServingAndHistory) {
  ExpectConverged();
  CreatePod("rb-gone", "node-1");
  ExpectConverged();
  DeletePod("rb-gone");
  ExpectConverged();
  auto text = [](const std::string& path) {
    std::string all;
    for (const auto& l : testing::ReadLines(path)) all += l + "\n";
    return all;
  };
  auto downgrade = [&](const std::string& version, const std::string& log) {
    auto p = Subprocess::Start({Bin("ASHIATO_AGGREGATOR_BIN", AGGREGATOR_BIN), "--data-dir",
                                dir_ + "/data", "--store-downgrade-to", version},
                               dir_ + "/" + log + ".out", dir_ + "/" + log + ".err");
    int st = p ? p->Wait(30000ms) : -1;
    return std::make_pair(WIFEXITED(st) ? WEXITSTATUS(st) : -1, text(dir_ + "/" + log + ".err"));
  };
  auto [code, err] = downgrade("4", "downgrade-4");
  EXPECT_EQ(code, 0) << err;
  EXPECT_NE(err.find("schema downgraded from version 5 to 4"), std::string::npos) << err;
  auto [refused, why] = downgrade("3", "downgrade-3");
  EXPECT_EQ(refused, 3) << why;
  EXPECT_NE(why.find("version 4 cannot be taken back to 3 without losing data"), std::string::npos)
      << why;

  CreatePod("rb-during", "node-2");  // The serving aggregator still commits.
  ExpectConverged();
  ASSERT_EQ(StopAggregator(), 0);
  const uint64_t from = testing::FileSize(dir_ + "/aggregator.err");
  StartAggregator();
  ExpectConverged();
  std::string restarted = text(dir_ + "/aggregator.err");
  EXPECT_NE(restarted.find("schema migrated from version 4 to 5", from), std::string::npos)
      << restarted.substr(from);
  json history = Get("/v1/history?namespace=default&name=rb-gone&event=CREATED,DELETED");
  std::vector<std::string> events;
  for (const auto& e : history["events"]) events.push_back(e["event"].get<std::string>());
  EXPECT_EQ(events, (std::vector<std::string>{"CREATED", "DELETED"}));
  ExpectNoDuplicates();
}

TEST_F(AggregatorE2E, WipedAggregatorRecoversEverythingWithin15s) {
  ExpectConverged();
  CreatePod("w-gone", "node-1");
  SetPodIp("w-gone", "10.66.0.1");
  ExpectConverged();
  SystemTime during = std::chrono::system_clock::now();
  std::this_thread::sleep_for(20ms);  // Distinct instants on either side, not a wait.
  CreatePod("w-new", "node-2");
  DeletePod("w-gone");
  ExpectConverged();
  ASSERT_TRUE(HourlyKeys(*sim_).empty()) << "the debounced write must not have happened yet";
  // kill -9 inside the debounce window, and the volume is gone (an emptyDir
  // on another node).
  agg_->Kill();
  agg_.reset();
  testing::RemoveTree(dir_ + "/data");
  auto t0 = std::chrono::steady_clock::now();
  StartAggregator("1s");
  bool converged = testing::WaitFor([&] { return SimView() == AggView(); }, 15000ms);
  auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::fprintf(stderr, "wiped aggregator had every node's state after %lld ms\n",
               static_cast<long long>(took.count()));
  EXPECT_TRUE(converged) << "not within 15 s:\nsim " << json(SimView()).dump() << "\nagg "
                         << json(AggView()).dump();
  // The hour's ConfigMaps: every pod that ran this hour, the deleted one too.
  std::set<std::string> want;
  auto pods = sim_->KubeJson("GET", "/api/v1/pods");
  ASSERT_TRUE(pods.ok());
  for (const auto& p : (*pods)["items"]) {
    want.insert(p["metadata"]["namespace"].get<std::string>() + "_" +
                p["metadata"]["name"].get<std::string>());
  }
  want.insert("default_w-gone");
  bool written = testing::WaitFor(
      [&] {
        auto keys = HourlyKeys(*sim_);
        return std::includes(keys.begin(), keys.end(), want.begin(), want.end());
      },
      15000ms);
  EXPECT_TRUE(written) << "ConfigMap keys " << json(HourlyKeys(*sim_)).dump() << "\nwant "
                       << json(want).dump();
  // The past before the kill is answered by the new store.
  json ip = Get("/v1/ips/10.66.0.1?at=" + UrlEncode(FormatRfc3339Micros(during)));
  ASSERT_TRUE(ip.is_object());
  ASSERT_EQ(ip["holders"].size(), 1u) << ip.dump();
  EXPECT_EQ(ip["holders"][0]["pod_name"], "w-gone");
  // Both processes' unified logs together: nothing twice.
  ExpectNoDuplicates();
  EXPECT_EQ(CountEvents("w-gone", "DELETED"), 1);
  EXPECT_EQ(CountEvents("w-new", "CREATED"), 1);
}

TEST_F(AggregatorE2E, KeptStoreServesThePastAndLogsNothingAgain) {
  ExpectConverged();
  CreatePod("k-a", "node-3");
  SetPodIp("k-a", "10.66.0.2");
  ExpectConverged();
  SystemTime during = std::chrono::system_clock::now();
  std::this_thread::sleep_for(20ms);
  DeletePod("k-a");
  ExpectConverged();
  ASSERT_TRUE(testing::WaitFor([&] { return CountEvents("k-a", "DELETED") == 1; }, 10000ms));
  size_t lines = LogLines().size();
  agg_->Kill();
  agg_.reset();
  StartAggregator();
  ExpectConverged();
  json ip = Get("/v1/ips/10.66.0.2?at=" + UrlEncode(FormatRfc3339Micros(during)));
  ASSERT_TRUE(ip.is_object());
  ASSERT_EQ(ip["holders"].size(), 1u) << ip.dump();
  json history = Get("/v1/pods/default/k-a");
  ASSERT_TRUE(history.is_object());
  EXPECT_EQ(history["uids"][0]["history"].size(), 3u)
      << history.dump();  // CREATED, UPDATED, DELETED.
  // Agents re-sent their snapshots: nothing new to log.
  EXPECT_EQ(LogLines().size(), lines);
  ExpectNoDuplicates();
}

TEST_F(AggregatorE2E, OtherIdentityRefused) {
  ExpectConverged();
  ASSERT_EQ(Kubectl({"create", "serviceaccount", "intruder", "-n", "ashiato"}).exit_code, 0);
  std::string bad = Token("intruder");
  ASSERT_FALSE(bad.empty());
  Report r;
  r.node = "node-1";
  r.epoch = "intruder";
  r.seq = 1;
  r.snapshot = true;  // Would wipe node-1's pods if accepted.
  HttpClient c({.base_url = url_});
  auto before = AggView();
  auto resp = c.Do("POST", "/v1/reports", EncodeReport(r),
                   {{"Authorization", "Bearer " + bad}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 403) << resp->body;
  resp = c.Do("POST", "/v1/reports", EncodeReport(r),
              {{"Authorization", "Bearer not-a-token"}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 401) << resp->body;
  resp = c.Do("POST", "/v1/reports", EncodeReport(r), {{"Content-Type", "application/json"}});
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 401);
  EXPECT_EQ(AggView(), before);
  // A real agent with the intruder's token gets nothing in.
  std::string bad_file = dir_ + "/intruder-token";
  std::ofstream(bad_file) << bad;
  auto intruder = Subprocess::Start(
      {Bin("ASHIATO_AGENT_BIN", AGENT_BIN), "--kubeconfig", sim_->kubeconfig_path(), "--node",
       "node-1", "--aggregator", url_, "--allow-insecure-aggregator", "--aggregator-token-file",
       bad_file, "--batch-delay", "50ms"},
      dir_ + "/intruder.out", dir_ + "/intruder.err");
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& l : testing::ReadLines(dir_ + "/intruder.err")) {
          if (l.find("HTTP 403") != std::string::npos) return true;
        }
        return false;
      },
      20000ms));
  intruder->Stop(3000ms);
  EXPECT_EQ(AggView(), before);
}

TEST_F(AggregatorE2E, IpAtTimeAcrossReuse) {
  CreatePod("ip-a", "node-1");
  SetPodIp("ip-a", "10.77.0.9");
  ExpectConverged();
  SystemTime during_a = std::chrono::system_clock::now();
  std::this_thread::sleep_for(20ms);  // Distinct instants on either side, not a wait.
  DeletePod("ip-a");
  ExpectConverged();
  CreatePod("ip-b", "node-2");
  SetPodIp("ip-b", "10.77.0.9");
  ExpectConverged();
  SystemTime during_b = std::chrono::system_clock::now();
  auto holder = [&](SystemTime t) -> std::string {
    json j = Get("/v1/ips/10.77.0.9?at=" + UrlEncode(FormatRfc3339Micros(t)));
    if (!j.is_object() || j["holders"].size() != 1) return "?" + j.dump();
    return j["holders"][0]["pod_name"];
  };
  EXPECT_EQ(holder(during_a), "ip-a");
  EXPECT_EQ(holder(during_b), "ip-b");
  EXPECT_EQ(Get("/v1/ips/10.77.0.9")["holders"][0]["pod_name"], "ip-b");
  ExpectNoDuplicates();
}

}  // namespace
}  // namespace ashiato
