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
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <unordered_map>

#include "common/report.h"
#include "tests/testing/subprocess.h"

using SteadyClock = std::chrono::steady_clock;

namespace {

void Print(const std::string& name, double value, const char* unit) {
  std::printf("%s %.6g %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

long ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

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

ashiato::PodRecord MakePod(int agent, int i, uint64_t rv) {
  ashiato::PodRecord p;
  p.namespace_ = (i % 3 == 0) ? "default" : (i % 3 == 1 ? "kube-system" : "team-a");
  p.name = "web-7d4b9c8f6d-" + std::to_string(agent) + "x" + std::to_string(i);
  p.uid = "uid-" + std::to_string(agent) + "-" + std::to_string(i);
  p.node_name = "node-" + std::to_string(agent + 1);
  p.pod_ip = "10." + std::to_string((agent >> 8) & 255) + "." + std::to_string(agent & 255) + "." +
             std::to_string(i + 2);
  p.pod_ips = {p.pod_ip};
  p.host_ip = "192.168." + std::to_string((agent >> 8) & 255) + "." + std::to_string(agent & 255);
  p.phase = "Running";
  for (const char* t : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
    p.conditions.push_back({t, "True", "2026-11-24T03:00:00Z"});
  }
  p.containers.push_back({"web", "nginx:1.27",
                          "docker.io/library/nginx@sha256:"
                          "0f0a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"});
  p.owner_kind = "Deployment";
  p.owner_name = "web";
  p.owner_inferred = true;
  p.labels = {{"app", "web"}, {"pod-template-hash", "7d4b9c8f6d"}};
  p.creation_timestamp = "2026-11-24T03:00:00Z";
  p.resource_version = std::to_string(rv);
  return p;
}

struct Post {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body;
  long status = 0;
};

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

class Generator {
 public:
  Generator(std::string url, int connections) : url_(std::move(url)) {
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(connections));
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(connections));
  }
  ~Generator() { curl_multi_cleanup(multi_); }

  // Sends every body, `parallel` in flight; returns how many got 2xx.
  size_t SendAll(const std::vector<std::string>& bodies, size_t parallel) {
    std::vector<Post*> posts;
    for (const auto& b : bodies) posts.push_back(NewPost(b));
    size_t next = 0, active = 0, ok = 0;
    int running = 0;
    while (next < posts.size() || active > 0) {
      while (next < posts.size() && active < parallel) {
        curl_multi_add_handle(multi_, posts[next++]->easy);
        ++active;
      }
      curl_multi_perform(multi_, &running);
      int msgs = 0;
      while (CURLMsg* m = curl_multi_info_read(multi_, &msgs)) {
        if (m->msg != CURLMSG_DONE) continue;
        long code = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300) ++ok;
        curl_multi_remove_handle(multi_, m->easy_handle);
        --active;
      }
      if (active > 0) curl_multi_poll(multi_, nullptr, 0, 50, nullptr);
    }
    for (auto* p : posts) {
      curl_easy_cleanup(p->easy);
      curl_slist_free_all(p->headers);
      delete p;
    }
    return ok;
  }

 private:
  Post* NewPost(const std::string& body) {
    auto* p = new Post();
    p->body = body;
    p->easy = curl_easy_init();
    curl_easy_setopt(p->easy, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->body.data());
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(p->body.size()));
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, &Discard);
    curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->easy, CURLOPT_TIMEOUT, 60L);
    p->headers = curl_slist_append(nullptr, "Content-Type: application/json");
    p->headers = curl_slist_append(p->headers, "Authorization: Bearer bench");
    p->headers = curl_slist_append(p->headers, "Expect:");
    curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
    return p;
  }

  std::string url_;
  CURLM* multi_;
};

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
  std::vector<int> rates = {20, 200, 2000};
  CLI::App app{"ashiato-aggregator ingest benchmark"};
  app.add_option("--aggregator", aggregator_bin)->required();
  app.add_option("--workdir", workdir);
  app.add_option("--agents", agents);
  app.add_option("--pods-per-agent", pods_per_agent);
  app.add_option("--churn-seconds", churn_seconds);
  app.add_option("--saturate-seconds", saturate_seconds);
  app.add_option("--rates", rates);
  CLI11_PARSE(app, argc, argv);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (sysconf(_SC_NPROCESSORS_ONLN) > 1) Pin(0, 1);

  std::string dir = ashiato::testing::MakeTempDir(workdir + "/ingest-bench");
  int port = FreePort();
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  // The unified log goes to a pipe so each line is timed when it appears.
  int fds[2];
  if (pipe(fds) != 0) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addopen(&actions, 2, (dir + "/aggregator.err").c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<std::string> args = {aggregator_bin, "--listen", "127.0.0.1:" + std::to_string(port),
                                   "--auth", "none", "--max-connections",
                                   std::to_string(agents + 1000)};
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t agg = -1;
  if (posix_spawn(&agg, cargs[0], &actions, nullptr, cargs.data(), environ) != 0) return 1;
  close(fds[1]);
  Pin(agg, 0);

  std::mutex mu;
  std::unordered_map<std::string, SteadyClock::time_point> logged;  // "uid@rv" -> when.
  std::atomic<size_t> lines{0};
  std::thread reader([&] {
    FILE* f = fdopen(fds[0], "r");
    char* buf = nullptr;
    size_t cap = 0;
    while (getline(&buf, &cap, f) > 0) {
      auto now = SteadyClock::now();
      ++lines;
      auto j = nlohmann::json::parse(buf, nullptr, false);
      if (!j.is_object()) continue;
      std::string key = j.value("uid", "") + "@" + j.value("resource_version", "");
      std::lock_guard<std::mutex> lock(mu);
      logged.emplace(std::move(key), now);
    }
    free(buf);
  });

  ashiato::testing::WaitFor(
      [&] {
        std::string out;
        return ashiato::testing::RunCommand({"curl", "-sf", url + "/healthz"}, &out,
                                            std::chrono::seconds(2)) == 0;
      },
      std::chrono::seconds(20));

  Generator gen(url + "/v1/reports", std::min(agents, 2000));
  uint64_t rv = 1000;
  std::vector<std::string> epochs;
  std::vector<uint64_t> seqs(static_cast<size_t>(agents), 0);
  for (int a = 0; a < agents; ++a) epochs.push_back("bench-" + std::to_string(a));

  // Phase 1: every agent's snapshot.
  std::vector<std::string> bodies;
  for (int a = 0; a < agents; ++a) {
    ashiato::Report r{.node = "node-" + std::to_string(a + 1), .epoch = epochs[a],
                      .seq = ++seqs[a], .snapshot = true};
    for (int i = 0; i < pods_per_agent; ++i) r.records.push_back({.pod = MakePod(a, i, ++rv)});
    bodies.push_back(ashiato::EncodeReport(r));
  }
  size_t total_pods = static_cast<size_t>(agents) * pods_per_agent;
  Print("ingest.snapshot_body_bytes_avg", static_cast<double>(bodies[0].size()), "bytes");
  auto t0 = SteadyClock::now();
  size_t ok = gen.SendAll(bodies, 256);
  double snap_secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  ashiato::testing::WaitFor([&] { return lines.load() >= total_pods; }, std::chrono::seconds(60));
  double snap_logged = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  Print("ingest.snapshot_reports_ok", static_cast<double>(ok), "reports");
  Print("ingest.snapshot_records_per_second", static_cast<double>(total_pods) / snap_secs,
        "records/s");
  Print("ingest.snapshot_seconds_to_last_log_line", snap_logged, "s");
  long rss_kb = ProcStatusKb(agg, "VmRSS");
  Print("ingest.tracked_pods", static_cast<double>(total_pods), "pods");
  Print("ingest.aggregator_rss_after_snapshots", rss_kb / 1024.0, "MiB");
  Print("ingest.memory_per_tracked_pod", rss_kb * 1024.0 / static_cast<double>(total_pods),
        "bytes");

  // Phase 2: saturation with batches of 500 changed records.
  std::mt19937 rng(7);
  size_t sat_records = 0;
  auto sat_end = SteadyClock::now() + std::chrono::seconds(saturate_seconds);
  auto sat_start = SteadyClock::now();
  while (SteadyClock::now() < sat_end) {
    bodies.clear();
    for (int b = 0; b < 16; ++b) {
      int a = static_cast<int>(rng() % agents);
      ashiato::Report r{.node = "node-" + std::to_string(a + 1), .epoch = epochs[a],
                        .seq = ++seqs[a]};
      for (int k = 0; k < 500; ++k) {
        auto pod = MakePod(a, static_cast<int>(rng() % pods_per_agent), ++rv);
        pod.labels["gen"] = std::to_string(rv);
        r.records.push_back({.pod = pod});
      }
      sat_records += r.records.size();
      bodies.push_back(ashiato::EncodeReport(r));
    }
    gen.SendAll(bodies, 16);
  }
  double sat_secs = std::chrono::duration<double>(SteadyClock::now() - sat_start).count();
  Print("ingest.saturated_records_per_second", static_cast<double>(sat_records) / sat_secs,
        "records/s");

  // Phase 3: churn at fixed rates; each change is one record in its own
  // agent's batch, sent in 100 ms ticks as an agent's batching would.
  for (int rate : rates) {
    std::unordered_map<std::string, SteadyClock::time_point> sent;
    auto end = SteadyClock::now() + std::chrono::seconds(churn_seconds);
    auto tick = SteadyClock::now();
    double carry = 0;
    while (SteadyClock::now() < end) {
      tick += std::chrono::milliseconds(100);
      carry += rate / 10.0;
      int n = static_cast<int>(carry);
      carry -= n;
      bodies.clear();
      std::vector<std::string> keys;
      for (int k = 0; k < n; ++k) {
        int a = static_cast<int>(rng() % agents);
        ashiato::Report r{.node = "node-" + std::to_string(a + 1), .epoch = epochs[a],
                          .seq = ++seqs[a]};
        auto pod = MakePod(a, static_cast<int>(rng() % pods_per_agent), ++rv);
        pod.labels["gen"] = std::to_string(rv);
        keys.push_back(pod.uid + "@" + pod.resource_version);
        r.records.push_back({.pod = pod});
        bodies.push_back(ashiato::EncodeReport(r));
      }
      auto now = SteadyClock::now();
      for (auto& k : keys) sent.emplace(k, now);
      gen.SendAll(bodies, 256);
      std::this_thread::sleep_until(tick);
    }
    ashiato::testing::WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          for (const auto& [k, t] : sent) {
            if (!logged.count(k)) return false;
          }
          return true;
        },
        std::chrono::seconds(10));
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
    Print(prefix + "not_logged", static_cast<double>(lost), "changes");
    Print(prefix + "latency_p50", Percentile(lat, 0.5), "ms");
    Print(prefix + "latency_p99", Percentile(lat, 0.99), "ms");
  }
  Print("ingest.aggregator_rss_peak", ProcStatusKb(agg, "VmHWM") / 1024.0, "MiB");

  kill(agg, SIGTERM);
  int status = 0;
  waitpid(agg, &status, 0);
  reader.join();
  ashiato::testing::RemoveTree(dir);
  curl_global_cleanup();
  return 0;
}
