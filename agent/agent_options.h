// AgentOptions: everything ashiato-agent is configured with (flags and env,
// parsed in agent/flags.cc). Plain struct, defaults here.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "aggregator/cm_writer.h"
#include "common/annotation_capture.h"

namespace ashiato {

struct AgentOptions {
  // --- Cluster access ---
  // Kubeconfig path; "" = $KUBECONFIG, then in-cluster, then ~/.kube/config.
  std::string kubeconfig;
  // Kubeconfig context; "" = current-context.
  std::string context;

  // --- What to watch ---
  // The node whose pods we watch (env NODE_NAME). Required unless
  // all_nodes (--oneshot --all-nodes, or standalone).
  std::string node;
  // No node field selector: with --oneshot (debugging), or in standalone mode.
  bool all_nodes = false;
  // --standalone (implied by --store-in-cm): pod-ashiato's mode. One process
  // watches every node's pods (one cluster-wide watch, or one list with
  // --oneshot), with no aggregator; sets all_nodes. Defaults then follow
  // pod-ashiato: --interval 30s, --cm-namespace "default".
  bool standalone = false;
  // Namespaces to keep, exact or glob ("*-system"); empty = all.
  std::vector<std::string> namespaces;
  // Keep pods whose name starts with this.
  std::string name_prefix;
  // Label selector, sent to the API server.
  std::string label_selector;
  // --capture-annotations: keys or "prefix*" entries (none = capture none).
  AnnotationCapture annotations;
  std::vector<std::string> annotation_entries;  // As given, for the live configuration.
  // --config-map NAMESPACE/NAME: the live configuration (docs/live-config.md);
  // agents take its captureAnnotations. "" = none.
  std::string config_map;
  // --cluster-name (env CLUSTER): the "cluster" field of every log line;
  // "" = no such field.
  std::string cluster_name;

  // --- Modes ---
  // List once, print every matching pod as SYNC, exit.
  bool oneshot = false;
  // How often the full view is pushed to the sinks (not a polling interval).
  std::chrono::milliseconds interval{std::chrono::minutes(5)};
  // Paginated quorum list (limit/continue, no resourceVersion=0) instead of
  // a list from the API server's watch cache.
  bool quorum_list = false;
  // Page size for the quorum list.
  int list_page_size = 500;
  // Watch timeoutSeconds is drawn uniformly from [min, max].
  int watch_timeout_min_seconds = 300;
  int watch_timeout_max_seconds = 600;
  // Backoff after API errors.
  std::chrono::milliseconds backoff_initial{800};
  std::chrono::milliseconds backoff_max{30000};
  // Request timeout for list calls.
  std::chrono::milliseconds request_timeout{60000};

  // --- Serving ---
  // "host:port" for /healthz, /readyz, /metrics; "" = off.
  std::string listen_health;
  // Time allowed to flush the sinks on SIGTERM.
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(10)};
  // Log level for stderr diagnostics.
  std::string log_level = "info";
  // Don't print events on stdout (e.g. when only pushing).
  bool no_stdout = false;
  // --log-all-every: print every pod in the view on stdout this often
  // (event "PERIODIC"), as pod-ashiato logged every pod each interval; 0 = off.
  std::chrono::milliseconds log_all_every{0};

  // --- Hourly ConfigMaps (standalone mode; aggregator/cm_writer.h) ---
  // --store-in-cm, --cm-namespace, --cm-debounce, --cm-retention,
  // --cm-max-bytes, the aggregator's flags. In standalone mode the debounce
  // defaults to --interval (pod-ashiato wrote once per interval).
  ConfigMapWriterOptions cm;

  // --- Delivery to the aggregator (agent/pusher.h) ---
  // Base URL of ashiato-aggregator; "" = none (stdout only).
  std::string aggregator;
  // Bearer token file for the aggregator, re-read on rotation.
  std::string aggregator_token_file;
  // CA bundle (PEM) trusted for an https aggregator URL; "" = the in-cluster
  // CA bundle (the service account's ca.crt) when running in a pod, else the
  // system store.
  std::string aggregator_ca_file;
  // Allow an http:// aggregator URL: the push token then travels in clear
  // text. Off: such a URL is a usage error.
  bool allow_insecure_aggregator = false;
  // Records per POST at most.
  int batch_max = 500;
  // Extra wait for more records before a push (0 = none: a record goes as
  // soon as no push is in flight; those arriving meanwhile go together).
  std::chrono::milliseconds batch_delay{0};
  // Pending records kept at most; when full, coalesced per pod.
  int buffer_max = 10000;
  // An empty report when nothing was pushed for this long (jittered down to
  // 90%); 0 = off. Bounds how late the agent notices a new aggregator.
  std::chrono::milliseconds heartbeat{std::chrono::seconds(10)};
  // Longest delay between retries of a failed push (Retry-After excepted).
  std::chrono::milliseconds push_backoff_max{std::chrono::seconds(5)};
  // Delivered changes are kept this long to be replayed to an aggregator
  // that lost them; 0 = keep none.
  std::chrono::milliseconds replay_window{std::chrono::hours(1)};
  // Pods whose latest delivered change is kept at most; 0 = keep none.
  int replay_max = 20000;
};

}  // namespace ashiato
