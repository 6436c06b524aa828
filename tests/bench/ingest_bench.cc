// Aggregator ingest: a load generator that speaks the agent protocol
// (common/report.h) as many simulated agents over keep-alive connections.
// The aggregator runs pinned to one core (CPU 0), the generator on the other.
// Phases: every agent sends its snapshot; then a saturation phase of large
// update batches (records/s sustained); then churn at fixed rates, timing
// each change from POST to its unified log line (p50/p99).
// Prints one "name value unit" line per figure.
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "common/report.h"
#include "tests/bench/bench_pods.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/report_generator.h"
#include "tests/testing/subprocess.h"

using SteadyClock = std::chrono::steady_clock;

using ashiato::bench::Body;
using ashiato::bench::Generator;
using ashiato::bench::JsonStringField;
using ashiato::bench::Print;
using ashiato::bench::ProcStatusKb;
using ashiato::bench::SendResult;

namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  socklen_t len = sizeof(sin);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  close(fd);
  return ntohs(sin.sin_port);
}

void Pin(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(pid, sizeof(set), &set);
}

}  // namespace

int main(int argc, char** argv) {
  std::string aggregator_bin, workdir = "/tmp";
  int agents = 5000, pods_per_agent = 30, churn_seconds = 10, saturate_seconds = 10;
  int connections = 0, threads = 0, settle_seconds = 0;
  std::vector<int> rates = {20, 200, 2000};
  std::vector<std::string> aggregator_args;
  CLI::App app{"ashiato-aggregator ingest benchmark"};
  app.add_option("--aggregator", aggregator_bin)->required();
  app.add_option("--workdir", workdir);
  app.add_option("--agents", agents);
  app.add_option("--pods-per-agent", pods_per_agent);
  app.add_option("--churn-seconds", churn_seconds);
  app.add_option("--saturate-seconds", saturate_seconds);
  app.add_option("--rates", rates);
  app.add_option("--connections", connections,
                 "keep-alive connections (default: one per simulated agent)");
  app.add_option("--threads", threads, "aggregator --threads (default: its own)");
  app.add_option("--settle-seconds", settle_seconds,
                 "after the snapshots, wait this long and measure the RSS again (the "
                 "aggregator returns freed heap pages at most every 30 s)");
  app.add_option("--aggregator-arg", aggregator_args, "Extra aggregator flag (repeatable)")
      ->allow_extra_args(false);
  CLI11_PARSE(app, argc, argv);
  if (connections <= 0) connections = agents;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  bool two_cores = sysconf(_SC_NPROCESSORS_ONLN) > 1;
  if (two_cores) Pin(0, 1);

  std::string dir = ashiato::testing::MakeTempDir(workdir + "/ingest-bench");
  if (dir.empty()) {
    std::fprintf(stderr, "cannot create a directory under --workdir %s: %s\n", workdir.c_str(),
                 std::strerror(errno));
    return 1;
  }
  int port = FreePort();
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  // The unified log goes to a pipe so each line is timed when it appears.
  // Ingest alone: no TokenReview, and reads open (--read-auth none; the
  // benchmark reads nothing but /healthz).
  std::vector<std::string> args = {aggregator_bin,
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--auth",
                                   "none",
                                   "--read-auth",
                                   "none",
                                   "--max-connections",
                                   std::to_string(connections + 1000),
                                   "--data-dir",
                                   dir + "/data"};
  if (threads > 0) {
    args.push_back("--threads");
    args.push_back(std::to_string(threads));
  }
  args.insert(args.end(), aggregator_args.begin(), aggregator_args.end());
  int out_fd = -1;
  pid_t agg = ashiato::bench::SpawnWithStdoutPipe(args, dir + "/aggregator.err", &out_fd);
  if (agg < 0) return 1;
  if (two_cores) Pin(agg, 0);

  // Log reader: counts lines; while `tracking`, times the lines whose
  // "uid@resource_version" is in `wanted` (cheap field scan, no JSON parse,
  // so the reader keeps up with the aggregator).
  std::mutex mu;
  std::unordered_map<std::string, SteadyClock::time_point> logged;  // "uid@rv" -> when.
  std::atomic<bool> tracking{false};
  std::atomic<size_t> lines{0};
  std::atomic<size_t> unparsed{0};
  std::thread reader([&] {
    FILE* f = fdopen(out_fd, "r");
    char* buf = nullptr;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, f)) > 0) {
      auto now = SteadyClock::now();
      std::string_view line(buf, static_cast<size_t>(n));
      if (tracking.load(std::memory_order_relaxed)) {
        auto uid = JsonStringField(line, "\"uid\":\"");
        auto rv = JsonStringField(line, "\"resource_version\":\"");
        if (uid.empty() || rv.empty()) {
          ++unparsed;
        } else {
          std::string key;
          key.reserve(uid.size() + rv.size() + 1);
          key.append(uid).append("@").append(rv);
          std::lock_guard<std::mutex> lock(mu);
          logged.emplace(std::move(key), now);
        }
      }
      lines.fetch_add(1, std::memory_order_release);
    }
    free(buf);
    fclose(f);
  });

  if (!ashiato::testing::WaitFor(
          [&] {
            std::string out;
            return ashiato::testing::RunCommand({"curl", "-sf", url + "/healthz"}, &out,
                                                std::chrono::seconds(2)) == 0;
          },
          std::chrono::seconds(20))) {
    std::fprintf(stderr, "aggregator did not become healthy; see %s\n", dir.c_str());
    kill(agg, SIGKILL);
    return 1;
  }
  long base_rss_kb = ProcStatusKb(agg, "VmRSS");
  Print("ingest.simulated_agents", agents, "agents");
  Print("ingest.keepalive_connections", connections, "connections");
  Print("ingest.aggregator_rss_idle", base_rss_kb / 1024.0, "MiB");

  Generator gen(url + "/v1/reports", connections);
  uint64_t rv = 1000;
  std::vector<std::string> epochs;
  std::vector<uint64_t> seqs(static_cast<size_t>(agents), 0);
  for (int a = 0; a < agents; ++a) epochs.push_back("bench-" + std::to_string(a));
  auto report_for = [&](int a) {
    return ashiato::Report{.node = "node-" + std::to_string(a + 1),
                           .epoch = epochs[static_cast<size_t>(a)],
                           .seq = ++seqs[static_cast<size_t>(a)]};
  };

  // Phase 1: every agent's snapshot, each agent on its own connection.
  std::vector<Body> bodies;
  size_t snapshot_bytes = 0;
  for (int a = 0; a < agents; ++a) {
    ashiato::Report r = report_for(a);
    r.snapshot = true;
    for (int i = 0; i < pods_per_agent; ++i)
      r.records.push_back({.pod = ashiato::bench::IngestBenchPod(a, i, ++rv)});
    bodies.push_back({ashiato::EncodeReport(r), r.records.size()});
    snapshot_bytes += bodies.back().json.size();
  }
  size_t total_pods = static_cast<size_t>(agents) * static_cast<size_t>(pods_per_agent);
  Print("ingest.snapshot_body_bytes_avg", static_cast<double>(snapshot_bytes) / agents, "bytes");
  double cpu0 = ashiato::bench::ProcCpuSeconds(agg);
  auto t0 = SteadyClock::now();
  SendResult snap = gen.SendAll(bodies, static_cast<size_t>(connections));
  double snap_secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  ashiato::testing::WaitFor([&] { return lines.load() >= total_pods; }, std::chrono::seconds(120));
  double snap_logged = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  double snap_cpu = ashiato::bench::ProcCpuSeconds(agg) - cpu0;
  Print("ingest.snapshot_reports_ok", static_cast<double>(snap.ok), "reports");
  Print("ingest.snapshot_reports_failed", static_cast<double>(snap.failed), "reports");
  Print("ingest.snapshot_records_per_second", static_cast<double>(snap.ok_records) / snap_secs,
        "records/s");
  Print("ingest.snapshot_seconds_to_last_log_line", snap_logged, "s");
  Print("ingest.snapshot_log_lines", static_cast<double>(lines.load()), "lines");
  Print("ingest.snapshot_aggregator_cpu_seconds", snap_cpu, "s");
  long rss_kb = ProcStatusKb(agg, "VmRSS");
  Print("ingest.tracked_pods", static_cast<double>(total_pods), "pods");
  Print("ingest.aggregator_rss_after_snapshots", rss_kb / 1024.0, "MiB");
  Print("ingest.memory_per_tracked_pod", rss_kb * 1024.0 / static_cast<double>(total_pods),
        "bytes");
  Print("ingest.memory_per_tracked_pod_above_idle",
        static_cast<double>(rss_kb - base_rss_kb) * 1024.0 / static_cast<double>(total_pods),
        "bytes");
  if (settle_seconds > 0) {
    std::this_thread::sleep_for(std::chrono::seconds(settle_seconds));
    long settled_kb = ProcStatusKb(agg, "VmRSS");
    Print("ingest.aggregator_rss_after_snapshots_settled", settled_kb / 1024.0, "MiB");
    Print("ingest.memory_per_tracked_pod_settled",
          settled_kb * 1024.0 / static_cast<double>(total_pods), "bytes");
  }

  // Phase 2: saturation. A producer thread encodes batches of 500 changed
  // records (agents in turn, so no two batches of one agent are in flight and
  // none is refused as a replay); 32 batches in flight keep the aggregator busy.
  constexpr size_t kBatch = 500;
  std::mutex qmu;
  std::condition_variable qcv;
  std::deque<Body> queue;
  std::atomic<bool> producing{true};
  std::mt19937 rng(7);
  int next_agent = 0;
  auto sat_end = SteadyClock::now() + std::chrono::seconds(saturate_seconds);
  std::thread producer([&] {
    while (producing.load() && SteadyClock::now() < sat_end) {
      int a = next_agent;
      next_agent = (next_agent + 1) % agents;
      ashiato::Report r = report_for(a);
      for (size_t k = 0; k < kBatch; ++k) {
        auto pod = ashiato::bench::IngestBenchPod(
            a, static_cast<int>(rng() % static_cast<unsigned>(pods_per_agent)), ++rv);
        pod.labels["gen"] = std::to_string(rv);
        r.records.push_back({.pod = std::move(pod)});
      }
      Body b{ashiato::EncodeReport(r), r.records.size()};
      std::unique_lock<std::mutex> lock(qmu);
      qcv.wait(lock, [&] { return queue.size() < 64 || !producing.load(); });
      queue.push_back(std::move(b));
      qcv.notify_all();
    }
    std::lock_guard<std::mutex> lock(qmu);
    producing = false;
    qcv.notify_all();
  });
  // Let the producer get ahead before the clock starts.
  ashiato::testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(qmu);
        return queue.size() >= 32 || !producing.load();
      },
      std::chrono::seconds(30));
  size_t lines_before = lines.load();
  double cpu1 = ashiato::bench::ProcCpuSeconds(agg);
  auto sat_start = SteadyClock::now();
  SendResult sat = gen.Send(
      [&](Body* b) {
        std::unique_lock<std::mutex> lock(qmu);
        qcv.wait(lock, [&] { return !queue.empty() || !producing.load(); });
        if (queue.empty()) return false;
        *b = std::move(queue.front());
        queue.pop_front();
        qcv.notify_all();
        return true;
      },
      32);
  double sat_secs = std::chrono::duration<double>(SteadyClock::now() - sat_start).count();
  producer.join();
  size_t sat_expected_lines = lines_before + sat.ok_records;
  ashiato::testing::WaitFor([&] { return lines.load() >= sat_expected_lines; },
                            std::chrono::seconds(120));
  double sat_logged_secs = std::chrono::duration<double>(SteadyClock::now() - sat_start).count();
  double sat_cpu = ashiato::bench::ProcCpuSeconds(agg) - cpu1;
  size_t sat_lines = lines.load() - lines_before;
  Print("ingest.saturated_records_acked", static_cast<double>(sat.ok_records), "records");
  Print("ingest.saturated_reports_failed", static_cast<double>(sat.failed), "reports");
  Print("ingest.saturated_records_per_second", static_cast<double>(sat.ok_records) / sat_secs,
        "records/s");
  Print("ingest.saturated_log_lines_per_second", static_cast<double>(sat_lines) / sat_logged_secs,
        "lines/s");
  Print("ingest.saturated_records_not_logged",
        static_cast<double>(sat.ok_records) - static_cast<double>(sat_lines), "records");
  Print("ingest.saturated_aggregator_cpu_cores", sat_cpu / sat_logged_secs, "cores");
  Print("ingest.saturated_aggregator_cpu_us_per_record",
        1e6 * sat_cpu / std::max<double>(1.0, static_cast<double>(sat_lines)), "us");

  // Phase 3: churn at fixed rates. Every 100 ms tick, `rate/10` distinct
  // agents each send one batch with one changed pod (what 5,000 agents with
  // a 500 ms batch delay do at these rates); each change is timed from its
  // POST to its unified log line.
  tracking = true;
  for (int rate : rates) {
    std::unordered_map<std::string, SteadyClock::time_point> sent;
    size_t failed = 0;
    auto phase_start = SteadyClock::now();
    auto end = phase_start + std::chrono::seconds(churn_seconds);
    auto tick = phase_start;
    double carry = 0;
    double cpu2 = ashiato::bench::ProcCpuSeconds(agg);
    while (SteadyClock::now() < end) {
      tick += std::chrono::milliseconds(100);
      carry += rate / 10.0;
      int n = std::min(static_cast<int>(carry), agents);
      carry -= n;
      bodies.clear();
      std::vector<std::string> keys;
      std::unordered_map<int, bool> used;
      while (static_cast<int>(bodies.size()) < n) {
        int a = static_cast<int>(rng() % static_cast<unsigned>(agents));
        if (!used.emplace(a, true).second) continue;
        ashiato::Report r = report_for(a);
        auto pod = ashiato::bench::IngestBenchPod(
            a, static_cast<int>(rng() % static_cast<unsigned>(pods_per_agent)), ++rv);
        pod.labels["gen"] = std::to_string(rv);
        keys.push_back(pod.uid + "@" + pod.resource_version);
        r.records.push_back({.pod = std::move(pod)});
        bodies.push_back({ashiato::EncodeReport(r), 1});
      }
      auto now = SteadyClock::now();
      for (auto& k : keys) sent.emplace(k, now);
      failed += gen.SendAll(bodies, static_cast<size_t>(connections)).failed;
      std::this_thread::sleep_until(tick);
    }
    double phase_secs = std::chrono::duration<double>(SteadyClock::now() - phase_start).count();
    ashiato::testing::WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          for (const auto& [k, t] : sent) {
            if (!logged.count(k)) return false;
          }
          return true;
        },
        std::chrono::seconds(10));
    double churn_cpu = ashiato::bench::ProcCpuSeconds(agg) - cpu2;
    std::vector<double> lat;
    size_t lost = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [k, t] : sent) {
        auto it = logged.find(k);
        if (it == logged.end()) {
          ++lost;
        } else {
          lat.push_back(std::chrono::duration<double, std::milli>(it->second - t).count());
        }
      }
    }
    std::string prefix = "ingest.churn_" + std::to_string(rate) + "_per_s.";
    Print(prefix + "changes", static_cast<double>(sent.size()), "changes");
    Print(prefix + "achieved_rate", static_cast<double>(sent.size()) / phase_secs, "changes/s");
    Print(prefix + "reports_failed", static_cast<double>(failed), "reports");
    Print(prefix + "not_logged", static_cast<double>(lost), "changes");
    Print(prefix + "latency_p50", ashiato::bench::Percentile(lat, 0.5), "ms");
    Print(prefix + "latency_p99", ashiato::bench::Percentile(lat, 0.99), "ms");
    Print(prefix + "aggregator_cpu_cores", churn_cpu / phase_secs, "cores");
  }
  Print("ingest.log_lines_without_uid_or_rv", static_cast<double>(unparsed.load()), "lines");
  long end_rss_kb = ProcStatusKb(agg, "VmRSS");
  Print("ingest.aggregator_rss_end", end_rss_kb / 1024.0, "MiB");
  Print("ingest.aggregator_rss_peak", ProcStatusKb(agg, "VmHWM") / 1024.0, "MiB");

  kill(agg, SIGTERM);
  int status = 0;
  waitpid(agg, &status, 0);
  Print("ingest.aggregator_exit_code",
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), "code");
  reader.join();
  ashiato::testing::RemoveTree(dir);
  curl_global_cleanup();
  return 0;
}
