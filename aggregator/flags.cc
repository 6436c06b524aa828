#include "aggregator/flags.h"

#include <cctype>

namespace ashiato {

namespace {

// A CLI11 option that fills a duration.
void AddDuration(CLI::App& app, const std::string& name, std::chrono::milliseconds& out,
                 const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [&out, name](const std::string& v) {
           auto d = ParseDuration(v);
           if (!d) throw CLI::ValidationError(name, "expected a duration like 30s, 5m, 1h");
           out = *d;
         },
         help)
      ->type_name("DURATION");
}

}  // namespace

void AddAggregatorFlags(CLI::App& app, AggregatorOptions& o) {
  app.add_option("--listen", o.listen, "Address to serve on (host:port or :port)")
      ->capture_default_str();
  app.add_option("--kubeconfig", o.kubeconfig,
                 "Kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  app.add_option("--context", o.context, "Kubeconfig context (default: current-context)");
  app.add_option("--auth", o.auth, "How agents are authenticated: tokenreview or none")
      ->check(CLI::IsMember({"tokenreview", "none"}))
      ->capture_default_str();
  app.add_option("--agent-identity", o.agent_identity,
                 "Username (service account) allowed to push reports")
      ->capture_default_str();
  app.add_option("--audience", o.audience, "Audience agent tokens must be bound to")
      ->capture_default_str();
  AddDuration(app, "--token-cache-ttl", o.token_cache_ttl,
              "How long a TokenReview answer is reused (default 30s)");
  app.add_option("--max-body-bytes", o.max_body_bytes,
                 "Largest report body, before and after gzip (413 beyond)")
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections, "Concurrent connections at most")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "HTTP event threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--history-size", o.history_size, "History events kept in memory")
      ->capture_default_str();
  AddDuration(app, "--stale-after", o.stale_after,
              "Mark an agent stale after this long without a report (default 3m)");
  app.add_option("--state-file", o.state_file,
                 "Journal so a restarted aggregator never logs a change twice ('' = memory only)");
  app.add_option("--log-level", o.log_level, "debug, info, warn or error")->capture_default_str();
}

}  // namespace ashiato
