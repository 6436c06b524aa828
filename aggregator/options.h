// AggregatorOptions: what ashiato-aggregator is configured with (flags in
// aggregator/flags.cc). Plain struct, defaults here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "aggregator/deploy/config.h"

namespace ashiato {

struct AggregatorOptions {
  // --listen: "host:port", ":port" (all interfaces).
  std::string listen = ":8080";
  // --kubeconfig / --context: how to reach the API server (TokenReview and
  // ConfigMaps); "" = $KUBECONFIG, in-cluster, ~/.kube/config.
  std::string kubeconfig;
  std::string context;
  // --auth: "tokenreview" (default) or "none" (tests, benchmarks only).
  std::string auth = "tokenreview";
  // --agent-identity: the only username allowed to push reports.
  std::string agent_identity = "system:serviceaccount:ashiato:ashiato-agent";
  // --audience: the audience agent tokens must be bound to.
  std::string audience = "ashiato";
  // --token-cache-ttl: how long a TokenReview answer is reused.
  std::chrono::milliseconds token_cache_ttl{std::chrono::seconds(30)};
  // --allow-unbound-agent-tokens: accept agent tokens bound to no pod (so to
  // no node). Off: refused, since such a token could push for any node.
  bool allow_unbound_agent_tokens = false;
  // --read-auth: "tokenreview" (default: every /v1/* read needs a bearer
  // token, answers are filtered by SubjectAccessReview) or "none" (anyone
  // who reaches the port reads everything; a warning at start).
  std::string read_auth = "tokenreview";
  // --read-audience: audience reader tokens must carry; "" = the API
  // server's own (then the aggregator sees tokens valid for the API server).
  std::string read_audience = "ashiato";
  // --metrics-auth: "tokenreview" (get on the non-resource URL /metrics, as
  // kube-rbac-proxy) or "none"; "" = the same as --read-auth.
  std::string metrics_auth;
  // --access-cache-ttl: how long a SubjectAccessReview answer is reused.
  std::chrono::milliseconds access_cache_ttl{std::chrono::seconds(10)};
  // --tls-cert-file / --tls-key-file: serve HTTPS with these PEM files,
  // re-read when they change (checked every tls_reload_interval).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::chrono::milliseconds tls_reload_interval{std::chrono::seconds(10)};
  // --max-body-bytes: larger report bodies get 413 (after decompression too).
  size_t max_body_bytes = 16 << 20;
  // --max-connections: connections beyond this are refused at accept.
  unsigned max_connections = 20000;
  // --threads: HTTP event threads. Handlers may wait on a TokenReview cache
  // miss, so more than one keeps queries answering meanwhile.
  unsigned threads = 4;
  // --stale-after: an agent silent this long is marked stale.
  std::chrono::milliseconds stale_after{std::chrono::minutes(3)};
  // --data-dir: the history store's directory (<dir>/ashiato.db). Default:
  // /var/lib/ashiato in a pod, ./ashiato-data elsewhere (DefaultDataDir()).
  std::string data_dir;
  // --retention: history older than this is deleted (0 = keep all).
  std::chrono::milliseconds retention{std::chrono::hours(24 * 30)};
  // --retention-bytes: oldest history is deleted while the store is larger (0 = no limit).
  uint64_t retention_bytes = 0;
  // --store-sync: "normal" survives a process crash; "full" also a power loss.
  std::string store_sync = "normal";
  // --store-cache: the store writer's SQLite page cache (StoreOptions::cache_kib).
  uint64_t store_cache_bytes = 16ull << 20;
  // How often retention runs.
  std::chrono::milliseconds retention_interval{std::chrono::minutes(1)};
  // --store-downgrade-to: take the store back to this schema version and
  // exit (rolling back to an older release); -1 = serve as usual.
  int store_downgrade_to = -1;
  // Test hook (--store-max-pages): a maximum store size in pages, to simulate a full disk.
  int64_t store_max_pages = 0;
  // --image-log: where IMAGE_ADDED / IMAGE_REMOVED go: "json" (the unified
  // log on stdout), "text" ("[+|image]  nginx:1.27  [ns|pod]" on stderr),
  // or "both".
  std::string image_log = "json";
  // Deployment records (docs/deployment-records.md): the --deployment-*
  // flags as parsed, and the configuration main() resolves from them and
  // the environment (ORG, BASE_URL, ...). Disabled unless deploy.org is set.
  DeployFlags deploy_flags;
  DeployConfig deploy;
  // --cluster-name (env CLUSTER): the "cluster" field of every unified log
  // line and /v1 answer, and the ConfigMaps' ashiato.io/cluster label; ""
  // omits them (common/cluster_name.h).
  std::string cluster_name;
  // --watch-nodes: one cluster-wide Node list+watch for node addresses and
  // topology (aggregator/node_watch.h).
  bool watch_nodes = true;
  // How long Start() waits for the first node list before serving.
  std::chrono::milliseconds node_sync_timeout{std::chrono::seconds(5)};
  // --config-map NAMESPACE/NAME: the live configuration (scope, log format;
  // docs/live-config.md), watched from Start(); "" = none.
  std::string config_map;
  // --log-format: the unified log's format until the live configuration
  // says otherwise: "json" or "text".
  std::string log_format = "json";
  // How long Start() waits for the live configuration before serving.
  std::chrono::milliseconds config_sync_timeout{std::chrono::seconds(5)};
  // --log-level for stderr diagnostics.
  std::string log_level = "info";
};

}  // namespace ashiato

namespace ashiato {
// /var/lib/ashiato when running in a pod (KUBERNETES_SERVICE_HOST is set),
// ./ashiato-data elsewhere.
std::string DefaultDataDir();
}  // namespace ashiato
