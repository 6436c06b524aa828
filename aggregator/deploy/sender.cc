#include "aggregator/deploy/sender.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "common/time_util.h"

namespace ashiato {
namespace {

using std::chrono::milliseconds;

UnixMicros NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct DeploymentSender::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : sent(prometheus::BuildCounter()
                 .Name("ashiato_deployment_records_sent_total")
                 .Help("Deployment records the artifact-metadata service accepted.")
                 .Register(r)
                 .Add({})),
        failed(prometheus::BuildCounter()
                   .Name("ashiato_deployment_records_failed_total")
                   .Help("Deployment records refused for good (a 4xx other than 429/rate "
                         "limit), dropped from the outbox.")
                   .Register(r)
                   .Add({})),
        retried(prometheus::BuildCounter()
                    .Name("ashiato_deployment_records_retried_total")
                    .Help("Attempts that failed and were rescheduled (5xx, 429, network).")
                    .Register(r)
                    .Add({})),
        depth(prometheus::BuildGauge()
                  .Name("ashiato_deployment_records_queue_depth")
                  .Help("Deployment records in the durable outbox, not yet delivered.")
                  .Register(r)
                  .Add({})),
        reconciles(prometheus::BuildCounter()
                       .Name("ashiato_deployment_reconciles_total")
                       .Help("Full lists of deployments sent to the cluster endpoint, by "
                             "result.")
                       .Register(r)),
        reconcile_ok(reconciles.Add({{"result", "ok"}})),
        reconcile_failed(reconciles.Add({{"result", "failed"}})) {}
  prometheus::Counter& sent;
  prometheus::Counter& failed;
  prometheus::Counter& retried;
  prometheus::Gauge& depth;
  prometheus::Family<prometheus::Counter>& reconciles;
  prometheus::Counter& reconcile_ok;
  prometheus::Counter& reconcile_failed;
};

DeploymentSender::DeploymentSender(DeployConfig config, Store* store,
                                   const DeploymentCensus* census, prometheus::Registry* registry,
                                   std::FILE* out)
    : config_(std::move(config)), store_(store), census_(census), out_(out) {
  if (registry) metrics_ = std::make_unique<Metrics>(*registry);
  retry_.initial = config_.backoff_initial;
  retry_.max = config_.backoff_max;
}

DeploymentSender::~DeploymentSender() { Stop(); }

HttpClientOptions DeploymentSender::ClientOptions() const {
  HttpClientOptions o;
  o.base_url = config_.base_url;
  o.request_timeout_ms = static_cast<long>(config_.request_timeout.count());
  o.user_agent = "ashiato-aggregator";
  return o;
}

std::vector<std::pair<std::string, std::string>> DeploymentSender::Headers() const {
  std::vector<std::pair<std::string, std::string>> h = {{"Accept", "application/vnd.github+json"},
                                                        {"X-GitHub-Api-Version", "2022-11-28"},
                                                        {"Content-Type", "application/json"}};
  if (!config_.api_token.empty()) h.push_back({"Authorization", "Bearer " + config_.api_token});
  return h;
}

void DeploymentSender::Start() {
  std::lock_guard<std::mutex> l(mu_);
  stopping_ = false;
  clients_.clear();
  for (int i = 0; i <= config_.workers; ++i) {
    clients_.push_back(std::make_unique<HttpClient>(ClientOptions()));
  }
  for (int i = 0; i < config_.workers; ++i) {
    threads_.emplace_back([this, i] { Work(static_cast<size_t>(i)); });
  }
  if (census_ && config_.reconcile_interval.count() > 0) {
    threads_.emplace_back([this] { Reconcile(); });
  }
  spdlog::info("deployment records: {} worker(s) posting to {}/orgs/{}/artifacts/metadata/...",
               config_.workers, config_.base_url, config_.org);
}

void DeploymentSender::Notify() {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++wakeups_;
  }
  cv_.notify_all();
}

void DeploymentSender::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  // Requests in flight get drain_timeout; then they are cancelled and their
  // rows stay in the outbox for the next process.
  auto deadline = std::chrono::steady_clock::now() + config_.drain_timeout;
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_until(l, deadline, [this] { return busy_.empty(); });
    if (!busy_.empty()) {
      spdlog::warn(
          "deployment records: {} request(s) still in flight after {} ms: cancelled, "
          "left in the outbox",
          busy_.size(), config_.drain_timeout.count());
    }
    for (auto& c : clients_) c->Cancel();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  RefreshDepth();
}

void DeploymentSender::Print(const std::string& line) {
  if (!out_) return;
  std::lock_guard<std::mutex> l(print_mu_);
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void DeploymentSender::RefreshDepth() {
  if (!metrics_) return;
  auto d = store_->OutboxDepth();
  if (d.ok()) metrics_->depth.Set(static_cast<double>(d->first));
}

void DeploymentSender::Work(size_t index) {
  HttpClient& client = *clients_[index];
  std::mt19937_64 rng(std::random_device{}() + index);
  std::string path = "/orgs/" + config_.org + "/artifacts/metadata/deployment-record";
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    std::vector<std::string> busy(busy_.begin(), busy_.end());
    auto due = store_->DueOutbox(NowUs(), 1, busy);
    if (!due.ok() || due->empty()) {
      // Sleep until woken by a commit, or the next row is due (at most 1 s:
      // rows committed by another path, or a store that recovers).
      milliseconds wait{1000};
      if (due.ok()) {
        auto depth = store_->OutboxDepth();
        if (depth.ok() && depth->first > 0) {
          if (metrics_) metrics_->depth.Set(static_cast<double>(depth->first));
          auto until = milliseconds((depth->second - NowUs()) / 1000 + 1);
          wait = std::clamp(until, milliseconds(1), wait);
        } else if (depth.ok() && metrics_) {
          metrics_->depth.Set(0);
        }
      } else {
        spdlog::warn("deployment records: reading the outbox: {}", due.status().ToString());
      }
      uint64_t seen = wakeups_;
      cv_.wait_for(l, wait, [&] { return stopping_ || wakeups_ != seen; });
      continue;
    }
    OutboxEntry row = std::move(due->front());
    busy_.insert(row.key);
    l.unlock();

    DeploymentRecord rec =
        DeploymentRecord::FromJson(nlohmann::json::parse(row.body, nullptr, false));
    auto result = client.Do("POST", path, row.body, Headers());
    int64_t attempts = row.attempts + 1;
    std::string now_text = FormatRfc3339(std::chrono::system_clock::now());
    if (!result.ok() && result.status().code() == StatusCode::kCancelled) {
      // Drained: the row stays as it was, for the next process.
      Print(OutcomeLine(now_text, rec, "cancelled by shutdown (kept in the outbox)"));
    } else {
      AttemptOutcome o =
          ClassifyAttempt(result, attempts, retry_, std::chrono::system_clock::now(), rng);
      Status st;
      switch (o.kind) {
        case AttemptOutcome::Kind::kDelivered:
          Print(OutcomeLine(now_text, rec, ""));
          if (metrics_) metrics_->sent.Increment();
          st = store_->DeleteOutbox(row.id);
          break;
        case AttemptOutcome::Kind::kDrop:
          Print(OutcomeLine(now_text, rec, o.error + " (not retried)"));
          if (metrics_) metrics_->failed.Increment();
          st = store_->DeleteOutbox(row.id);
          break;
        case AttemptOutcome::Kind::kRetry:
          Print(OutcomeLine(now_text, rec,
                            o.error + " (attempt " + std::to_string(attempts) + ", retry in " +
                                std::to_string(o.delay.count()) + "ms)"));
          if (metrics_) metrics_->retried.Increment();
          st =
              store_->RescheduleOutbox(row.id, attempts, NowUs() + o.delay.count() * 1000, o.error);
          break;
      }
      if (!st.ok()) {
        // The store is unhealthy: the row is sent again once it recovers
        // (the service takes a repeated record as an update).
        spdlog::warn("deployment records: updating the outbox: {}", st.ToString());
      }
    }
    RefreshDepth();
    l.lock();
    busy_.erase(row.key);
    cv_.notify_all();
  }
}

bool DeploymentSender::ReconcileOnce(HttpClient& client) {
  if (config_.cluster.empty()) {
    spdlog::warn("deployment records: CLUSTER is not set: no reconciliation");
    return true;
  }
  nlohmann::json deployments = nlohmann::json::array();
  for (const DeploymentRecord& r : census_->InUse()) {
    nlohmann::json d = {{"name", r.name},
                        {"digest", r.digest},
                        {"status", r.status},
                        {"deployment_name", r.deployment_name}};
    if (!r.version.empty()) d["version"] = r.version;
    deployments.push_back(std::move(d));
  }
  nlohmann::json body = {{"logical_environment", config_.logical_environment},
                         {"physical_environment", config_.physical_environment},
                         {"deployments", deployments}};
  std::string path = "/orgs/" + config_.org + "/artifacts/metadata/deployment-record/cluster/" +
                     UrlEncode(config_.cluster);
  auto r = client.Do("POST", path, body.dump(), Headers());
  std::string now_text = FormatRfc3339(std::chrono::system_clock::now());
  if (r.ok() && r->status >= 200 && r->status < 300) {
    Print("[" + now_text + "] OK RECONCILE cluster=" + config_.cluster +
          " deployments=" + std::to_string(deployments.size()));
    if (metrics_) metrics_->reconcile_ok.Increment();
    return true;
  }
  std::string err =
      r.ok() ? "status " + std::to_string(r->status) + ": " + r->body : r.status().ToString();
  Print("[" + now_text + "] FAILED RECONCILE cluster=" + config_.cluster + " error=" + err);
  if (metrics_) metrics_->reconcile_failed.Increment();
  return false;
}

void DeploymentSender::Reconcile() {
  HttpClient& client = *clients_.back();
  std::mt19937_64 rng(std::random_device{}());
  int64_t failures = 0;
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    l.unlock();
    bool ok = ReconcileOnce(client);  // Never under the state's lock.
    failures = ok ? 0 : failures + 1;
    l.lock();
    milliseconds wait =
        ok ? config_.reconcile_interval
           : std::min(config_.reconcile_interval, BackoffDelay(retry_, failures, rng));
    cv_.wait_for(l, wait, [this] { return stopping_; });
  }
}

}  // namespace ashiato
