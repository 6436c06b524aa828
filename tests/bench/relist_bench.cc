// Relist storm: N simulated agents, each the agent's real Reflector (list,
// watch, relist logic and HTTP client; the pod store and pusher left out),
// one thread each, against one kubesim with N nodes. Once every agent
// watches, kubesim drops every watch and compacts its history, as an API
// server restart does: every agent's resume gets 410 and it relists. Run
// twice in the same process and kubesim: the old behaviour (quorum relist,
// ReflectorOptions::relist_from_cache=false) and the new one (client-go's
// relist at the last resourceVersion seen). Prints requests, bytes, lists
// answered from the watch cache vs etcd (kubesim's stats, with the objects
// etcd range reads would visit), 410s, and the time until every agent
// watches again. Prints one "name value unit" line per figure.
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "agent/pod_api.h"
#include "agent/reflector.h"
#include "tests/bench/bench_util.h"
#include "tests/kubesim/kubesim_process.h"

namespace ashiato {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// One simulated agent: its reflector reports here.
class SimAgent : public ReflectorHandler {
 public:
  void OnList(const std::vector<PodRecord>& pods) override { listed_pods = pods.size(); }
  void OnWatchEvent(const std::string&, const PodRecord&) override {}
  void OnWatchState(bool open) override {
    watching = open;
    if (open && relists > 0 && rewatch_ns == 0) {
      rewatch_ns = Clock::now().time_since_epoch().count();
    }
  }
  void OnRelist() override { ++relists; }

  std::atomic<bool> watching{false};
  std::atomic<int> relists{0};
  std::atomic<int64_t> rewatch_ns{0};
  std::atomic<size_t> listed_pods{0};
};

struct Agent {
  std::unique_ptr<KubeClient> client;
  std::unique_ptr<KubePodApi> api;
  SimAgent handler;
  std::unique_ptr<Reflector> reflector;
  std::thread thread;
};

bool WaitUntil(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  return ashiato::testing::WaitFor(pred, timeout);
}

double At(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return 0;
    p = &(*p)[k];
  }
  return p->is_number() ? p->get<double>() : 0;
}

// One run: start agents, wait until they all watch, drop + compact, wait
// until they all watch again. Returns false if something never happened.
bool RunMode(testing::KubesimProcess& sim, int nodes, bool relist_from_cache,
             std::chrono::seconds timeout) {
  const std::string mode = relist_from_cache ? "new" : "old";
  KubeConfig config;
  config.server = sim.server_url();
  config.token = sim.admin_token();
  std::vector<std::unique_ptr<Agent>> agents;
  agents.reserve(nodes);
  for (int i = 1; i <= nodes; ++i) {
    auto a = std::make_unique<Agent>();
    a->client = std::make_unique<KubeClient>(config, "relist-bench");
    a->api = std::make_unique<KubePodApi>(a->client.get());
    ReflectorOptions o;
    o.node = "node-" + std::to_string(i);
    o.relist_from_cache = relist_from_cache;
    o.seed = static_cast<uint64_t>(i);
    a->reflector = std::make_unique<Reflector>(o, a->api.get(), &a->handler);
    Agent* raw = a.get();
    a->thread = std::thread([raw] { (void)raw->reflector->Run(); });
    agents.push_back(std::move(a));
  }
  auto all_watching = [&] {
    for (auto& a : agents) {
      if (!a->handler.watching) return false;
    }
    return (*sim.Stats())["open_watches"].get<int>() >= nodes;
  };
  bool ok = WaitUntil(all_watching, timeout);
  if (!ok) std::fprintf(stderr, "%s: agents never all watched\n", mode.c_str());
  // Let every watch see a bookmark, so its end counts as a clean one.
  std::this_thread::sleep_for(std::chrono::seconds(3));

  auto before = *sim.Stats();
  // A change, then compaction: every agent's last RV is now too old.
  (void)sim.KubeJson("POST", "/api/v1/namespaces/default/configmaps",
                     json{{"metadata", {{"name", "relist-bench-" + mode}}}}.dump());
  auto t0 = Clock::now();
  if (!sim.SetFaults({{"compact", true}, {"drop_watches", true}}).ok()) ok = false;
  auto all_back = [&] {
    for (auto& a : agents) {
      if (a->handler.rewatch_ns == 0) return false;
    }
    return (*sim.Stats())["open_watches"].get<int>() >= nodes;
  };
  if (!WaitUntil(all_back, timeout)) {
    std::fprintf(stderr, "%s: agents never all watched again\n", mode.c_str());
    ok = false;
  }
  auto seen_back = Clock::now();
  int64_t last_ns = 0;
  for (auto& a : agents) last_ns = std::max<int64_t>(last_ns, a->handler.rewatch_ns);
  auto after = *sim.Stats();

  std::string p = "relist." + mode + ".";
  auto diff = [&](std::initializer_list<const char*> path) {
    return At(after, path) - At(before, path);
  };
  double last_s =
      (static_cast<double>(last_ns) - static_cast<double>(t0.time_since_epoch().count())) / 1e9;
  bench::Print(p + "agents", nodes, "agents");
  bench::Print(p + "time_until_all_rewatch", last_s, "s");
  bench::Print(p + "time_until_kubesim_sees_all_watches",
               std::chrono::duration<double>(seen_back - t0).count(), "s");
  bench::Print(p + "requests", diff({"requests_total"}), "requests");
  bench::Print(p + "response_bytes", diff({"response_bytes_total"}), "bytes");
  bench::Print(p + "list_requests_from_cache", diff({"lists", "pods", "cache", "requests"}),
               "requests");
  bench::Print(p + "list_bytes_from_cache", diff({"lists", "pods", "cache", "bytes"}), "bytes");
  bench::Print(p + "list_requests_from_etcd", diff({"lists", "pods", "etcd", "requests"}),
               "requests");
  bench::Print(p + "list_bytes_from_etcd", diff({"lists", "pods", "etcd", "bytes"}), "bytes");
  bench::Print(p + "etcd_objects_read", diff({"lists", "pods", "etcd", "objects_read"}), "objects");
  bench::Print(p + "lists_expired_410", diff({"lists", "pods", "expired"}), "requests");
  bench::Print(p + "watch_requests", diff({"by_verb", "watch", "pods", "requests"}), "requests");

  for (auto& a : agents) a->reflector->Stop();
  for (auto& a : agents) a->thread.join();
  WaitUntil([&] { return (*sim.Stats())["open_watches"].get<int>() == 0; },
            std::chrono::seconds(30));
  return ok;
}

}  // namespace
}  // namespace ashiato

int main(int argc, char** argv) {
  CLI::App app{"Relist storm after an API server drops every watch and compacts"};
  int nodes = 5000;
  int pods_per_node = 30;
  int timeout_s = 600;
  app.add_option("--nodes", nodes, "Simulated agents (one per node)");
  app.add_option("--pods-per-node", pods_per_node, "Pods per node");
  app.add_option("--timeout-seconds", timeout_s, "Give up waiting after this long");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::err);
  rlimit files{};  // One connection per agent: raise the soft fd limit to the hard one.
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &files);
  }  // 10,000 "listed N pods" lines say nothing here.

  auto sim =
      ashiato::testing::KubesimProcess::Start({.nodes = nodes,
                                               .pods_per_node = pods_per_node,
                                               .seed = 7,
                                               .extra_args = {"--bookmark-interval-ms", "1000"},
                                               .start_timeout = std::chrono::milliseconds(600000)});
  if (!sim.ok()) {
    std::fprintf(stderr, "kubesim: %s\n", sim.status().ToString().c_str());
    return 1;
  }
  ashiato::bench::Print("relist.pods", static_cast<double>(nodes) * pods_per_node, "pods");
  bool ok = true;
  for (bool from_cache : {false, true}) {
    ok = ashiato::RunMode(**sim, nodes, from_cache, std::chrono::seconds(timeout_s)) && ok;
  }
  return ok ? 0 : 1;
}
