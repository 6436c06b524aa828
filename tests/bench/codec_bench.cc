// Record codec: bytes per record on the wire (plain and gzip) and
// encode/decode throughput, with Google Benchmark. Besides Google
// Benchmark's own table on stderr, prints "name value unit" lines.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <iostream>

#include "common/report.h"

namespace {

ashiato::PodRecord TypicalPod(int i) {
  ashiato::PodRecord p;
  p.uid = "5f0c2d7e-3b1a-4c8e-9d2f-" + std::to_string(100000000000 + i);
  p.namespace_ = "team-a";
  p.name = "web-7d4b9c8f6d-x" + std::to_string(i);
  p.node_name = "node-" + std::to_string(i % 5000 + 1);
  p.pod_ip = "10.244." + std::to_string(i % 250) + "." + std::to_string(i % 200 + 2);
  p.pod_ips = {p.pod_ip};
  p.host_ip = "192.168.1." + std::to_string(i % 250);
  p.phase = "Running";
  for (const char* t : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
    p.conditions.push_back({t, "True", "2026-11-24T03:00:00Z"});
  }
  p.containers.push_back({"web", "registry.example.com/team-a/web:1.4.2",
                          "registry.example.com/team-a/web@sha256:"
                          "0f0a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"});
  p.owner_kind = "Deployment";
  p.owner_name = "web";
  p.owner_inferred = true;
  p.labels = {{"app", "web"}, {"pod-template-hash", "7d4b9c8f6d"}, {"team", "a"}};
  p.creation_timestamp = "2026-11-24T03:00:00Z";
  p.resource_version = std::to_string(123456789 + i);
  return p;
}

ashiato::Report Batch(int n) {
  ashiato::Report r{.node = "node-1", .epoch = "b1946ac92492d2347c6235b4d2611184", .seq = 42};
  for (int i = 0; i < n; ++i) r.records.push_back({.pod = TypicalPod(i)});
  return r;
}

void BM_Encode(benchmark::State& state) {
  auto report = Batch(static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string s = ashiato::EncodeReport(report);
    bytes = s.size();
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["bytes_per_record"] = static_cast<double>(bytes) / state.range(0);
}

void BM_Decode(benchmark::State& state) {
  std::string s = ashiato::EncodeReport(Batch(static_cast<int>(state.range(0))));
  for (auto _ : state) {
    auto r = ashiato::DecodeReport(s);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_GzipEncode(benchmark::State& state) {
  std::string s = ashiato::EncodeReport(Batch(static_cast<int>(state.range(0))));
  size_t bytes = 0;
  for (auto _ : state) {
    auto z = ashiato::GzipCompress(s, 1);
    bytes = z->size();
    benchmark::DoNotOptimize(z);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["bytes_per_record"] = static_cast<double>(bytes) / state.range(0);
}

BENCHMARK(BM_Encode)->Arg(100);
BENCHMARK(BM_Decode)->Arg(100);
BENCHMARK(BM_GzipEncode)->Arg(100);

// Prints our one-line-per-figure format next to Google Benchmark's table.
class FigureReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      std::string name = "codec." + run.benchmark_name();
      for (char& c : name) {
        if (c == '/') c = '_';
      }
      auto items = run.counters.find("items_per_second");
      if (items != run.counters.end()) {
        std::printf("%s.records_per_second %.6g records/s\n", name.c_str(),
                    static_cast<double>(items->second));
      }
      auto bytes = run.counters.find("bytes_per_record");
      if (bytes != run.counters.end()) {
        std::printf("%s.bytes_per_record %.6g bytes\n", name.c_str(),
                    static_cast<double>(bytes->second));
      }
    }
    std::fflush(stdout);
  }
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  FigureReporter reporter;
  reporter.SetOutputStream(&std::cerr);
  reporter.SetErrorStream(&std::cerr);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
