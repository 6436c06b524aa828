// ashiato-aggregator: flags, signals, and the ConfigMap writer hook. The
// work is in aggregator/aggregator.h.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "aggregator/aggregator.h"
#include "aggregator/cm_backfill.h"
#include "aggregator/cm_writer.h"
#include "aggregator/cm_writer_flags.h"
#include "aggregator/flags.h"
#include "aggregator/store/downgrade.h"
#include "aggregator/token_review.h"
#include "common/cluster_name.h"
#include "common/kube_client.h"
#include "common/list_watch.h"
#include "common/log.h"

namespace {

// Feeds applied changes to the hourly ConfigMap writer.
class ConfigMapObserver : public ashiato::PodObserver {
 public:
  explicit ConfigMapObserver(ashiato::HourlyConfigMapWriter* writer) : writer_(writer) {}
  void OnPodPresent(const ashiato::PodRecord& pod, ashiato::SystemTime when) override {
    writer_->PodSeen(pod.namespace_, pod.name, pod.node_name, when);
  }
  void OnPodGone(const ashiato::PodRecord& pod, ashiato::SystemTime when) override {
    writer_->PodGone(pod.namespace_, pod.name, pod.node_name, when);
  }

 private:
  ashiato::HourlyConfigMapWriter* writer_;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace ashiato;
  CLI::App app{"ashiato-aggregator: collects pod records from ashiato agents"};
  AggregatorOptions options;
  AddAggregatorFlags(app, options);
  ConfigMapWriterOptions cm_options;
  AddConfigMapFlags(app, cm_options);
  CLI11_PARSE(app, argc, argv);
  SetupJsonLogging("aggregator", options.log_level);
  if (options.store_downgrade_to >= 0) {
    Status st = DowngradeStore(options.data_dir.empty() ? DefaultDataDir() : options.data_dir,
                               options.store_downgrade_to);
    if (!st.ok()) spdlog::error("{}", st.ToString());
    return st.ok() ? 0 : st.code() == StatusCode::kFailedPrecondition ? 3 : 2;
  }
  // One name for the cluster: deployment records default to it too.
  cm_options.cluster = ClusterLabel(options.cluster_name);
  if (options.deploy_flags.cluster.empty()) options.deploy_flags.cluster = options.cluster_name;
  // Deployment records: deployment-tracker's environment, the flags over it.
  auto deploy =
      LoadDeployConfig(options.deploy_flags, [](const char* k) { return std::getenv(k); });
  if (!deploy.ok()) {
    spdlog::error("deployment records: {}", deploy.status().ToString());
    return 2;
  }
  options.deploy = *deploy;

  // SIGTERM/SIGINT are taken with sigwait below: block them before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::string metrics_auth =
      options.metrics_auth.empty() ? options.read_auth : options.metrics_auth;
  bool reviews_readers = options.read_auth == "tokenreview" || metrics_auth == "tokenreview";
  std::optional<KubeConfig> kube;
  bool needs_cluster = options.auth == "tokenreview" || reviews_readers || cm_options.enabled ||
                       !options.config_map.empty();
  // The Node watch uses the cluster access the aggregator has anyway, or an
  // explicit --kubeconfig (not whatever ~/.kube/config a test machine has).
  if (needs_cluster || (options.watch_nodes && !options.kubeconfig.empty())) {
    auto cfg = ResolveKubeConfig(options.kubeconfig, options.context);
    if (cfg.ok()) {
      kube = *cfg;
    } else if (needs_cluster) {
      spdlog::error("cluster access: {}", cfg.status().ToString());
      return 1;
    } else {
      // Nothing else needs the API server: run without node addresses.
      spdlog::warn("node addresses off: no cluster access ({})", cfg.status().ToString());
    }
  }
  AuthApis apis;
  if (options.auth == "tokenreview") {
    apis.agent_tokens = std::make_unique<KubeTokenReviewer>(*kube);
    apis.pods = std::make_unique<KubePodLookup>(*kube);
  }
  if (reviews_readers) {
    apis.reader_tokens = std::make_unique<KubeTokenReviewer>(*kube);
    apis.access = std::make_unique<KubeAccessReviewer>(*kube);
  }
  // Before the aggregator, which uses it until it is destroyed.
  std::unique_ptr<KubeClient> node_client;
  std::unique_ptr<KubeWatchApi> node_api;
  if (options.watch_nodes && kube) {
    node_client = std::make_unique<KubeClient>(*kube, "ashiato-aggregator");
    node_api = std::make_unique<KubeWatchApi>(node_client.get());
  }
  std::unique_ptr<KubeClient> config_client;
  std::unique_ptr<KubeWatchApi> config_api;
  if (!options.config_map.empty()) {
    config_client = std::make_unique<KubeClient>(*kube, "ashiato-aggregator");
    config_api = std::make_unique<KubeWatchApi>(config_client.get());
  }
  auto aggregator = Aggregator::Create(options, std::move(apis), stdout);
  if (!aggregator.ok()) {
    spdlog::error("{}", aggregator.status().ToString());
    return aggregator.status().code() == StatusCode::kFailedPrecondition ? 3 : 2;
  }
  Aggregator& agg = **aggregator;
  if (node_api) agg.WatchNodes(node_api.get());
  if (config_api) agg.WatchLiveConfig(config_api.get());
  if (options.cluster_name.empty()) {
    spdlog::info("no --cluster-name (or CLUSTER): log lines and answers carry no \"cluster\"");
  }

  // ==== ConfigMap writer (issue 4): attached here when --store-in-cm is set. ====
  std::unique_ptr<HourlyConfigMapWriter> cm_writer;
  std::unique_ptr<ConfigMapObserver> cm_observer;
  if (cm_options.enabled) {
    cm_options.registry = agg.metrics().registry.get();
    cm_writer = std::make_unique<HourlyConfigMapWriter>(
        cm_options, NewKubeConfigMapApi(std::make_unique<KubeClient>(*kube, "ashiato-aggregator")),
        Clock::Real());
    cm_observer = std::make_unique<ConfigMapObserver>(cm_writer.get());
    agg.AddObserver(cm_observer.get());
    Status st = cm_writer->Start();
    if (!st.ok()) spdlog::warn("ConfigMap writer: {} (will retry)", st.ToString());
  }
  std::unique_ptr<ConfigMapBackfill> cm_backfill;
  // ==== end of the ConfigMap writer hook. ====

  Status st = agg.Start();
  if (!st.ok()) {
    spdlog::error("start: {}", st.ToString());
    return 1;
  }
  if (cm_writer) {
    cm_backfill = std::make_unique<ConfigMapBackfill>(&agg.store(), cm_writer.get(), Clock::Real());
    ClusterState* state = &agg.state();
    cm_backfill->SetFilter(
        [state](const Interval& iv) { return state->InScope(iv.uid, iv.namespace_); });
    cm_backfill->Start();
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);
  if (cm_backfill) cm_backfill->Stop();
  agg.Stop();
  if (cm_writer) cm_writer->Stop();
  std::fflush(stdout);
  return 0;
}
