// store_bench: what the history store costs. Applies a simulated day of a
// cluster's changes through ClusterState + Store (the aggregator's ingest
// path without HTTP) and prints ingest records/s with a commit per batch,
// commit latency, and store bytes per 1,000 pods per day.
//
//   store_bench --pods 10000 --changes-per-pod-day 6 --batch 500
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "aggregator/state.h"
#include "aggregator/store/store.h"
#include "tests/bench/bench_store.h"
#include "tests/testing/subprocess.h"

namespace {

using namespace ashiato;

class SimClock : public Clock {
 public:
  SystemTime Now() const override { return now; }
  SystemTime now = SystemTime(std::chrono::seconds(1795000000));
};

PodRecord MakePod(int i, int generation, int node) {
  PodRecord p;
  p.uid = "4b1c2f0e-" + std::to_string(i) + "-" + std::to_string(generation);
  p.namespace_ = "team-" + std::to_string(i % 40);
  p.name = "svc-" + std::to_string(i % 500) + "-7d4b9c8f6d-" + std::to_string(i) + "x" +
           std::to_string(generation);
  p.node_name = "node-" + std::to_string(node);
  p.phase = "Running";
  p.pod_ip = "10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." +
             std::to_string(i % 256);
  p.pod_ips = {p.pod_ip};
  p.host_ip = "172.18.0." + std::to_string(node % 250);
  p.conditions = {{"PodScheduled", "True", "2026-11-24T02:59:58Z"},
                  {"Initialized", "True", "2026-11-24T03:00:00Z"},
                  {"ContainersReady", "True", "2026-11-24T03:00:04Z"},
                  {"Ready", "True", "2026-11-24T03:00:04Z"}};
  p.containers = {{"app", "registry.example.com/team/svc-" + std::to_string(i % 500) + ":1.42.0",
                   "registry.example.com/team/svc@sha256:9b2c" + std::string(60, 'a')},
                  {"istio-proxy", "docker.io/istio/proxyv2:1.24.0",
                   "docker.io/istio/proxyv2@sha256:" + std::string(64, 'b')}};
  p.owner_kind = "Deployment";
  p.owner_name = "svc-" + std::to_string(i % 500);
  p.owner_inferred = true;
  p.labels = {{"app", "svc-" + std::to_string(i % 500)}, {"pod-template-hash", "7d4b9c8f6d"}};
  p.creation_timestamp = "2026-11-24T02:59:58Z";
  p.resource_version = "1";
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"history store benchmark"};
  int pods = 10000, changes = 6, batch = 500, pods_per_node = 30;
  std::string workdir = "/tmp";
  int64_t cache_mib = 0;
  app.add_option("--pods", pods, "Pods in the simulated cluster")->capture_default_str();
  app.add_option("--changes-per-pod-day", changes,
                 "Changes per pod per day (half updates, half replacements)")
      ->capture_default_str();
  app.add_option("--batch", batch, "Records per report (one transaction each)")
      ->capture_default_str();
  app.add_option("--workdir", workdir, "Where the store is created")->capture_default_str();
  app.add_option("--cache-mib", cache_mib, "The store's page cache (default: the store's)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  std::string dir = ashiato::testing::MakeTempDir(workdir + "/store-bench");
  SimClock clock;
  std::unique_ptr<Store> store = bench::OpenBenchStore(dir, cache_mib * 1024);
  if (!store) return 1;
  ClusterState state(StateOptions{}, store.get(), nullptr, &clock);
  if (!state.Open().ok()) return 1;

  int nodes = std::max(1, pods / pods_per_node);
  std::vector<int> generation(static_cast<size_t>(pods), 0);
  std::vector<uint64_t> seq(static_cast<size_t>(nodes), 0);
  std::vector<std::vector<ReportRecord>> pending(static_cast<size_t>(nodes));
  std::vector<double> commit_ms;
  size_t records = 0;
  auto wall0 = std::chrono::steady_clock::now();
  auto flush = [&](int node, bool snapshot) {
    auto& recs = pending[static_cast<size_t>(node)];
    if (recs.empty()) return;
    Report r;
    r.node = "node-" + std::to_string(node);
    r.epoch = "e";
    r.seq = ++seq[static_cast<size_t>(node)];
    r.snapshot = snapshot;
    r.records = std::move(recs);
    recs.clear();
    records += r.records.size();
    auto t0 = std::chrono::steady_clock::now();
    ApplyResult res = state.Apply(std::move(r));
    commit_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (res.outcome != ApplyOutcome::kApplied) std::fprintf(stderr, "apply failed\n");
  };
  // Start of day: every pod in its node's snapshot.
  for (int i = 0; i < pods; ++i) {
    int node = i % nodes;
    pending[static_cast<size_t>(node)].push_back({RecordOp::kUpsert, MakePod(i, 0, node), 0});
  }
  for (int n = 0; n < nodes; ++n) flush(n, true);
  // The day's changes, spread over 24 h of simulated time.
  int64_t total = static_cast<int64_t>(pods) * changes;
  int64_t rv = 2;
  for (int64_t c = 0; c < total; ++c) {
    clock.now += std::chrono::microseconds(86400LL * 1000000 / std::max<int64_t>(total, 1));
    int i = static_cast<int>((c * 7919) % pods);
    int node = i % nodes;
    auto& recs = pending[static_cast<size_t>(node)];
    int64_t t =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.now.time_since_epoch()).count();
    PodRecord p = MakePod(i, generation[static_cast<size_t>(i)], node);
    p.resource_version = std::to_string(rv++);
    if (c % 2 == 0) {  // An update: readiness flips.
      p.conditions[3].status = (c / 2) % 2 ? "True" : "False";
      recs.push_back({RecordOp::kUpsert, p, t});
    } else {  // A replacement: delete, and a new pod of the ReplicaSet.
      recs.push_back({RecordOp::kDelete, p, t});
      PodRecord q = MakePod(i, ++generation[static_cast<size_t>(i)], node);
      q.resource_version = std::to_string(rv++);
      recs.push_back({RecordOp::kUpsert, q, t});
    }
    if (static_cast<int>(recs.size()) >= batch) flush(node, false);
  }
  for (int n = 0; n < nodes; ++n) flush(n, false);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  auto size = store->Size();
  std::sort(commit_ms.begin(), commit_ms.end());
  auto pct = [&](double p) {
    return commit_ms.empty() ? 0.0 : commit_ms[static_cast<size_t>(p * (commit_ms.size() - 1))];
  };
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  uint64_t bytes = size.ok() ? size->bytes : 0;
  std::printf("store_bench: %d pods, %d changes/pod/day, batch %d\n", pods, changes, batch);
  std::printf(
      "  records applied          %zu in %.2f s = %.0f records/s (one core, commit per batch)\n",
      records, wall, records / wall);
  std::printf("  Apply+commit per batch   p50 %.2f ms  p99 %.2f ms  max %.2f ms (%zu batches)\n",
              pct(0.5), pct(0.99), commit_ms.empty() ? 0.0 : commit_ms.back(), commit_ms.size());
  std::printf("  store after one day      %.1f MB in use, %.1f MB on disk (with WAL)\n",
              bytes / 1e6, size.ok() ? size->file_bytes / 1e6 : 0.0);
  std::printf("  per 1,000 pods per day   %.1f MB\n", bytes / 1e6 / (pods / 1000.0));
  std::printf("  max RSS                  %.1f MB\n", ru.ru_maxrss / 1024.0);
  // Bytes handed to write(2)/pwrite(2): the WAL's frames and the checkpoints'
  // copies back, the store's write volume per record.
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") {
      std::printf("  bytes written per record %.0f B (WAL frames and checkpoints)\n",
                  static_cast<double>(value) / static_cast<double>(std::max<size_t>(records, 1)));
    }
  }
  ashiato::testing::RemoveTree(dir);
  return 0;
}
