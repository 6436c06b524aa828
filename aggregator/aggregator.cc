#include "aggregator/aggregator.h"

#include <spdlog/spdlog.h>

#include "common/cluster_name.h"

namespace ashiato {

Result<std::unique_ptr<Aggregator>> Aggregator::Create(const AggregatorOptions& options,
                                                       std::unique_ptr<TokenReviewer> reviewer,
                                                       std::FILE* log_out, const Clock* clock) {
  AuthApis apis;
  apis.agent_tokens = std::move(reviewer);
  return Create(options, std::move(apis), log_out, clock);
}

Result<std::unique_ptr<Aggregator>> Aggregator::Create(const AggregatorOptions& options,
                                                       AuthApis apis, std::FILE* log_out,
                                                       const Clock* clock) {
  std::string metrics_auth =
      options.metrics_auth.empty() ? options.read_auth : options.metrics_auth;
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string*>{"--read-auth", &options.read_auth},
        {"--metrics-auth", &metrics_auth}}) {
    if (*value != "tokenreview" && *value != "none") {
      return InvalidArgument(std::string(flag) + " must be tokenreview or none, not \"" + *value +
                             "\"");
    }
  }
  bool read_auth = options.read_auth == "tokenreview";
  bool protect_metrics = metrics_auth == "tokenreview";
  if ((read_auth || protect_metrics) && (!apis.reader_tokens || !apis.access)) {
    return InvalidArgument(
        "--read-auth/--metrics-auth tokenreview need access to the API server (TokenReview, "
        "SubjectAccessReview)");
  }
  bool tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (tls && (options.tls_cert_file.empty() || options.tls_key_file.empty())) {
    return InvalidArgument("--tls-cert-file and --tls-key-file go together");
  }
  if (Status st = ValidateClusterName(options.cluster_name); !st.ok()) return st;
  std::unique_ptr<Aggregator> a(new Aggregator());
  a->options_ = options;
  a->clock_ = clock ? clock : Clock::Real();
  a->metrics_ = std::make_unique<AggregatorMetrics>(std::make_shared<prometheus::Registry>());
  StoreOptions store;
  store.dir = options.data_dir.empty() ? DefaultDataDir() : options.data_dir;
  store.sync_full = options.store_sync == "full";
  store.cache_kib = static_cast<int64_t>(options.store_cache_bytes >> 10);
  store.retention = options.retention;
  store.retention_bytes = options.retention_bytes;
  store.max_page_count = options.store_max_pages;
  store.registry = a->metrics_->registry.get();
  auto opened = Store::Open(store);
  if (!opened.ok()) return opened.status();
  a->store_ = std::move(opened.value());
  StateOptions so;
  so.stale_after = options.stale_after;
  a->state_ = std::make_unique<ClusterState>(so, a->store_.get(), a->metrics_.get(), clock);
  a->node_directory_ = std::make_unique<NodeDirectory>(a->store_.get());
  a->state_->SetNodeDirectory(a->node_directory_.get());
  a->image_census_ = std::make_unique<ImageCensus>();
  a->state_->AddCensus(a->image_census_.get());
  LogWriterOptions lo;
  lo.cluster = options.cluster_name;
  lo.format = options.log_format == "text" ? LogFormat::kText : LogFormat::kJson;
  lo.image_log = options.image_log == "text"   ? ImageLogFormat::kText
                 : options.image_log == "both" ? ImageLogFormat::kBoth
                                               : ImageLogFormat::kJson;
  a->log_writer_ =
      std::make_unique<LogWriter>(lo, a->store_.get(), log_out, a->metrics_.get(), stderr);
  LogWriter* writer = a->log_writer_.get();
  if (options.deploy.enabled()) {
    // Records are queued in the report's transaction (the census) and
    // delivered from the store's outbox (the sender): docs/deployment-records.md.
    a->deploy_census_ = std::make_unique<DeploymentCensus>(options.deploy);
    a->state_->AddCensus(a->deploy_census_.get());
    a->deploy_sender_ =
        std::make_unique<DeploymentSender>(options.deploy, a->store_.get(), a->deploy_census_.get(),
                                           a->metrics_->registry.get(), stderr);
  }
  DeploymentSender* sender = a->deploy_sender_.get();
  a->state_->SetCommitListener([writer, sender] {
    writer->Notify();
    if (sender) sender->Notify();
  });
  if (!options.config_map.empty()) {
    auto ref = ParseConfigMapRef(options.config_map);
    if (!ref.ok()) return ref.status();
  }
  if (options.auth == "tokenreview") {
    if (!apis.agent_tokens)
      return InvalidArgument("--auth tokenreview needs access to the API server");
    AuthOptions ao;
    ao.agent_identity = options.agent_identity;
    ao.audience = options.audience;
    ao.cache_ttl = options.token_cache_ttl;
    ao.allow_unbound = options.allow_unbound_agent_tokens;
    a->auth_ = std::make_unique<Authenticator>(ao, std::move(apis.agent_tokens), a->metrics_.get(),
                                               std::move(apis.pods));
  } else if (options.auth != "none") {
    return InvalidArgument("--auth must be tokenreview or none, not \"" + options.auth + "\"");
  }
  if (read_auth || protect_metrics) {
    ReadAuthOptions ro;
    ro.audience = options.read_audience;
    ro.token_ttl = options.token_cache_ttl;
    ro.access_ttl = options.access_cache_ttl;
    // A push token must not read: it would turn a stolen agent token into
    // the whole cluster's history.
    if (!options.agent_identity.empty()) ro.denied_users.push_back(options.agent_identity);
    a->reader_ = std::make_unique<ReadAuthorizer>(ro, std::move(apis.reader_tokens),
                                                  std::move(apis.access), a->metrics_.get());
  }
  ServiceOptions svc;
  svc.max_decoded_bytes = options.max_body_bytes;
  svc.read_auth = read_auth;
  svc.metrics_auth = protect_metrics;
  svc.cluster = options.cluster_name;
  a->service_ = std::make_unique<AggregatorService>(svc, a->state_.get(), a->auth_.get(),
                                                    a->metrics_.get(), a->reader_.get());
  if (options.auth == "none") {
    spdlog::warn("--auth none: anyone who reaches the port can push reports for any node");
  } else if (options.allow_unbound_agent_tokens) {
    spdlog::warn(
        "--allow-unbound-agent-tokens: agent tokens bound to no pod may push for any node");
  }
  if (!read_auth) {
    spdlog::warn(
        "--read-auth none: anyone who reaches the port reads every pod of every namespace; "
        "for local use only");
  }
  if (!protect_metrics) spdlog::warn("--metrics-auth none: /metrics is open to anyone");
  if (!tls) {
    spdlog::warn(
        "serving plain HTTP: bearer tokens cross the network unencrypted (see "
        "--tls-cert-file)");
  }
  return a;
}

Aggregator::~Aggregator() { Stop(); }

Status Aggregator::Start() {
  Status st = node_directory_->Load();
  if (!st.ok()) spdlog::warn("node addresses: cannot load from the store: {}", st.ToString());
  if (config_watch_api_ && !options_.config_map.empty()) {
    auto ref = ParseConfigMapRef(options_.config_map);
    if (!ref.ok()) return ref.status();
    LiveConfig base;
    base.log_format = options_.log_format == "text" ? LogFormat::kText : LogFormat::kJson;
    LiveConfigWatch::Callbacks cb;
    cb.applied = [this](const LiveConfig& c) {
      log_writer_->SetFormat(c.log_format);
      metrics_->live_config_changes->Increment();
      Status s = state_->SetScope(c.scope);
      if (!s.ok()) spdlog::warn("live configuration: scope not applied yet: {}", s.ToString());
    };
    cb.refused = [this](const Status&) {
      metrics_->live_config_refused->Increment();
      metrics_->live_config_invalid->Set(1);
    };
    cb.valid = [this] { metrics_->live_config_invalid->Set(0); };
    config_watch_ = std::make_unique<LiveConfigWatch>(ref->first, ref->second, base,
                                                      config_watch_api_, std::move(cb));
    config_watch_->Start();
    // Briefly, so that the restored state is reported under the scope in
    // force; a slow or forbidden API server only delays it.
    if (!config_watch_->WaitSynced(options_.config_sync_timeout)) {
      spdlog::warn(
          "live configuration {}: not read yet; the flags' values are in force until it is",
          config_watch_->ref());
    }
  }
  st = state_->Open();
  if (!st.ok()) return st;
  if (node_watch_api_) {
    node_watch_ = std::make_unique<NodeWatch>(node_watch_api_, node_directory_.get());
    node_watch_->Start();
    // Briefly, so that the first reports' lines already carry the nodes'
    // addresses; agents retry meanwhile, and a slow API server only delays.
    if (!node_watch_->WaitSynced(options_.node_sync_timeout)) {
      spdlog::warn("node addresses: no node list yet; serving without them until it arrives");
    }
  }
  log_writer_->Start();
  if (deploy_sender_) deploy_sender_->Start();
  HttpServerOptions ho;
  ho.listen = options_.listen;
  ho.max_connections = options_.max_connections;
  // Thousands of idle agent connections: 16 KiB each instead of MHD's 32 KiB
  // is plenty for headers (a bearer token is ~1-2 KiB); bodies live elsewhere.
  ho.connection_memory_bytes = 16 * 1024;
  ho.max_body_bytes = options_.max_body_bytes;
  // Several event threads: a TokenReview cache miss waits on the API
  // server inline, and the other threads keep serving meanwhile.
  ho.threads = options_.threads;
  ho.connection_timeout_seconds = 300;
  ho.tls_cert_file = options_.tls_cert_file;
  ho.tls_key_file = options_.tls_key_file;
  ho.tls_reload_interval = options_.tls_reload_interval;
  AggregatorService* svc = service_.get();
  auto server = HttpServer::Start(ho, [svc](const HttpRequest& r) { return svc->Handle(r); });
  if (!server.ok()) return server.status();
  server_ = std::move(server.value());
  service_->SetReady(true);
  {
    std::lock_guard<std::mutex> l(maintain_mu_);
    stopping_ = false;
  }
  maintainer_ = std::thread([this] { Maintain(); });
  spdlog::info("serving on port {} ({}, auth {}, read-auth {}, store {}, instance {})",
               server_->port(), options_.tls_cert_file.empty() ? "http" : "https", options_.auth,
               options_.read_auth, store_->path(), store_->instance());
  return Status::Ok();
}

void Aggregator::Maintain() {
  auto next_retention = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> l(maintain_mu_);
  while (!stopping_) {
    maintain_cv_.wait_for(l, std::chrono::seconds(1), [this] { return stopping_; });
    if (stopping_) break;
    l.unlock();
    state_->CheckStore();  // Cheap when healthy.
    // After a round of snapshots or a burst, the freed bodies and batches.
    heap_trimmer_.Tick(std::chrono::steady_clock::now());
    if (std::chrono::steady_clock::now() >= next_retention && store_->healthy()) {
      next_retention = std::chrono::steady_clock::now() + options_.retention_interval;
      auto now =
          std::chrono::duration_cast<std::chrono::microseconds>(clock_->Now().time_since_epoch())
              .count();
      auto r = store_->EnforceRetention(now);
      if (!r.ok()) {
        spdlog::warn("store retention: {}", r.status().ToString());
      } else if (r->events_deleted + r->intervals_deleted + r->pods_deleted > 0) {
        auto level = r->by_size ? spdlog::level::warn : spdlog::level::info;
        spdlog::log(level, "store retention deleted {} events, {} intervals, {} pods{}",
                    r->events_deleted, r->intervals_deleted, r->pods_deleted,
                    r->by_size ? " (--retention-bytes decided, not the age)" : "");
      }
      (void)store_->Size();  // Refreshes ashiato_store_bytes.
    }
    l.lock();
  }
}

void Aggregator::Stop() {
  if (service_) service_->SetReady(false);
  if (config_watch_) {
    config_watch_->Stop();
    config_watch_.reset();
  }
  if (node_watch_) {
    node_watch_->Stop();
    node_watch_.reset();
  }
  if (server_) {
    server_->Stop();
    server_.reset();
  }
  {
    std::lock_guard<std::mutex> l(maintain_mu_);
    stopping_ = true;
  }
  maintain_cv_.notify_all();
  if (maintainer_.joinable()) maintainer_.join();
  // No new work; requests in flight get a bounded time; the rest stays in
  // the outbox for the next process.
  if (deploy_sender_) deploy_sender_->Stop();
  // Everything acknowledged is committed; print what the log still owes,
  // but never hang on a stdout nobody reads (the lines stay in the store).
  if (log_writer_) log_writer_->Stop(std::chrono::seconds(5));
}

}  // namespace ashiato
