// AggregatorOptions: what ashiato-aggregator is configured with (flags in
// aggregator/flags.cc). Plain struct, defaults here.
#pragma once

#include <chrono>
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
  // --history-size: events kept in memory for the query API.
  size_t history_size = 100000;
  // --stale-after: an agent silent this long is marked stale.
  std::chrono::milliseconds stale_after{std::chrono::minutes(3)};
  // --state-file: journal that lets a restart avoid logging anything twice;
  // "" = keep state in memory only (a restart then logs SYNC for every pod).
  std::string state_file;
  // --log-level for stderr diagnostics.
  std::string log_level = "info";
};

}  // namespace ashiato
