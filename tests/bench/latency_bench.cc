// End-to-end latency: a change made through the API server (a PATCH of a
// pod's status.podIP on kubesim) until its line appears in the aggregator's
// unified log (its stdout, read through a pipe), through real ashiato-agent
// processes (one per node) and a real ashiato-aggregator. Changes are sent
// open-loop at each --rates value for --seconds, spread over every pod; the
// bench pairs each PATCH's answer (uid, resourceVersion) with the log line
// carrying the same pair. Run twice in one process against the same kubesim
// and aggregator: agents with the old fixed --batch-delay 500ms, then with
// the default (batch only under load). Also prints the push requests the
// aggregator accepted per second (the request-rate cost).
// Each change is also timed at two points on its way, to show where the
// latency goes: when kubesim answered the PATCH, and when the agent of the
// pod's node printed the change (its stdout is a FIFO the bench reads). The
// hops are "api" (PATCH sent -> answered), "agent" (answered -> agent line)
// and "aggregator" (agent line -> unified log line).
// With --simulated-agents N, N more agents speak the agent protocol
// straight to the aggregator (tests/bench/report_generator.h), one change per
// report as an agent that sees 0.4 changes/s sends them: they carry the rest
// of each window's rate (1 - --real-share of it), so the aggregator's load is
// that of N + --agents agents while the real agents' changes are timed.
// Prints one "name value unit" line per figure.
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/http_client.h"
#include "common/report.h"
#include "tests/bench/bench_pods.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/report_generator.h"
#include "tests/kubesim/kubesim_process.h"
#include "tests/testing/subprocess.h"

namespace {

using Clock = std::chrono::steady_clock;
using ashiato::HttpClient;
using ashiato::bench::Print;
using ashiato::testing::Subprocess;
using nlohmann::json;
using namespace std::chrono_literals;

struct PodRef {
  std::string ns, name;
};

// Times unified log lines by "uid@resource_version".
class LogTimer {
 public:
  void Run(int fd) {
    FILE* f = fdopen(fd, "r");
    char* buf = nullptr;
    size_t cap = 0;
    while (getline(&buf, &cap, f) > 0) {
      auto now = Clock::now();
      // The two string fields, found rather than parsed: the bench shares
      // the cores with what it measures (the writers never escape either).
      std::string_view line(buf);
      std::string key =
          std::string(ashiato::bench::JsonStringField(line, "\"uid\":\"")) + "@" +
          std::string(ashiato::bench::JsonStringField(line, "\"resource_version\":\""));
      std::lock_guard<std::mutex> lock(mu_);
      logged_.emplace(std::move(key), now);
    }
    free(buf);
    fclose(f);
  }
  std::optional<Clock::time_point> When(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = logged_.find(key);
    if (it == logged_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, Clock::time_point> logged_;
};

// One PATCH of a pod's IP; returns "uid@rv" of the new state ("" on failure).
std::string PatchIp(HttpClient& c, const PodRef& p, uint64_t n) {
  std::string ip = "10." + std::to_string((n >> 16) & 255) + "." + std::to_string((n >> 8) & 255) +
                   "." + std::to_string(n & 255);
  json patch = {{"status", {{"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
  auto r = c.Do("PATCH", "/api/v1/namespaces/" + p.ns + "/pods/" + p.name + "/status", patch.dump(),
                {{"Content-Type", "application/merge-patch+json"}}, 10000);
  if (!r.ok() || r->status != 200) return "";
  json obj = json::parse(r->body, nullptr, false);
  if (!obj.is_object()) return "";
  return obj["metadata"].value("uid", "") + "@" + obj["metadata"].value("resourceVersion", "");
}

double AcceptedReports(const std::string& aggregator_url) {
  HttpClient c({.base_url = aggregator_url});
  auto r = c.Do("GET", "/metrics");
  if (!r.ok()) return 0;
  const std::string key = "ashiato_aggregator_reports_total{result=\"accepted\"} ";
  auto pos = r->body.find(key);
  return pos == std::string::npos ? 0 : std::atof(r->body.c_str() + pos + key.size());
}

struct Sent {
  Clock::time_point at, answered;
  std::string key;
};

// Percentiles of one hop, "name.p50" ... "name.max".
void PrintHop(const std::string& name, const std::vector<double>& ms) {
  Print(name + ".p50", ashiato::bench::Percentile(ms, 0.50), "ms");
  Print(name + ".p90", ashiato::bench::Percentile(ms, 0.90), "ms");
  Print(name + ".p99", ashiato::bench::Percentile(ms, 0.99), "ms");
  Print(name + ".max", ashiato::bench::Percentile(ms, 1.0), "ms");
}

double Ms(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// Agents simulated by POSTs of reports (not timed): a snapshot each, then
// changes of one pod each, at a rate, on keep-alive connections.
class SimulatedAgents {
 public:
  // Nodes "node-100001"...: apart from kubesim's.
  static constexpr int kFirst = 100000;

  SimulatedAgents(const std::string& url, int agents, int pods_per_agent)
      : gen_(url + "/v1/reports", agents),
        agents_(agents),
        pods_(pods_per_agent),
        seqs_(static_cast<size_t>(agents), 0) {}

  ashiato::bench::SendResult SendSnapshots() {
    std::vector<ashiato::bench::Body> bodies;
    for (int a = 0; a < agents_; ++a) {
      ashiato::Report r = ReportOf(a);
      r.snapshot = true;
      for (int i = 0; i < pods_; ++i)
        r.records.push_back({.pod = ashiato::bench::IngestBenchPod(kFirst + a, i, ++rv_)});
      bodies.push_back({ashiato::EncodeReport(r), r.records.size()});
    }
    return gen_.SendAll(bodies, static_cast<size_t>(agents_));
  }

  // Sends `rate` changes/s until `stop`, each tick (100 ms) from distinct
  // agents; returns how many the aggregator accepted.
  size_t Churn(double rate, const std::atomic<bool>& stop) {
    size_t accepted = 0;
    double carry = 0;
    auto tick = Clock::now();
    while (!stop.load()) {
      tick += 100ms;
      carry += rate / 10;
      int n = std::min(static_cast<int>(carry), agents_);
      carry -= n;
      std::vector<ashiato::bench::Body> bodies;
      std::vector<bool> used(static_cast<size_t>(agents_), false);
      while (static_cast<int>(bodies.size()) < n) {
        int a = static_cast<int>(rng_() % static_cast<unsigned>(agents_));
        if (used[static_cast<size_t>(a)]) continue;
        used[static_cast<size_t>(a)] = true;
        ashiato::Report r = ReportOf(a);
        auto pod = ashiato::bench::IngestBenchPod(
            kFirst + a, static_cast<int>(rng_() % static_cast<unsigned>(pods_)), ++rv_);
        pod.labels["gen"] = std::to_string(rv_);
        r.records.push_back({.pod = std::move(pod)});
        bodies.push_back({ashiato::EncodeReport(r), 1});
      }
      accepted += gen_.SendAll(bodies, static_cast<size_t>(agents_)).ok_records;
      std::this_thread::sleep_until(tick);
    }
    return accepted;
  }

 private:
  ashiato::Report ReportOf(int a) {
    return ashiato::Report{.node = "node-" + std::to_string(kFirst + a + 1),
                           .epoch = "sim-" + std::to_string(a),
                           .seq = ++seqs_[static_cast<size_t>(a)]};
  }

  ashiato::bench::Generator gen_;
  int agents_, pods_;
  std::vector<uint64_t> seqs_;
  uint64_t rv_ = 1000;
  std::mt19937 rng_{7};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Change through the API server -> unified log line, through real agents"};
  std::string aggregator_bin, agent_bin, workdir = "/tmp";
  int agents = 20, pods_per_node = 10, seconds = 15, senders = 4;
  std::vector<int> rates = {20, 200, 2000};
  std::vector<std::string> modes = {"old", "new"};
  std::vector<std::string> aggregator_args;
  int simulated_agents = 0;
  double real_share = 0.1;
  app.add_option("--aggregator", aggregator_bin, "ashiato-aggregator binary")->required();
  app.add_option("--agent", agent_bin, "ashiato-agent binary")->required();
  app.add_option("--agents", agents, "Real agents (one per node)");
  app.add_option("--pods-per-node", pods_per_node, "Pods per node");
  app.add_option("--rates", rates, "Changes per second, one window each")->delimiter(',');
  app.add_option("--seconds", seconds, "Length of each window");
  app.add_option("--senders", senders, "Threads sending PATCHes");
  app.add_option("--workdir", workdir, "Where temporary files go");
  app.add_option("--simulated-agents", simulated_agents,
                 "Agents simulated by POSTs to the aggregator (load, not timed)");
  app.add_option("--real-share", real_share,
                 "With simulated agents: the share of each rate made through the API server "
                 "and timed")
      ->check(CLI::Range(0.01, 1.0));
  app.add_option("--aggregator-arg", aggregator_args, "Extra aggregator flag (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--modes", modes, "old (fixed 500ms batch delay), new (batch under load)")
      ->delimiter(',')
      ->check(CLI::IsMember({"old", "new"}));
  CLI11_PARSE(app, argc, argv);
  if (simulated_agents == 0) real_share = 1.0;
  curl_global_init(CURL_GLOBAL_DEFAULT);

  auto sim = ashiato::testing::KubesimProcess::Start(
      {.nodes = agents, .pods_per_node = pods_per_node, .seed = 11});
  if (!sim.ok()) {
    std::fprintf(stderr, "kubesim: %s\n", sim.status().ToString().c_str());
    return 1;
  }
  int status = 0;
  std::string dir = ashiato::testing::MakeTempDir(workdir + "/latency-bench");
  // The aggregator binds port 0 and says which port it got on stderr.
  int out_fd = -1;
  const std::string agg_err = dir + "/aggregator.err";
  std::vector<std::string> agg_args = {aggregator_bin, "--listen",   "127.0.0.1:0",
                                       "--auth",       "none",       "--read-auth",
                                       "none",         "--data-dir", dir + "/data"};
  agg_args.insert(agg_args.end(), aggregator_args.begin(), aggregator_args.end());
  pid_t agg = ashiato::bench::SpawnWithStdoutPipe(agg_args, agg_err, &out_fd);
  if (agg < 0) return 1;
  uint16_t port = ashiato::testing::WaitForReportedPort(agg_err, 0, "serving on port ", 20000ms);
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  LogTimer timer;
  std::thread reader([&] { timer.Run(out_fd); });
  HttpClient probe({.base_url = url});
  if (!ashiato::testing::WaitFor(
          [&] {
            auto r = probe.Do("GET", "/readyz");
            return r.ok() && r->status == 200;
          },
          20000ms)) {
    std::fprintf(stderr, "aggregator not ready; see %s/aggregator.err\n", dir.c_str());
    kill(agg, SIGKILL);
    reader.join();
    return 1;
  }

  std::unique_ptr<SimulatedAgents> sim_agents;
  if (simulated_agents > 0) {
    sim_agents = std::make_unique<SimulatedAgents>(url, simulated_agents, pods_per_node);
    auto t0 = Clock::now();
    auto snap = sim_agents->SendSnapshots();
    Print("e2e_latency.simulated_agents", simulated_agents, "agents");
    Print("e2e_latency.simulated_snapshot_seconds",
          std::chrono::duration<double>(Clock::now() - t0).count(), "s");
    if (snap.failed > 0) {
      std::fprintf(stderr, "%zu simulated snapshots refused\n", snap.failed);
      status = 1;
    }
  }

  // Every pod of the agents' nodes, and one per node for the warm-up.
  std::vector<PodRef> pods;
  std::map<std::string, PodRef> one_per_node;
  auto list = (*sim)->KubeJson("GET", "/api/v1/pods");
  if (!list.ok()) return 1;
  for (const auto& p : (*list)["items"]) {
    PodRef r{p["metadata"]["namespace"], p["metadata"]["name"]};
    pods.push_back(r);
    one_per_node.emplace(p["spec"].value("nodeName", ""), r);
  }
  std::atomic<uint64_t> ip_counter{1};
  // Every agent's stdout lines, timed as they are written.
  LogTimer agent_timer;

  for (const std::string& mode : modes) {
    bool old_delay = mode == "old";
    std::vector<std::unique_ptr<Subprocess>> procs;
    std::vector<std::thread> agent_readers;
    for (int i = 1; i <= agents; ++i) {
      std::string node = "node-" + std::to_string(i);
      // The agent opens its stdout for writing, the reader for reading: each
      // open waits for the other, so the reader starts first.
      std::string fifo = dir + "/agent-" + mode + "-" + node + ".fifo";
      if (mkfifo(fifo.c_str(), 0600) != 0) {
        std::perror("mkfifo");
        return 1;
      }
      agent_readers.emplace_back([&agent_timer, fifo] {
        int fd = open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) agent_timer.Run(fd);
      });
      std::vector<std::string> args = {agent_bin,
                                       "--kubeconfig",
                                       (*sim)->kubeconfig_path(),
                                       "--node",
                                       node,
                                       "--aggregator",
                                       url,
                                       "--allow-insecure-aggregator"};
      if (old_delay) {
        args.push_back("--batch-delay");
        args.push_back("500ms");
      }
      procs.push_back(Subprocess::Start(args, fifo, dir + "/agent-" + mode + "-" + node + ".err"));
    }
    // Warm-up: one change per node must reach the log (every agent pushes).
    HttpClient warm((*sim)->client_options());
    std::vector<std::string> warm_keys;
    bool warmed = ashiato::testing::WaitFor(
        [&] {
          warm_keys.clear();
          for (const auto& [node, p] : one_per_node)
            warm_keys.push_back(PatchIp(warm, p, ip_counter++));
          std::this_thread::sleep_for(1000ms);
          for (const auto& k : warm_keys) {
            if (!timer.When(k)) return false;
          }
          return true;
        },
        60000ms);
    if (!warmed) {
      std::fprintf(stderr, "%s: agents never all delivered; see %s\n", mode.c_str(), dir.c_str());
      status = 1;
    }

    for (int rate : rates) {
      std::vector<std::vector<Sent>> sent(senders);
      double accepted_before = AcceptedReports(url);
      auto start = Clock::now() + 100ms;
      // The real agents' share of the rate; the simulated ones send the rest.
      double real_rate = rate * real_share;
      int total = static_cast<int>(real_rate * seconds);
      std::atomic<bool> sim_stop{false};
      size_t sim_accepted = 0;
      std::thread sim_thread;
      if (sim_agents) {
        sim_thread = std::thread([&] {
          std::this_thread::sleep_until(start);
          sim_accepted = sim_agents->Churn(rate - real_rate, sim_stop);
        });
      }
      std::vector<std::thread> threads;
      for (int t = 0; t < senders; ++t) {
        threads.emplace_back([&, t] {
          HttpClient c((*sim)->client_options());
          for (int k = t; k < total; k += senders) {
            auto due = start + std::chrono::nanoseconds(static_cast<int64_t>(1e9 * k / real_rate));
            std::this_thread::sleep_until(due);
            Sent s;
            s.at = Clock::now();
            s.key = PatchIp(c, pods[static_cast<size_t>(k) % pods.size()], ip_counter++);
            s.answered = Clock::now();
            if (!s.key.empty()) sent[t].push_back(std::move(s));
          }
        });
      }
      for (auto& th : threads) th.join();
      auto sent_end = Clock::now();
      double window = std::chrono::duration<double>(sent_end - start).count();
      sim_stop = true;
      if (sim_thread.joinable()) sim_thread.join();
      // Let the tail arrive.
      std::vector<Sent> all;
      for (auto& v : sent) all.insert(all.end(), v.begin(), v.end());
      ashiato::testing::WaitFor(
          [&] {
            for (const auto& s : all) {
              if (!timer.When(s.key)) return false;
            }
            return true;
          },
          10000ms);
      double accepted = AcceptedReports(url) - accepted_before;
      std::vector<double> ms, api_ms, agent_ms, aggregator_ms;
      size_t missing = 0;
      for (const auto& s : all) {
        auto when = timer.When(s.key);
        if (!when) {
          ++missing;
          continue;
        }
        ms.push_back(Ms(s.at, *when));
        api_ms.push_back(Ms(s.at, s.answered));
        // The agent's line can come before the PATCH's answer is read.
        if (auto printed = agent_timer.When(s.key)) {
          agent_ms.push_back(Ms(s.answered, std::max(*printed, s.answered)));
          aggregator_ms.push_back(Ms(*printed, *when));
        }
      }
      std::string p = "e2e_latency." + mode + ".rate" + std::to_string(rate) + ".";
      Print(p + "changes", static_cast<double>(all.size()), "changes");
      Print(p + "achieved_rate", static_cast<double>(all.size()) / window, "changes/s");
      if (sim_agents) {
        Print(p + "simulated_rate", static_cast<double>(sim_accepted) / window, "changes/s");
      }
      Print(p + "p50", ashiato::bench::Percentile(ms, 0.50), "ms");
      Print(p + "p99", ashiato::bench::Percentile(ms, 0.99), "ms");
      Print(p + "max", ashiato::bench::Percentile(ms, 1.0), "ms");
      Print(p + "missing", static_cast<double>(missing), "changes");
      Print(p + "push_requests_per_s", accepted / window, "requests/s");
      double changes = static_cast<double>(all.size() + sim_accepted);
      Print(p + "changes_per_push", accepted > 0 ? changes / accepted : 0, "changes");
      PrintHop(p + "hop.api", api_ms);
      PrintHop(p + "hop.agent", agent_ms);
      PrintHop(p + "hop.aggregator", aggregator_ms);
    }
    for (auto& a : procs) {
      if (a) a->Stop(5000ms);
    }
    for (auto& r : agent_readers) r.join();
  }
  kill(agg, SIGTERM);
  int st = 0;
  waitpid(agg, &st, 0);
  reader.join();
  ashiato::testing::RemoveTree(dir);
  return status;
}
