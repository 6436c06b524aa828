// Agent footprint: one ashiato-agent against kubesim with `--pods` pods on its
// node. The bench patches pod labels at a fixed rate and times each change
// from the PATCH being sent to kubesim until the agent prints its line
// (kubesim change -> agent stdout line); memory (RSS, PSS, private/shared,
// per mapped file) and CPU come from /proc of the agent process.
// Prints one "name value unit" line per figure; the per-file memory table
// goes to stderr.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/http_client.h"
#include "common/kube_client.h"
#include "tests/bench/bench_util.h"
#include "tests/testing/subprocess.h"

using Clock = std::chrono::steady_clock;
using ashiato::bench::Print;
using ashiato::testing::Subprocess;

namespace {

// Prints RSS/PSS/private figures under `prefix` and the per-file table on stderr.
void PrintMemory(pid_t pid, const std::string& prefix) {
  auto by_file = ashiato::bench::SmapsByFile(pid);
  ashiato::bench::MapMemory total, anon, libs;
  for (const auto& [file, m] : by_file) {
    total.Add(m);
    if (file.front() == '[') {
      anon.Add(m);
    } else {
      libs.Add(m);
    }
  }
  Print(prefix + "rss", total.rss / 1024.0, "MiB");
  Print(prefix + "pss", total.pss / 1024.0, "MiB");
  Print(prefix + "private_dirty", total.private_dirty / 1024.0, "MiB");
  Print(prefix + "private_total", (total.private_dirty + total.private_clean) / 1024.0, "MiB");
  Print(prefix + "shared_clean", total.shared_clean / 1024.0, "MiB");
  Print(prefix + "anon_rss", anon.rss / 1024.0, "MiB");
  Print(prefix + "file_backed_rss", libs.rss / 1024.0, "MiB");
  std::vector<std::pair<std::string, ashiato::bench::MapMemory>> rows(by_file.begin(),
                                                                      by_file.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.rss > b.second.rss; });
  std::fprintf(stderr,
               "%s memory by mapping (KiB): rss pss private_dirty private_clean "
               "shared_clean file\n",
               prefix.c_str());
  for (const auto& [file, m] : rows) {
    if (m.rss == 0) continue;
    std::fprintf(stderr, "%7ld %7ld %7ld %7ld %7ld %s\n", m.rss, m.pss, m.private_dirty,
                 m.private_clean, m.shared_clean, file.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string kubesim_bin, agent_bin, workdir = "/tmp";
  int pods = 110, changes = 1000, rate = 100, idle_seconds = 10;
  bool tls = false;
  std::vector<std::string> agent_args;
  CLI::App app{"ashiato-agent footprint benchmark"};
  app.add_option("--kubesim", kubesim_bin)->required();
  app.add_option("--agent", agent_bin)->required();
  app.add_option("--workdir", workdir);
  app.add_option("--pods", pods, "pods on the agent's node");
  app.add_option("--changes", changes, "pod changes to time");
  app.add_option("--rate", rate, "changes per second");
  app.add_option("--idle-seconds", idle_seconds, "idle period measured for CPU");
  app.add_option("--agent-arg", agent_args, "extra agent flag (repeatable)");
  app.add_flag("--tls", tls, "kubesim over HTTPS with token auth, as in a real cluster");
  CLI11_PARSE(app, argc, argv);

  std::string dir = ashiato::testing::MakeTempDir(workdir + "/agent-bench");
  std::string kubeconfig = dir + "/kubeconfig";
  // A second node with as many pods, so the field selector has something to filter.
  std::vector<std::string> kubesim_args = {
      kubesim_bin,       "--listen",           "127.0.0.1:0",      "--nodes", "2",
      "--pods-per-node", std::to_string(pods), "--kubeconfig-out", kubeconfig};
  // HTTPS at https://127.0.0.1 with kubesim's own CA in the kubeconfig: the
  // agent verifies the server by its IP, as in-cluster at the Service IP.
  if (tls) kubesim_args.push_back("--tls");
  auto kubesim = Subprocess::Start(kubesim_args, dir + "/kubesim.out", dir + "/kubesim.err");
  if (!kubesim || !ashiato::testing::WaitFor([&] { return access(kubeconfig.c_str(), R_OK) == 0; },
                                             std::chrono::seconds(30))) {
    std::fprintf(stderr, "kubesim did not start; see %s\n", dir.c_str());
    return 1;
  }
  auto config = ashiato::LoadKubeConfigFile(kubeconfig);
  if (!config.ok()) {
    std::fprintf(stderr, "kubeconfig: %s\n", config.status().ToString().c_str());
    return 1;
  }

  std::vector<std::string> args = {agent_bin, "--kubeconfig", kubeconfig, "--node", "node-1"};
  args.insert(args.end(), agent_args.begin(), agent_args.end());
  int out_fd = -1;
  auto start = Clock::now();
  pid_t agent = ashiato::bench::SpawnWithStdoutPipe(args, dir + "/agent.err", &out_fd);
  if (agent < 0) return 1;

  std::mutex mu;
  std::map<std::string, Clock::time_point> seen;  // label value -> when printed.
  size_t lines = 0;
  Clock::time_point synced{};
  std::thread reader([&] {
    FILE* f = fdopen(out_fd, "r");
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
    fclose(f);
  });

  if (!ashiato::testing::WaitFor(
          [&] {
            std::lock_guard<std::mutex> lock(mu);
            return static_cast<int>(lines) >= pods;
          },
          std::chrono::seconds(30))) {
    std::fprintf(stderr, "agent printed fewer than %d lines; see %s\n", pods, dir.c_str());
    kill(agent, SIGKILL);
    return 1;
  }
  Print("agent.pods_on_node", pods, "pods");
  Print("agent.api_over_tls", tls ? 1 : 0, "flag");
  Print("agent.startup_to_synced", std::chrono::duration<double>(synced - start).count(), "s");

  // Idle: no changes, CPU should stay near zero.
  double cpu0 = ashiato::bench::ProcCpuSeconds(agent);
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
  double idle_cpu = ashiato::bench::ProcCpuSeconds(agent) - cpu0;
  Print("agent.idle_cpu_percent", 100.0 * idle_cpu / idle_seconds, "%");
  PrintMemory(agent, "agent.idle.");

  // kubesim over plain HTTP serves token-less requests; send the token anyway
  // so this works against --tls too.
  std::string token = config->token;
  ashiato::HttpClient client({.base_url = config->server,
                              .ca_pem = config->ca_pem,
                              .insecure_skip_tls_verify = config->insecure_skip_tls_verify,
                              .bearer_token = [token] { return token; }});
  auto list = client.Do("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1");
  if (!list.ok() || list->status != 200) {
    std::fprintf(stderr, "cannot list pods: %s\n",
                 list.ok() ? list->body.c_str() : list.status().ToString().c_str());
    return 1;
  }
  auto items = nlohmann::json::parse(list->body)["items"];
  if (items.empty()) return 1;
  std::map<std::string, Clock::time_point> sent;
  size_t failed = 0;
  double cpu1 = ashiato::bench::ProcCpuSeconds(agent);
  auto period = std::chrono::microseconds(1000000 / std::max(1, rate));
  auto churn_start = Clock::now();
  auto next = churn_start;
  for (int i = 0; i < changes; ++i) {
    const auto& pod = items[static_cast<size_t>(i) % items.size()];
    std::string path = "/api/v1/namespaces/" + pod["metadata"]["namespace"].get<std::string>() +
                       "/pods/" + pod["metadata"]["name"].get<std::string>();
    std::string value = "c" + std::to_string(i);
    nlohmann::json patch = {{"metadata", {{"labels", {{"bench", value}}}}}};
    std::this_thread::sleep_until(next);
    next += period;
    {
      std::lock_guard<std::mutex> lock(mu);
      sent[value] = Clock::now();
    }
    auto r =
        client.Do("PATCH", path, patch.dump(), {{"Content-Type", "application/merge-patch+json"}});
    if (!r.ok() || r->status != 200) {
      ++failed;
      std::lock_guard<std::mutex> lock(mu);
      sent.erase(value);
    }
  }
  double churn_secs = std::chrono::duration<double>(Clock::now() - churn_start).count();
  ashiato::testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return seen.size() >= sent.size();
      },
      std::chrono::seconds(10));
  double churn_cpu = ashiato::bench::ProcCpuSeconds(agent) - cpu1;
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
  Print("agent.changes_per_second", static_cast<double>(sent.size()) / churn_secs, "changes/s");
  Print("agent.patches_failed", static_cast<double>(failed), "requests");
  Print("agent.events_timed", static_cast<double>(latencies_ms.size()), "events");
  Print("agent.events_lost", static_cast<double>(sent.size() - latencies_ms.size()), "events");
  Print("agent.event_latency_p50", ashiato::bench::Percentile(latencies_ms, 0.50), "ms");
  Print("agent.event_latency_p99", ashiato::bench::Percentile(latencies_ms, 0.99), "ms");
  Print("agent.event_latency_max", ashiato::bench::Percentile(latencies_ms, 1.0), "ms");
  Print("agent.cpu_seconds_per_1000_events",
        1000.0 * churn_cpu / std::max<double>(1.0, static_cast<double>(latencies_ms.size())), "s");
  PrintMemory(agent, "agent.after_churn.");
  Print("agent.rss_peak", ashiato::bench::ProcStatusKb(agent, "VmHWM") / 1024.0, "MiB");

  kill(agent, SIGTERM);
  int status = 0;
  waitpid(agent, &status, 0);
  Print("agent.exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
        "code");
  reader.join();
  kubesim->Stop();
  ashiato::testing::RemoveTree(dir);
  return 0;
}
