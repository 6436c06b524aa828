// The hourly ConfigMap writer against a real kubesim process through the
// production ConfigMapApi (KubeClient), checked with the real kubectl.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>

#include "aggregator/cm_api.h"
#include "aggregator/cm_key.h"
#include "aggregator/cm_writer.h"
#include "common/kube_client.h"
#include "tests/kubesim/kubesim_process.h"

namespace ashiato {
namespace {

using json = nlohmann::json;
using std::chrono::minutes;
using testing::KubesimProcess;

class FakeClock : public Clock {
 public:
  explicit FakeClock(SystemTime t) : now_(t.time_since_epoch().count()) {}
  SystemTime Now() const override { return SystemTime(SystemTime::duration(now_.load())); }
  void Set(SystemTime t) { now_ = t.time_since_epoch().count(); }

 private:
  std::atomic<SystemTime::duration::rep> now_;
};

// Runs `before_update` once before the first update that passes through.
class HookedApi : public ConfigMapApi {
 public:
  HookedApi(std::unique_ptr<ConfigMapApi> inner, std::function<void(const std::string&)> hook)
      : inner_(std::move(inner)), hook_(std::move(hook)) {}
  Result<json> Get(const std::string& ns, const std::string& n) override {
    return inner_->Get(ns, n);
  }
  Result<json> List(const std::string& ns, const std::string& s) override {
    return inner_->List(ns, s);
  }
  Result<json> Create(const std::string& ns, const json& cm) override {
    return inner_->Create(ns, cm);
  }
  Result<json> Update(const std::string& ns, const json& cm) override {
    if (hook_) {
      auto h = std::move(hook_);
      hook_ = nullptr;
      h(cm["metadata"]["name"]);
    }
    return inner_->Update(ns, cm);
  }
  Status Delete(const std::string& ns, const std::string& n) override {
    return inner_->Delete(ns, n);
  }

 private:
  std::unique_ptr<ConfigMapApi> inner_;
  std::function<void(const std::string&)> hook_;
};

constexpr char kNs[] = "ashiato-cm";
const SystemTime kT0 = *ParseRfc3339("2026-11-24T03:10:00Z");

class CmKubesimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KubesimProcess::HaveKubectl()) GTEST_SKIP() << "kubectl not on PATH";
    auto sim = KubesimProcess::Start({.nodes = 3, .pods_per_node = 4});
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    // (`kubectl create namespace` sends protobuf, which kubesim does not take.)
    auto r = sim_->KubeJson(
        "POST", "/api/v1/namespaces",
        json({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}}).dump());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  std::unique_ptr<ConfigMapApi> Api() {
    auto config = LoadKubeConfigFile(sim_->kubeconfig_path());
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    return NewKubeConfigMapApi(std::make_unique<KubeClient>(*config));
  }

  std::unique_ptr<HourlyConfigMapWriter> Writer(std::unique_ptr<ConfigMapApi> api,
                                                size_t shard_max_bytes = 900 * 1024) {
    ConfigMapWriterOptions o;
    o.namespace_ = kNs;
    o.debounce = std::chrono::hours(1);  // Tests flush explicitly.
    o.shard_max_bytes = shard_max_bytes;
    return std::make_unique<HourlyConfigMapWriter>(o, std::move(api), &clock_);
  }

  // `kubectl get cm -l app=pod-ashiato -n NS -o json`, as hour label -> union of data.
  std::map<std::string, std::map<std::string, std::string>> KubectlHours(int* items = nullptr) {
    auto r = sim_->Kubectl({"get", "cm", "-l", "app=pod-ashiato", "-n", kNs, "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::map<std::string, std::string>> out;
    json list = json::parse(r.out);
    if (items) *items = static_cast<int>(list["items"].size());
    for (auto& cm : list["items"]) {
      EXPECT_EQ(cm["metadata"]["labels"]["type"], "pod-node-mapping");
      std::string hour = cm["metadata"]["labels"]["ashiato.io/hour"];
      for (auto& [k, v] : cm["data"].items()) {
        EXPECT_FALSE(out[hour].count(k)) << k << " in two shards";
        out[hour][k] = v;
      }
    }
    return out;
  }

  // The pods kubesim runs, fed to the writer as the aggregator would.
  std::map<std::string, std::string> FeedPods(HourlyConfigMapWriter& w) {
    auto pods = sim_->KubeJson("GET", "/api/v1/pods");
    EXPECT_TRUE(pods.ok());
    std::map<std::string, std::string> want;
    std::set<std::string> nodes;
    for (auto& p : (*pods)["items"]) {
      std::string ns = p["metadata"]["namespace"], name = p["metadata"]["name"];
      std::string node = p["spec"].value("nodeName", "");
      if (node.empty()) continue;
      w.PodSeen(ns, name, node, clock_.Now());
      want[MakePodKey(ns, name).key] = node;
      nodes.insert(node);
    }
    EXPECT_EQ(nodes.size(), 3u);
    return want;
  }

  FakeClock clock_{kT0};
  std::unique_ptr<KubesimProcess> sim_;
};

TEST_F(CmKubesimTest, HourRestartAndBoundary) {
  std::map<std::string, std::string> want;
  {
    auto w = Writer(Api());
    ASSERT_TRUE(w->Start().ok());
    want = FeedPods(*w);
    ASSERT_EQ(want.size(), 12u);
    ASSERT_TRUE(w->FlushNow().ok());
    auto hours = KubectlHours();
    ASSERT_EQ(hours.size(), 1u);
    EXPECT_EQ(hours["2026112403"], want);
    w->Stop();
  }
  // A restarted writer keeps what the first wrote and adds to it. (The
  // aggregator re-feeds the pods it knows, from its state and the agents'
  // snapshots, so the live set is whole again.)
  auto w = Writer(Api());
  ASSERT_TRUE(w->Start().ok());
  FeedPods(*w);
  w->PodSeen("default", "late-pod", "node-late", kT0 + minutes(30));
  ASSERT_TRUE(w->FlushNow().ok());
  want["default_late-pod"] = "node-late";
  EXPECT_EQ(KubectlHours()["2026112403"], want);

  // Next hour: a new ConfigMap with the pods still running.
  w->PodGone("default", "late-pod", "node-late", kT0 + minutes(40));
  clock_.Set(*ParseRfc3339("2026-11-24T04:00:02Z"));
  ASSERT_TRUE(w->FlushNow().ok());
  auto hours = KubectlHours();
  want.erase("default_late-pod");
  EXPECT_EQ(hours["2026112404"], want);
  EXPECT_EQ(hours["2026112403"].size(), want.size() + 1);
  auto cm = sim_->Kubectl({"get", "cm", "pod-ashiato-2026112404", "-n", kNs, "-o",
                           "jsonpath={.metadata.annotations.ashiato\\.io/hour-start}"});
  EXPECT_EQ(cm.out, "2026-11-24T04:00:00Z") << cm.err;
}

TEST_F(CmKubesimTest, ConcurrentWriterGets409AndLosesNothing) {
  auto w = Writer(std::make_unique<HookedApi>(Api(), nullptr));
  ASSERT_TRUE(w->Start().ok());
  w->PodSeen("default", "a", "node-a", kT0);
  ASSERT_TRUE(w->FlushNow().ok());

  // Another writer (kubectl) changes the object between our read and write.
  auto w2 = Writer(std::make_unique<HookedApi>(Api(), [&](const std::string& name) {
    auto r = sim_->Kubectl({"patch", "cm", name, "-n", kNs, "--type", "merge", "-p",
                            R"({"data":{"other_pod":"node-x","default_a":"node-z"}})"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }));
  ASSERT_TRUE(w2->Start().ok());
  w2->PodSeen("default", "b", "node-b", kT0);
  ASSERT_TRUE(w2->FlushNow().ok());
  EXPECT_GE(w2->stats().conflicts, 1u);
  EXPECT_EQ(KubectlHours()["2026112403"],
            (std::map<std::string, std::string>{
                {"default_a", "node-a,node-z"}, {"default_b", "node-b"}, {"other_pod", "node-x"}}));
  // The first writer's next write conflicts too, and merges.
  w->PodSeen("default", "a", "node-c", kT0);
  ASSERT_TRUE(w->FlushNow().ok());
  EXPECT_GE(w->stats().conflicts, 1u);
  EXPECT_EQ(KubectlHours()["2026112403"],
            (std::map<std::string, std::string>{{"default_a", "node-c,node-a,node-z"},
                                                {"default_b", "node-b"},
                                                {"other_pod", "node-x"}}));
}

TEST_F(CmKubesimTest, ShardsAndRetention) {
  // An expired hour and one within retention, as kubectl would create them.
  std::string path = sim_->dir() + "/old.json";
  {
    std::ofstream out(path);
    out << json({{"apiVersion", "v1"},
                 {"kind", "List"},
                 {"items",
                  {{{"apiVersion", "v1"},
                    {"kind", "ConfigMap"},
                    {"metadata",
                     {{"name", "pod-ashiato-2026110100"},
                      {"labels",
                       {{"app", "pod-ashiato"},
                        {"type", "pod-node-mapping"},
                        {"ashiato.io/hour", "2026110100"}}}}},
                    {"data", {{"x_y", "n"}}}},
                   {{"apiVersion", "v1"},
                    {"kind", "ConfigMap"},
                    {"metadata",
                     {{"name", "pod-ashiato-2026112300"},
                      {"labels",
                       {{"app", "pod-ashiato"},
                        {"type", "pod-node-mapping"},
                        {"ashiato.io/hour", "2026112300"}}}}},
                    {"data", {{"x_y", "n"}}}}}}})
               .dump();
  }
  // (kubesim serves no OpenAPI schema to validate against.)
  auto r = sim_->Kubectl({"apply", "--validate=false", "-n", kNs, "-f", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto w = Writer(Api(), 16 * 1024);  // Small shards: a few hundred pods need several.
  ASSERT_TRUE(w->Start().ok());
  EXPECT_EQ(w->stats().deletes, 1u);
  std::map<std::string, std::string> want;
  for (int i = 0; i < 2000; ++i) {
    std::string name = "pod-" + std::to_string(i);
    w->PodSeen("ns-" + std::to_string(i % 7), name, "node-" + std::to_string(i % 3), kT0);
    want["ns-" + std::to_string(i % 7) + "_" + name] = "node-" + std::to_string(i % 3);
  }
  ASSERT_TRUE(w->FlushNow().ok());
  int items = 0;
  auto hours = KubectlHours(&items);
  EXPECT_EQ(hours.count("2026110100"), 0u);
  EXPECT_EQ(hours.count("2026112300"), 1u);
  EXPECT_EQ(hours["2026112403"], want);
  EXPECT_GE(items, 5);
  EXPECT_EQ(w->stats().shards, items - 1);
  auto names = sim_->Kubectl({"get", "cm", "-n", kNs, "-l", "ashiato.io/hour=2026112403", "-o",
                              "jsonpath={.items[*].metadata.name}"});
  EXPECT_NE(names.out.find("pod-ashiato-2026112403-1"), std::string::npos) << names.out;
}

TEST_F(CmKubesimTest, RestartBackfillsRetainedHoursWithinTheByteBudget) {
  const HourIndex now = HourOf(kT0);
  auto entries = [](HourIndex h) {
    std::vector<BackfillEntry> e;
    for (int i = 0; i < 60; ++i) {
      e.push_back({"ns-" + std::to_string(i % 3),
                   "pod-" + std::to_string(h) + "-" + std::to_string(i),
                   "node-" + std::to_string(i % 3)});
    }
    return e;
  };
  ConfigMapWriterOptions o;
  o.namespace_ = kNs;
  o.debounce = std::chrono::hours(1);
  {
    // A first run without a budget wrote 24 past hours (more than one page
    // of the production list, which pages by 16).
    ConfigMapWriterOptions unlimited = o;
    unlimited.max_total_bytes = 0;
    HourlyConfigMapWriter w(unlimited, Api(), &clock_);
    ASSERT_TRUE(w.Start().ok());
    for (int back = 1; back <= 24; ++back) w.Backfill(now - back, entries(now - back));
    ASSERT_TRUE(w.FlushNow().ok());
    EXPECT_EQ(w.stats().creates, 24u);
    w.Stop();
  }
  // Sizes as the API server returns the objects.
  auto listed = Api()->List(kNs, "app=pod-ashiato");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  std::map<HourIndex, size_t> bytes;
  for (auto& cm : (*listed)["items"]) {
    bytes[*ParseHourLabel(cm["metadata"]["labels"]["ashiato.io/hour"])] += cm.dump().size();
  }
  ASSERT_EQ(bytes.size(), 24u);
  size_t newest10 = 0;
  for (int back = 1; back <= 10; ++back) newest10 += bytes[now - back];

  // Restart with a budget for the newest 10 hours; the store backfills all 24.
  o.max_total_bytes = newest10 + 10;
  HourlyConfigMapWriter w(o, Api(), &clock_);
  ASSERT_TRUE(w.Start().ok());
  EXPECT_EQ(w.stats().budget_pruned, 14u);
  for (int back = 1; back <= 24; ++back) w.Backfill(now - back, entries(now - back));
  ASSERT_TRUE(w.FlushNow().ok());
  EXPECT_EQ(w.stats().creates + w.stats().updates, 0u);  // What is kept was all there.
  EXPECT_EQ(w.stats().total_bytes, newest10);
  auto hours = KubectlHours();
  std::set<std::string> got, want;
  for (auto& [h, data] : hours) got.insert(h);
  for (int back = 1; back <= 10; ++back) want.insert(HourLabel(now - back));
  EXPECT_EQ(got, want);
  EXPECT_EQ(hours[HourLabel(now - 1)].size(), 60u);
  w.Stop();
}

}  // namespace
}  // namespace ashiato
