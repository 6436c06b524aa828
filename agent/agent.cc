#include "agent/agent.h"

#include <spdlog/spdlog.h>

namespace ashiato {

ReflectorOptions ReflectorOptionsFrom(const AgentOptions& o) {
  ReflectorOptions r;
  r.node = o.node;
  r.all_nodes = o.all_nodes || o.standalone;
  r.label_selector = o.label_selector;
  r.annotations = o.annotations;
  r.quorum_list = o.quorum_list;
  r.page_size = o.list_page_size;
  r.watch_timeout_min_seconds = o.watch_timeout_min_seconds;
  r.watch_timeout_max_seconds = o.watch_timeout_max_seconds;
  r.backoff.initial = o.backoff_initial;
  r.backoff.max = o.backoff_max;
  return r;
}

Agent::Agent(const AgentOptions& options, PodApi* api, std::vector<EventSink*> sinks,
             AgentMetrics* metrics)
    : options_(options),
      api_(api),
      sinks_(std::move(sinks)),
      metrics_(metrics),
      filter_(options.namespaces, options.name_prefix),
      reflector_(ReflectorOptionsFrom(options), api, this) {}

Agent::~Agent() { Stop(); }

Status Agent::RunOneshot() {
  std::string rv;
  auto pods = reflector_.ListOnce(options_.quorum_list, &rv);
  if (!pods.ok()) {
    if (metrics_ != nullptr) metrics_->ApiError(pods.status());
    return pods.status();
  }
  std::vector<PodRecord> kept;
  for (auto& p : *pods) {
    if (filter_.Matches(p)) kept.push_back(std::move(p));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& change : store_.Replace(kept, /*initial=*/true)) EmitLocked(change);
    SnapshotLocked();
  }
  listed_ = true;
  return Flush(options_.shutdown_grace);
}

Status Agent::Run() {
  if (!options_.standalone && (options_.all_nodes || options_.node.empty())) {
    // A cluster-wide watch per node is what overloads API servers; one
    // standalone process watching the cluster is fine.
    return InvalidArgument(
        "continuous mode needs a node, or standalone mode; --all-nodes is for --oneshot only");
  }
  std::vector<std::thread> timers;
  timers.emplace_back([this] { EveryLoop(options_.interval, &Agent::SnapshotLocked); });
  if (options_.log_all_every.count() > 0) {
    timers.emplace_back([this] { EveryLoop(options_.log_all_every, &Agent::LogAllLocked); });
  }
  Status s = reflector_.Run();
  Stop();
  for (auto& t : timers) t.join();
  return s;
}

void Agent::Stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stop_cv_.notify_all();
  reflector_.Stop();
}

Status Agent::Flush(std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  std::lock_guard<std::mutex> lock(mu_);
  Status first_error;
  for (EventSink* sink : sinks_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    Status s = sink->Flush(std::max(left, std::chrono::milliseconds(0)));
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  return first_error;
}

size_t Agent::PodCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return store_.size();
}

void Agent::EveryLoop(std::chrono::milliseconds period, void (Agent::*fn)()) {
  std::unique_lock<std::mutex> stop_lock(stop_mu_);
  while (!stopped_) {
    if (stop_cv_.wait_for(stop_lock, period, [this] { return stopped_; })) break;
    if (!listed_) continue;
    stop_lock.unlock();
    {
      std::lock_guard<std::mutex> lock(mu_);
      (this->*fn)();
    }
    stop_lock.lock();
  }
}

void Agent::EmitLocked(const PodChange& change) {
  for (EventSink* sink : sinks_) sink->OnEvent(change.event, change.record);
  if (metrics_ != nullptr) {
    metrics_->Event(change.event);
    metrics_->SetPodsTracked(store_.size());
  }
}

void Agent::SnapshotLocked() {
  std::vector<PodRecord> all = store_.All();
  for (EventSink* sink : sinks_) sink->OnSnapshot(all);
}

void Agent::LogAllLocked() {
  std::vector<PodRecord> all = store_.All();
  for (EventSink* sink : sinks_) sink->OnLogAll(all);
}

void Agent::OnList(const std::vector<PodRecord>& pods) {
  std::vector<PodRecord> kept;
  for (const auto& p : pods) {
    if (filter_.Matches(p)) kept.push_back(p);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& change : store_.Replace(kept, /*initial=*/!listed_.load())) EmitLocked(change);
  SnapshotLocked();
  if (metrics_ != nullptr) metrics_->SetPodsTracked(store_.size());
  listed_ = true;
}

void Agent::OnWatchEvent(const std::string& type, const PodRecord& pod) {
  if (!filter_.Matches(pod)) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto change = store_.Apply(type, pod);
  if (change) EmitLocked(*change);
}

void Agent::OnWatchState(bool open) {
  watch_open_ = open;
  if (metrics_ != nullptr) metrics_->SetWatchOpen(open);
}

void Agent::OnRelist() {
  if (metrics_ != nullptr) metrics_->Relist();
}

void Agent::OnWatchRestart() {
  if (metrics_ != nullptr) metrics_->WatchRestart();
}

void Agent::OnApiError(const Status& status) {
  if (metrics_ != nullptr) metrics_->ApiError(status);
}

}  // namespace ashiato
