// AggregatorOptions: what ashiato-aggregator is configured with (flags in
// aggregator/flags.cc). Plain struct, defaults here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

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
  // How often retention runs.
  std::chrono::milliseconds retention_interval{std::chrono::minutes(1)};
  // Test hook (--store-max-pages): a maximum store size in pages, to simulate a full disk.
  int64_t store_max_pages = 0;
  // --log-level for stderr diagnostics.
  std::string log_level = "info";
};

}  // namespace ashiato

namespace ashiato {
// /var/lib/ashiato when running in a pod (KUBERNETES_SERVICE_HOST is set),
// ./ashiato-data elsewhere.
std::string DefaultDataDir();
}  // namespace ashiato
