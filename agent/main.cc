// ashiato-agent: watches the pods of one node, or in standalone mode of the
// whole cluster, optionally filling the hourly ConfigMaps (see docs/agent.md).
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/configmap_sink.h"
#include "agent/flags.h"
#include "agent/health_server.h"
#include "agent/pusher.h"
#include "agent/stdout_sink.h"
#include "aggregator/cm_api.h"
#include "aggregator/cm_writer.h"
#include "common/cluster_name.h"
#include "common/kube_client.h"
#include "common/live_config_watch.h"
#include "common/log.h"

int main(int argc, char** argv) {
  using namespace ashiato;
  AgentOptions options;
  if (auto rc = ParseAgentFlags(argc, argv, &options)) return *rc;
  SetupJsonLogging("agent", options.log_level);

  // SIGTERM/SIGINT are taken by a dedicated thread (sigwait), so block them
  // before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto config = ResolveKubeConfig(options.kubeconfig, options.context);
  if (!config.ok()) {
    spdlog::error("no Kubernetes API configuration: {}", config.status().message());
    return 1;
  }
  KubeClient client(*config, "ashiato-agent");
  KubePodApi api(&client);
  AgentMetrics metrics;
  StdoutSink stdout_sink(stdout, Clock::Real(), options.cluster_name);
  std::vector<EventSink*> sinks;
  if (!options.no_stdout) sinks.push_back(&stdout_sink);

  // Delivery to the aggregator (agent/pusher.h), when configured.
  std::unique_ptr<Pusher> pusher;
  if (!options.aggregator.empty()) {
    pusher = std::make_unique<Pusher>(PusherOptionsFromAgent(options), nullptr, &metrics);
    if (Status s = pusher->Start(); !s.ok()) {
      spdlog::error("cannot start the aggregator pusher: {}", s.ToString());
      return 1;
    }
    sinks.push_back(pusher.get());
  }

  // Standalone --store-in-cm: the aggregator's hourly ConfigMap writer, fed
  // by this process's own view (agent/configmap_sink.h).
  std::unique_ptr<HourlyConfigMapWriter> cm_writer;
  std::unique_ptr<ConfigMapSink> cm_sink;
  if (options.cm.enabled) {
    ConfigMapWriterOptions cm_options = options.cm;
    cm_options.cluster = ClusterLabel(options.cluster_name);
    cm_options.registry = &metrics.registry();
    cm_writer = std::make_unique<HourlyConfigMapWriter>(
        cm_options, NewKubeConfigMapApi(std::make_unique<KubeClient>(*config, "ashiato-agent")),
        Clock::Real());
    if (Status s = cm_writer->Start(); !s.ok()) {
      spdlog::warn("ConfigMap writer: {} (will retry)", s.ToString());
    }
    cm_sink = std::make_unique<ConfigMapSink>(cm_writer.get());
    sinks.push_back(cm_sink.get());
  }

  Agent agent(options, &api, sinks, &metrics);
  // The same thread hands freed heap pages back to the OS now and then: the
  // initial LIST is parsed into a large JSON tree that glibc would otherwise
  // keep resident (about 1 MiB of the agent's RSS with 110 pods).
  std::thread signal_thread([&agent, signals] {
    timespec wait = {5, 0};  // First trim soon after the initial list.
    int sig = -1;
    while ((sig = sigtimedwait(&signals, nullptr, &wait)) < 0) {
      malloc_trim(0);
      wait = {60, 0};
    }
    spdlog::info("signal {}: stopping", sig);
    agent.Stop();
  });
  signal_thread.detach();  // Blocked in sigwait until a signal; the process exits after Run.

  if (options.oneshot) {
    // The list's error, else the sinks' flush error (the ConfigMap write).
    Status s = agent.RunOneshot();
    if (!s.ok() && !agent.Listed()) {
      spdlog::error("cannot list pods from the Kubernetes API at {}: {}", config->server,
                    s.ToString());
      std::fprintf(stderr, "ashiato-agent: cannot list pods from %s: %s\n", config->server.c_str(),
                   s.ToString().c_str());
      return 1;
    }
    if (cm_writer) cm_writer->Stop();
    if (!s.ok()) {
      // Standalone mode has no pusher, so a ConfigMap writer's error is its own.
      std::string what =
          cm_writer ? "cannot write the hourly ConfigMaps in namespace " + options.cm.namespace_
                    : std::string("cannot deliver the listed pods");
      spdlog::error("{}: {}", what, s.ToString());
      std::fprintf(stderr, "ashiato-agent: %s: %s\n", what.c_str(), s.ToString().c_str());
      return 1;
    }
    return 0;
  }

  // The live configuration: agents apply its captureAnnotations (the scope
  // and log format are the aggregator's outputs).
  std::unique_ptr<KubeClient> config_client;
  std::unique_ptr<KubeWatchApi> config_api;
  std::unique_ptr<LiveConfigWatch> config_watch;
  if (!options.config_map.empty()) {
    auto ref = ParseConfigMapRef(options.config_map);  // Checked by the flags.
    config_client = std::make_unique<KubeClient>(*config, "ashiato-agent");
    config_api = std::make_unique<KubeWatchApi>(config_client.get());
    LiveConfig base;
    base.capture_entries = options.annotation_entries;
    std::sort(base.capture_entries.begin(), base.capture_entries.end());
    base.capture = options.annotations;
    LiveConfigWatch::Callbacks cb;
    auto in_force = std::make_shared<std::vector<std::string>>(base.capture_entries);
    cb.applied = [&agent, &metrics, in_force](const LiveConfig& c) {
      metrics.LiveConfigApplied();
      if (c.capture_entries == *in_force) return;
      *in_force = c.capture_entries;
      agent.SetAnnotationCapture(c.capture);
    };
    cb.refused = [&metrics](const Status&) { metrics.LiveConfigRefused(); };
    cb.valid = [&metrics] { metrics.LiveConfigValid(); };
    config_watch = std::make_unique<LiveConfigWatch>(ref->first, ref->second, base,
                                                     config_api.get(), std::move(cb));
    config_watch->Start();
  }

  std::unique_ptr<HttpServer> health;
  if (!options.listen_health.empty()) {
    auto server = StartHealthServer(
        options.listen_health, [&agent] { return agent.Ready(); }, &metrics);
    if (!server.ok()) {
      spdlog::error("--listen-health {}: {}", options.listen_health, server.status().message());
      return 1;
    }
    health = std::move(*server);
    spdlog::info("health and metrics on port {}", health->port());
  }

  if (options.standalone) {
    spdlog::info("standalone: watching the pods of every node on {}{}", config->server,
                 cm_writer
                     ? " and writing the hourly ConfigMaps in namespace " + options.cm.namespace_
                     : std::string());
  } else {
    spdlog::info("watching pods of node {} on {}", options.node, config->server);
  }
  Status s = agent.Run();
  if (config_watch) config_watch->Stop();
  Status flushed = agent.Flush(options.shutdown_grace);
  if (!flushed.ok()) spdlog::warn("flush on shutdown: {}", flushed.ToString());
  if (cm_writer) cm_writer->Stop();
  if (health) health->Stop();
  spdlog::info("stopped");
  return s.ok() ? 0 : 1;
}
