// kubesim: a Kubernetes API server simulator. See docs/kubesim.md.
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/log.h"
#include "tests/kubesim/kubesim.h"

int main(int argc, char** argv) {
  kubesim::KubesimOptions o;
  std::string log_level = "info";
  CLI::App app{"kubesim: a Kubernetes API server simulator"};
  app.add_option("--listen", o.listen, "Address to serve on (port 0 = any free port)")
      ->capture_default_str();
  app.add_option("--nodes", o.nodes, "Nodes at start (node-1..node-N)")->capture_default_str();
  app.add_option("--pods-per-node", o.pods_per_node, "Pods per node at start")
      ->capture_default_str();
  app.add_option("--kubeconfig-out", o.kubeconfig_out, "Write a kubeconfig here once serving");
  app.add_flag("--tls", o.tls,
               "Serve HTTPS with a generated CA (CA data goes into the kubeconfig)");
  app.add_option("--churn", o.churn, "Pod changes per second (create/run/ready-flip/delete)")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed for names, UIDs and churn")->capture_default_str();
  app.add_option("--state-file", o.state_file,
                 "Load state from here at start if present; save on shutdown");
  app.add_option("--watch-cache-size", o.history_size,
                 "Events kept for resuming watches (older RVs get 410)")
      ->capture_default_str();
  app.add_option("--bookmark-interval-ms", o.bookmark_interval_ms,
                 "BOOKMARK interval for watches that allow them")
      ->capture_default_str();
  app.add_option("--request-log", o.request_log,
                 "Append one JSON line per API request to this file");
  app.add_option("--request-ring", o.request_ring, "Requests kept for GET /kubesim/v1/requests")
      ->capture_default_str();
  app.add_option("--admin-token", o.admin_token, "Admin bearer token (default: random)");
  app.add_option("--api-audience", o.api_audience, "The API server's token audience")
      ->capture_default_str();
  app.add_option("--kubelet-delay-ms", o.kubelet_delay_ms,
                 "Schedule and run created pods after this delay like scheduler+kubelet (-1 = off)")
      ->capture_default_str();
  app.add_option("--pod-deletion-delay-ms", o.pod_deletion_delay_ms,
                 "Graceful pod deletes set deletionTimestamp and remove the pod after this delay "
                 "(0 = at once)")
      ->capture_default_str();
  app.add_option("--error-rate", o.error_rate, "Fault: fraction of API requests failed")
      ->capture_default_str();
  app.add_option("--error-code", o.error_code, "Fault: status for failed requests (500, 503, 429)")
      ->capture_default_str();
  app.add_option("--latency-ms", o.latency_ms, "Fault: delay every API response")
      ->capture_default_str();
  app.add_option("--drop-watches-every", o.drop_watches_every_seconds,
                 "Fault: close all watches every N seconds")
      ->capture_default_str();
  bool anonymous = false;
  auto* anon =
      app.add_option("--anonymous-auth", anonymous,
                     "Serve requests without a token (default: on without --tls; kubectl sends no "
                     "token over plain HTTP)");
  app.add_option("--threads", o.threads, "HTTP event-loop threads")->capture_default_str();
  app.add_option("--kube-version", o.kube_version,
                 "Kubernetes version served, 1.MINOR: /version and the TokenReview extras of "
                 "pod-bound tokens (before 1.30: pod-name and pod-uid only)")
      ->capture_default_str();
  app.add_option("--authorization-mode", o.authorization_mode,
                 "AlwaysAllow, or RBAC: authorize kubesim's own requests with its Roles and "
                 "bindings (SubjectAccessReview evaluates RBAC either way)")
      ->check(CLI::IsMember({"AlwaysAllow", "RBAC"}))
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections, "Connection limit")->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warn, error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (anon->count() > 0) o.anonymous_auth = anonymous;

  ashiato::SetupJsonLogging("kubesim", log_level);
  // Thousands of watches need thousands of descriptors.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  // Block the stop signals in every thread; main waits for them below.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto sim = kubesim::Kubesim::Start(o);
  if (!sim.ok()) {
    spdlog::error("kubesim: {}", sim.status().ToString());
    std::fprintf(stderr, "kubesim: %s\n", sim.status().ToString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("signal {}: stopping", sig);
  (*sim)->Stop();
  return 0;
}
