#include "aggregator/flags.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdlib>

namespace ashiato {

namespace {

// A CLI11 option that fills a duration.
CLI::Option* AddDuration(CLI::App& app, const std::string& name, std::chrono::milliseconds& out,
                         const std::string& help) {
  return app
      .add_option_function<std::string>(
          name,
          [&out, name](const std::string& v) {
            auto d = ParseDuration(v);
            if (!d) throw CLI::ValidationError(name, "expected a duration like 30s, 5m, 1h");
            out = *d;
          },
          help)
      ->type_name("DURATION");
}

// A CLI11 option that fills a byte count of at least `min` (ParseByteSize's
// forms); `expected` is the error's description of a valid value.
CLI::Option* AddByteSize(CLI::App& app, const std::string& name, uint64_t& out, uint64_t min,
                         const std::string& expected, const std::string& help) {
  return app
      .add_option_function<std::string>(
          name,
          [&out, name, min, expected](const std::string& v) {
            auto b = ParseByteSize(v);
            if (!b || *b < min) throw CLI::ValidationError(name, expected);
            out = *b;
          },
          help)
      ->type_name("BYTES");
}

}  // namespace

std::string DefaultDataDir() {
  const char* in_pod = std::getenv("KUBERNETES_SERVICE_HOST");
  return in_pod && *in_pod ? "/var/lib/ashiato" : "./ashiato-data";
}

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
  app.add_flag("--allow-unbound-agent-tokens", o.allow_unbound_agent_tokens,
               "Accept agent tokens that are bound to no pod (so to no node): tests and agents "
               "outside the cluster only");
  app.add_option("--read-auth", o.read_auth,
                 "Who may read /v1/*: tokenreview (a bearer token; answers filtered by "
                 "SubjectAccessReview to the namespaces whose pods the user may list) or none "
                 "(anyone who reaches the port; local use only)")
      ->check(CLI::IsMember({"tokenreview", "none"}))
      ->capture_default_str();
  app.add_option("--read-audience", o.read_audience,
                 "Audience reader tokens must carry (\"\" = the API server's own)")
      ->capture_default_str();
  app.add_option("--metrics-auth", o.metrics_auth,
                 "Who may read /metrics: tokenreview (get on the URL /metrics, as "
                 "kube-rbac-proxy) or none (default: as --read-auth)")
      ->check(CLI::IsMember({"tokenreview", "none"}));
  AddDuration(app, "--access-cache-ttl", o.access_cache_ttl,
              "How long a SubjectAccessReview answer is reused (default 10s)");
  app.add_option("--tls-cert-file", o.tls_cert_file,
                 "Serve HTTPS with this PEM certificate (chain), re-read when it changes");
  app.add_option("--tls-key-file", o.tls_key_file, "The PEM key of --tls-cert-file");
  AddDuration(app, "--tls-reload-interval", o.tls_reload_interval,
              "How often the TLS files are checked for changes (default 10s)");
  app.add_option("--max-body-bytes", o.max_body_bytes,
                 "Largest report body, before and after gzip (413 beyond)")
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections, "Concurrent connections at most")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "HTTP event threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--data-dir", o.data_dir,
                 "Directory of the history store (default /var/lib/ashiato in a pod, "
                 "./ashiato-data elsewhere)");
  AddDuration(app, "--retention", o.retention,
              "Delete history older than this, 0 keeps all (default 30d)");
  AddByteSize(app, "--retention-bytes", o.retention_bytes, 0, "expected bytes like 5Gi, 500MB",
              "Delete the oldest history while the store is larger, 0 = no limit (default 0)");
  app.add_option("--store-sync", o.store_sync,
                 "normal: a commit survives a process crash; full: also a power loss")
      ->check(CLI::IsMember({"normal", "full"}))
      ->capture_default_str();
  AddByteSize(app, "--store-cache", o.store_cache_bytes, 1u << 20,
              "expected bytes >= 1Mi, like 64Mi",
              "The history store's SQLite page cache (default 16Mi)");
  app.add_option("--store-downgrade-to", o.store_downgrade_to,
                 "Take the store in --data-dir back to this schema version and exit "
                 "(before rolling back to an older release; docs/storage.md)")
      ->check(CLI::Range(0, 1000));
  app.add_option("--store-max-pages", o.store_max_pages,
                 "Testing only: cap the store at this many pages to simulate a full disk")
      ->group("");
  // Accepted so that old manifests keep working; the store replaced both.
  app.add_option_function<std::string>(
         "--state-file",
         [](const std::string&) {
           spdlog::warn("--state-file is deprecated and ignored: state lives in --data-dir");
         },
         "Deprecated, ignored (the history store in --data-dir replaced it)")
      ->group("");
  app.add_option_function<std::string>(
         "--history-size",
         [](const std::string&) {
           spdlog::warn("--history-size is deprecated and ignored: history lives in --data-dir");
         },
         "Deprecated, ignored")
      ->group("");
  AddDuration(app, "--stale-after", o.stale_after,
              "Mark an agent stale after this long without a report (default 3m)");
  app.add_option("--image-log", o.image_log,
                 "Images entering and leaving the cluster: json (in the unified log on stdout), "
                 "text (cluster-image-logger's lines on stderr) or both")
      ->check(CLI::IsMember({"json", "text", "both"}))
      ->capture_default_str();
  // Deployment records: deployment-tracker's environment variables, or these.
  DeployFlags& d = o.deploy_flags;
  app.add_option("--deployment-org", d.org,
                 "Send deployment records to this GitHub organization (env ORG; unset: off)");
  app.add_option("--deployment-base-url", d.base_url,
                 "Artifact-metadata API (env BASE_URL, default api.github.com; https:// added "
                 "when no scheme)");
  app.add_option("--deployment-dn-template", d.dn_template,
                 "Deployment name template (env DN_TEMPLATE, default "
                 "{{namespace}}/{{deploymentName}}/{{containerName}})");
  app.add_option("--deployment-logical-environment", d.logical_environment,
                 "Records' logical_environment (env LOGICAL_ENVIRONMENT)");
  app.add_option("--deployment-physical-environment", d.physical_environment,
                 "Records' physical_environment (env PHYSICAL_ENVIRONMENT)");
  app.add_option("--deployment-cluster", d.cluster, "Records' cluster (env CLUSTER)");
  app.add_option("--deployment-api-token-file", d.api_token_file,
                 "File holding the API token (env API_TOKEN)");
  app.add_option("--deployment-workers", d.workers, "Concurrent deployment-record requests")
      ->capture_default_str();
  AddDuration(app, "--deployment-reconcile-interval", d.reconcile_interval,
              "Send the full list of deployments in use this often, and at start; 0 = never "
              "(default 1h)");
  AddDuration(app, "--deployment-drain-timeout", d.drain_timeout,
              "On SIGTERM, how long requests in flight may finish (default 10s)");
  AddDuration(app, "--deployment-request-timeout", d.request_timeout,
              "Timeout of one deployment-record request (default 10s)");
  AddDuration(app, "--deployment-backoff-initial", d.backoff_initial,
              "First retry delay of a failed record, doubled per attempt (default 1s)")
      ->group("");
  AddDuration(app, "--deployment-backoff-max", d.backoff_max, "Longest retry delay (default 5m)")
      ->group("");
  app.add_option("--cluster-name", o.cluster_name,
                 "Name of this cluster: the \"cluster\" field of every log line and API answer "
                 "and a ConfigMap label (default: none)")
      ->envname("CLUSTER");
  app.add_option("--watch-nodes", o.watch_nodes,
                 "Watch the cluster's Nodes for their addresses and zone/region (needs list and "
                 "watch on nodes)")
      ->capture_default_str();
  app.add_option("--config-map", o.config_map,
                 "Live configuration: NAMESPACE/NAME of a ConfigMap (scope, log format) watched "
                 "and applied without restart (docs/live-config.md; needs get, list and watch on "
                 "it)");
  app.add_option("--log-format", o.log_format,
                 "Unified log format, json or text, until the live configuration says otherwise")
      ->check(CLI::IsMember({"json", "text"}))
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "debug, info, warn or error")->capture_default_str();
}

}  // namespace ashiato
