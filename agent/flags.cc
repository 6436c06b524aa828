#include "agent/flags.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>

#include "aggregator/cm_writer_flags.h"
#include "common/cluster_name.h"
#include "common/live_config.h"

namespace ashiato {

std::optional<int> ParseAgentFlags(int argc, const char* const* argv, AgentOptions* o) {
  CLI::App app{"ashiato-agent: watches the pods of one node and prints one JSON line per change"};
  std::string interval = "5m", shutdown_grace = "10s", batch_delay = "0s";
  std::string backoff_initial = "800ms", backoff_max = "30s";
  std::string heartbeat = "10s", push_backoff_max = "5s", replay_window = "1h";
  std::string log_all_every = "0";
  app.add_option("--kubeconfig", o->kubeconfig,
                 "Kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  app.add_option("--context", o->context, "Kubeconfig context (default: current-context)");
  app.add_option("--node", o->node, "Node whose pods to watch")->envname("NODE_NAME");
  app.add_flag("--all-nodes", o->all_nodes, "With --oneshot: every node's pods (debugging)");
  app.add_flag("--standalone", o->standalone,
               "pod-ashiato mode: one process, one cluster-wide watch, no aggregator "
               "(implied by --store-in-cm)");
  app.add_option("--namespace", o->namespaces, "Namespace, exact or glob (repeatable)")
      ->envname("ASHIATO_NAMESPACE")
      ->delimiter(',');
  app.add_option("--name", o->name_prefix, "Pod name prefix")->envname("ASHIATO_NAME");
  app.add_option("--label", o->label_selector, "Label selector (sent to the API server)")
      ->envname("ASHIATO_LABEL");
  std::vector<std::string> capture_annotations;
  app.add_option("--capture-annotations", capture_annotations,
                 "Pod annotations to record: keys or prefixes ending in * (comma-separated; "
                 "default none)")
      ->envname("ASHIATO_CAPTURE_ANNOTATIONS")
      ->delimiter(',');
  app.add_option("--config-map", o->config_map,
                 "Live configuration: NAMESPACE/NAME of a ConfigMap whose captureAnnotations is "
                 "applied without restart (docs/live-config.md; needs get, list and watch on it)")
      ->envname("ASHIATO_CONFIG_MAP");
  app.add_option("--cluster-name", o->cluster_name,
                 "Cluster name for the \"cluster\" field of every log line (default: none)")
      ->envname("CLUSTER");
  app.add_flag("--oneshot", o->oneshot, "List once, print every pod as SYNC, exit");
  auto* interval_flag =
      app.add_option("--interval", interval,
                     "How often the full view is resynced to the sinks (default 5m; "
                     "standalone: 30s, and the ConfigMap write interval)")
          ->envname("ASHIATO_INTERVAL");
  app.add_flag("--quorum-list", o->quorum_list,
               "Paginated list from etcd instead of resourceVersion=0 (watch cache)");
  app.add_option("--list-page-size", o->list_page_size, "Page size of quorum lists");
  app.add_option("--watch-timeout-min", o->watch_timeout_min_seconds,
                 "Lower bound of the random watch timeoutSeconds");
  app.add_option("--watch-timeout-max", o->watch_timeout_max_seconds,
                 "Upper bound of the random watch timeoutSeconds");
  app.add_option("--backoff-initial", backoff_initial, "First retry delay after an API error");
  app.add_option("--backoff-max", backoff_max, "Longest retry delay after API errors");
  app.add_option("--listen-health", o->listen_health,
                 "host:port for /healthz, /readyz, /metrics (default: off)")
      ->envname("ASHIATO_LISTEN_HEALTH");
  app.add_option("--shutdown-grace", shutdown_grace, "Time to flush on SIGTERM")
      ->envname("ASHIATO_SHUTDOWN_GRACE");
  app.add_option("--log-level", o->log_level, "debug, info, warn, error")
      ->envname("ASHIATO_LOG_LEVEL");
  app.add_flag("--no-stdout", o->no_stdout, "Do not print events on stdout");
  app.add_option("--log-all-every", log_all_every,
                 "Print every pod in the view on stdout this often (event PERIODIC; 0 = off)")
      ->envname("ASHIATO_LOG_ALL_EVERY");
  // The aggregator's ConfigMap flags, for standalone mode. pod-ashiato's
  // default namespace, not the pod's own.
  AddConfigMapFlags(app, o->cm, "default");
  auto* cm_debounce_flag = app.get_option("--cm-debounce");
  cm_debounce_flag->description(
      "Write changed ConfigMap shards at most once per this interval (default: --interval)");
  app.add_option("--aggregator", o->aggregator,
                 "ashiato-aggregator base URL (default: none, stdout only)")
      ->envname("ASHIATO_AGGREGATOR");
  app.add_option("--aggregator-token-file", o->aggregator_token_file,
                 "Bearer token file for the aggregator (re-read on rotation)")
      ->envname("ASHIATO_AGGREGATOR_TOKEN_FILE");
  app.add_option("--aggregator-ca-file", o->aggregator_ca_file,
                 "CA bundle (PEM) trusted for an https aggregator (default: the in-cluster CA "
                 "bundle in a pod, else the system store)")
      ->envname("ASHIATO_AGGREGATOR_CA_FILE");
  app.add_flag("--allow-insecure-aggregator", o->allow_insecure_aggregator,
               "Allow an http:// --aggregator: the push token is then sent in clear text "
               "(tests, or a service mesh that encrypts)")
      ->envname("ASHIATO_ALLOW_INSECURE_AGGREGATOR");
  app.add_option("--batch-max", o->batch_max, "Records per push at most");
  app.add_option(
      "--batch-delay", batch_delay,
      "Extra wait for more records before a push (0s: at once when no push is in flight)");
  app.add_option("--buffer-max", o->buffer_max, "Pending records kept at most (then coalesced)");
  app.add_option("--heartbeat", heartbeat,
                 "Empty push after this long without one (jittered to 90-100%; 0 = off)");
  app.add_option("--push-backoff-max", push_backoff_max, "Longest delay between push retries");
  app.add_option("--replay-window", replay_window,
                 "How long delivered changes are kept to replay to an aggregator that lost them "
                 "(0 = off)");
  app.add_option("--replay-max", o->replay_max,
                 "Pods whose latest delivered change is kept for a replay, at most (0 = off)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto usage = [](const std::string& msg) {
    std::fprintf(stderr, "ashiato-agent: %s\n", msg.c_str());
    return 2;
  };
  for (auto [text, out, name] :
       {std::tuple{&interval, &o->interval, "--interval"},
        std::tuple{&shutdown_grace, &o->shutdown_grace, "--shutdown-grace"},
        std::tuple{&batch_delay, &o->batch_delay, "--batch-delay"},
        std::tuple{&backoff_initial, &o->backoff_initial, "--backoff-initial"},
        std::tuple{&backoff_max, &o->backoff_max, "--backoff-max"},
        std::tuple{&heartbeat, &o->heartbeat, "--heartbeat"},
        std::tuple{&push_backoff_max, &o->push_backoff_max, "--push-backoff-max"},
        std::tuple{&replay_window, &o->replay_window, "--replay-window"},
        std::tuple{&log_all_every, &o->log_all_every, "--log-all-every"}}) {
    auto d = ParseDuration(*text);
    if (!d) return usage(std::string(name) + ": not a duration: \"" + *text + "\" (e.g. 30s, 5m)");
    *out = *d;
  }
  if (o->cm.enabled) o->standalone = true;
  if (o->standalone) {
    if (!o->node.empty()) {
      return usage(
          "standalone mode (--standalone, --store-in-cm) watches every node: drop --node "
          "and unset NODE_NAME (\"" +
          o->node + "\")");
    }
    if (!o->aggregator.empty()) {
      return usage(
          "standalone mode (--standalone, --store-in-cm) has no aggregator: drop "
          "--aggregator, or run one agent per node with --node instead");
    }
    o->all_nodes = true;
    if (interval_flag->count() == 0) o->interval = std::chrono::seconds(30);
    if (cm_debounce_flag->count() == 0) {
      o->cm.debounce = std::chrono::duration_cast<std::chrono::milliseconds>(o->interval);
    }
  }
  auto capture = AnnotationCapture::Parse(capture_annotations);
  if (!capture.ok()) return usage(capture.status().message());
  o->annotations = std::move(*capture);
  o->annotation_entries = capture_annotations;
  if (!o->config_map.empty()) {
    if (auto ref = ParseConfigMapRef(o->config_map); !ref.ok())
      return usage(ref.status().message());
    if (o->oneshot) return usage("--config-map has no effect with --oneshot");
  }
  if (Status st = ValidateClusterName(o->cluster_name); !st.ok()) return usage(st.message());
  if (o->interval.count() <= 0) return usage("--interval must be positive");
  if (o->log_all_every.count() < 0) return usage("--log-all-every must not be negative");
  if (o->log_all_every.count() > 0 && o->oneshot) {
    return usage("--log-all-every has no effect with --oneshot, which prints every pod once");
  }
  if (o->push_backoff_max.count() <= 0) return usage("--push-backoff-max must be positive");
  if (o->replay_max < 0) return usage("--replay-max must not be negative");
  if (o->all_nodes && !o->oneshot && !o->standalone) {
    return usage(
        "--all-nodes is only allowed with --oneshot: a continuous cluster-wide watch "
        "per node would overload the API server (one process watching the whole cluster "
        "is --standalone)");
  }
  if (o->aggregator.rfind("http://", 0) == 0 && !o->allow_insecure_aggregator) {
    return usage("refusing to send the push token over plain http to " + o->aggregator +
                 ": use https:// (with --aggregator-ca-file) or --allow-insecure-aggregator");
  }
  if (!o->aggregator.empty() && o->aggregator.rfind("http://", 0) != 0 &&
      o->aggregator.rfind("https://", 0) != 0) {
    return usage(
        "--aggregator must be an https:// (or, with --allow-insecure-aggregator, "
        "http://) URL, not \"" +
        o->aggregator + "\"");
  }
  if (o->node.empty() && !o->all_nodes) {
    return usage("--node (or NODE_NAME) is required (or --oneshot --all-nodes, or --standalone)");
  }
  if (o->watch_timeout_min_seconds <= 0 ||
      o->watch_timeout_max_seconds < o->watch_timeout_min_seconds) {
    return usage("need 0 < --watch-timeout-min <= --watch-timeout-max");
  }
  return std::nullopt;
}

}  // namespace ashiato
