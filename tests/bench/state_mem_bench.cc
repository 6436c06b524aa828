// state_mem_bench: the aggregator's memory per tracked pod, without HTTP.
// Applies every node's snapshot to a ClusterState backed by a real Store in
// a temporary directory (what the aggregator does after its agents
// connect), then prints the heap the state holds per pod, the part of it
// that is SQLite's (page caches of the store's connections), and the RSS.
// Connection memory is not in these figures: ingest_bench measures the
// whole process.
//
//   state_mem_bench --nodes 5000 --pods-per-node 30 --shape bench|realistic
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "aggregator/image_census.h"
#include "aggregator/state.h"
#include "aggregator/store/store.h"
#include "aggregator/stored_pod.h"
#include "tests/bench/bench_pods.h"
#include "tests/bench/bench_store.h"
#include "tests/bench/bench_util.h"
#include "tests/testing/subprocess.h"

namespace {

using namespace ashiato;
using ashiato::bench::Print;

// Bytes malloc has handed out and not taken back (arenas and mmapped chunks).
double HeapInUse() {
  struct mallinfo2 mi = mallinfo2();
  return static_cast<double>(mi.uordblks + mi.hblkhd);
}

double RssBytes() { return ashiato::bench::ProcStatusKb(getpid(), "VmRSS") * 1024.0; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"aggregator memory per tracked pod"};
  int nodes = 5000, pods_per_node = 30;
  std::string shape = "bench", workdir = "/tmp";
  bool image_census = true;
  app.add_option("--nodes", nodes, "Nodes, one snapshot report each")->capture_default_str();
  app.add_option("--pods-per-node", pods_per_node, "Pods in each snapshot")->capture_default_str();
  app.add_option("--shape", shape,
                 "bench: ingest_bench's pods; realistic: production-like UIDs, names, labels")
      ->check(CLI::IsMember({"bench", "realistic"}))
      ->capture_default_str();
  app.add_option("--image-census", image_census, "Attach the image census, as the aggregator does")
      ->capture_default_str();
  app.add_option("--workdir", workdir, "Where the store is created")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  std::string dir = ashiato::testing::MakeTempDir(workdir + "/state-mem-bench");
  std::unique_ptr<Store> store = bench::OpenBenchStore(dir);
  if (!store) return 1;
  ImageCensus images;  // As the aggregator attaches it.
  ClusterState state(StateOptions{}, store.get());
  if (image_census) state.AddCensus(&images);
  if (!state.Open().ok()) return 1;

  malloc_trim(0);
  double heap0 = HeapInUse(), sqlite0 = static_cast<double>(sqlite3_memory_used());
  double rss0 = RssBytes();
  uint64_t rv = 1000;
  size_t pods = 0;
  for (int n = 0; n < nodes; ++n) {
    Report r;
    r.node =
        shape == "bench" ? "node-" + std::to_string(n + 1) : bench::RealisticPod(n, 0, 0).node_name;
    r.epoch = "5f0c3a9e1b7d2c48";  // The agent's 16 hex digits.
    r.seq = 1;
    r.snapshot = true;
    for (int i = 0; i < pods_per_node; ++i) {
      PodRecord p =
          shape == "bench" ? bench::IngestBenchPod(n, i, ++rv) : bench::RealisticPod(n, i, ++rv);
      r.records.push_back({RecordOp::kUpsert, std::move(p), 0});
    }
    pods += r.records.size();
    if (state.Apply(std::move(r)).outcome != ApplyOutcome::kApplied) {
      std::fprintf(stderr, "apply failed\n");
      return 1;
    }
  }
  double heap1 = HeapInUse(), sqlite1 = static_cast<double>(sqlite3_memory_used());
  double rss1 = RssBytes();
  malloc_trim(0);
  double rss2 = RssBytes();
  double per = static_cast<double>(pods);
  Print("state_mem.shape_" + shape, 1, "flag");
  Print("state_mem.tracked_pods", per, "pods");
  Print("state_mem.live_pods_in_state", static_cast<double>(state.live_pods()), "pods");
  Print("state_mem.state_heap_per_pod", (heap1 - heap0 - (sqlite1 - sqlite0)) / per, "bytes");
  Print("state_mem.sqlite_heap_per_pod", (sqlite1 - sqlite0) / per, "bytes");
  Print("state_mem.sqlite_heap", sqlite1 / 1048576.0, "MiB");
  Print("state_mem.heap_per_pod", (heap1 - heap0) / per, "bytes");
  Print("state_mem.rss_per_pod", (rss1 - rss0) / per, "bytes");
  Print("state_mem.rss_per_pod_after_trim", (rss2 - rss0) / per, "bytes");
  // The packed buffers and their interned strings alone (without the
  // handles), packed again into a table of their own: the rest of the
  // state's heap is the entries, the UID map and the nodes.
  {
    InternTable strings;
    std::vector<StoredPod> packed;
    packed.reserve(pods);
    double before = HeapInUse();
    for (int n = 0; n < nodes; ++n) {
      for (int i = 0; i < pods_per_node; ++i) {
        packed.push_back(StoredPod::Pack(
            shape == "bench" ? bench::IngestBenchPod(n, i, 1) : bench::RealisticPod(n, i, 1),
            &strings));
      }
    }
    Print("state_mem.packed_record_heap_per_pod", (HeapInUse() - before) / per, "bytes");
    Print("state_mem.interned_strings", static_cast<double>(strings.size()), "strings");
  }
  ashiato::testing::RemoveTree(dir);
  return 0;
}
