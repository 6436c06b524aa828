// Agent footprint: one ashiato-agent against kubesim with `--pods` pods on its
// node. The bench patches pod labels at a fixed rate and times each change
// until the agent prints it (kubesim change -> agent stdout line); memory and
// CPU come from /proc of the agent process.
// Prints one "name value unit" line per figure.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/http_client.h"
#include "tests/testing/subprocess.h"

using Clock = std::chrono::steady_clock;
using ashiato::testing::Subprocess;

namespace {

long ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

double ProcCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void Print(const char* name, double value, const char* unit) {
  std::printf("%s %.6g %s\n", name, value, unit);
  std::fflush(stdout);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string kubesim_bin, agent_bin, workdir = "/tmp";
  int pods = 110, changes = 1000, rate = 100, idle_seconds = 10;
  CLI::App app{"ashiato-agent footprint benchmark"};
  app.add_option("--kubesim", kubesim_bin)->required();
  app.add_option("--agent", agent_bin)->required();
  app.add_option("--workdir", workdir);
  app.add_option("--pods", pods, "pods on the agent's node");
  app.add_option("--changes", changes, "pod changes to time");
  app.add_option("--rate", rate, "changes per second");
  app.add_option("--idle-seconds", idle_seconds, "idle period measured for CPU");
  CLI11_PARSE(app, argc, argv);

  std::string dir = ashiato::testing::MakeTempDir(workdir + "/agent-bench");
  std::string kubeconfig = dir + "/kubeconfig";
  auto kubesim = Subprocess::Start({kubesim_bin, "--listen", "127.0.0.1:0", "--nodes", "1",
                                    "--pods-per-node", std::to_string(pods), "--kubeconfig-out",
                                    kubeconfig},
                                   dir + "/kubesim.out", dir + "/kubesim.err");
  if (!kubesim || !ashiato::testing::WaitFor([&] { return access(kubeconfig.c_str(), R_OK) == 0; },
                                             std::chrono::seconds(30))) {
    std::fprintf(stderr, "kubesim did not start; see %s\n", dir.c_str());
    return 1;
  }
  // Server and token from the kubeconfig kubesim wrote (plain HTTP here).
  std::string server, token;
  {
    std::ifstream in(kubeconfig);
    std::string line;
    while (std::getline(in, line)) {
      auto s = line.find("server:");
      if (s != std::string::npos) server = line.substr(line.find_first_not_of(" ", s + 7));
      auto t = line.find("token:");
      if (t != std::string::npos) token = line.substr(line.find_first_not_of(" ", t + 6));
    }
    auto strip = [](std::string& v) {
      v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
      v.erase(std::remove(v.begin(), v.end(), '\''), v.end());
    };
    strip(server);
    strip(token);
  }

  // The agent writes to a pipe we read, to time each line as it appears.
  int fds[2];
  if (pipe(fds) != 0) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addopen(&actions, 2, (dir + "/agent.err").c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<std::string> args = {agent_bin, "--kubeconfig", kubeconfig, "--node", "node-1"};
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t agent = -1;
  auto start = Clock::now();
  if (posix_spawn(&agent, cargs[0], &actions, nullptr, cargs.data(), environ) != 0) return 1;
  close(fds[1]);

  std::mutex mu;
  std::map<std::string, Clock::time_point> seen;  // label value -> when printed.
  size_t lines = 0;
  Clock::time_point synced{};
  std::thread reader([&] {
    FILE* f = fdopen(fds[0], "r");
    char* buf = nullptr;
    size_t cap = 0;
    while (getline(&buf, &cap, f) > 0) {
      auto now = Clock::now();
      auto j = nlohmann::json::parse(buf, nullptr, false);
      std::lock_guard<std::mutex> lock(mu);
      ++lines;
      if (static_cast<int>(lines) == pods) synced = now;
      if (j.is_object() && j.contains("labels") && j["labels"].contains("bench")) {
        seen.emplace(j["labels"]["bench"].get<std::string>(), now);
      }
    }
    free(buf);
  });

  if (!ashiato::testing::WaitFor(
          [&] {
            std::lock_guard<std::mutex> lock(mu);
            return static_cast<int>(lines) >= pods;
          },
          std::chrono::seconds(30))) {
    std::fprintf(stderr, "agent printed fewer than %d lines; see %s\n", pods, dir.c_str());
  }
  Print("agent.startup_to_synced", std::chrono::duration<double>(synced - start).count(), "s");

  // Idle: no changes, CPU should stay near zero.
  double cpu0 = ProcCpuSeconds(agent);
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
  double idle_cpu = ProcCpuSeconds(agent) - cpu0;
  Print("agent.idle_cpu_percent", 100.0 * idle_cpu / idle_seconds, "%");
  Print("agent.rss_steady_idle", ProcStatusKb(agent, "VmRSS") / 1024.0, "MiB");

  // List the pods to patch.
  ashiato::HttpClient client({.base_url = server, .insecure_skip_tls_verify = true,
                              .bearer_token = [token] { return token; }});
  auto list = client.Do("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1");
  if (!list.ok() || list->status != 200) {
    std::fprintf(stderr, "cannot list pods\n");
    return 1;
  }
  auto items = nlohmann::json::parse(list->body)["items"];
  std::map<std::string, Clock::time_point> sent;
  double cpu1 = ProcCpuSeconds(agent);
  auto period = std::chrono::microseconds(1000000 / std::max(1, rate));
  auto next = Clock::now();
  for (int i = 0; i < changes; ++i) {
    const auto& pod = items[static_cast<size_t>(i) % items.size()];
    std::string path = "/api/v1/namespaces/" + pod["metadata"]["namespace"].get<std::string>() +
                       "/pods/" + pod["metadata"]["name"].get<std::string>();
    std::string value = "c" + std::to_string(i);
    nlohmann::json patch = {{"metadata", {{"labels", {{"bench", value}}}}}};
    std::this_thread::sleep_until(next);
    next += period;
    sent[value] = Clock::now();
    auto r = client.Do("PATCH", path, patch.dump(),
                       {{"Content-Type", "application/merge-patch+json"}});
    if (!r.ok() || r->status != 200) std::fprintf(stderr, "patch %d failed\n", i);
  }
  ashiato::testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return seen.size() >= sent.size();
      },
      std::chrono::seconds(10));
  double churn_cpu = ProcCpuSeconds(agent) - cpu1;
  std::vector<double> latencies_ms;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [value, t] : sent) {
      auto it = seen.find(value);
      if (it != seen.end()) {
        latencies_ms.push_back(std::chrono::duration<double, std::milli>(it->second - t).count());
      }
    }
  }
  Print("agent.events_timed", static_cast<double>(latencies_ms.size()), "events");
  Print("agent.events_lost", static_cast<double>(sent.size() - latencies_ms.size()), "events");
  Print("agent.event_latency_p50", Percentile(latencies_ms, 0.50), "ms");
  Print("agent.event_latency_p99", Percentile(latencies_ms, 0.99), "ms");
  Print("agent.cpu_seconds_per_1000_events", 1000.0 * churn_cpu / std::max(1, changes), "s");
  Print("agent.rss_steady_after_churn", ProcStatusKb(agent, "VmRSS") / 1024.0, "MiB");
  Print("agent.rss_peak", ProcStatusKb(agent, "VmHWM") / 1024.0, "MiB");

  kill(agent, SIGTERM);
  int status = 0;
  waitpid(agent, &status, 0);
  reader.join();
  kubesim->Stop();
  ashiato::testing::RemoveTree(dir);
  return 0;
}
