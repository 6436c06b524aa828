#include "aggregator/cm_writer.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "aggregator/cm_key.h"

namespace ashiato {

struct HourlyConfigMapWriter::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : writes(prometheus::BuildCounter()
                   .Name("ashiato_cm_writes_total")
                   .Help("ConfigMap shard writes accepted by the API server, by verb.")
                   .Register(r)),
        creates(writes.Add({{"verb", "create"}})),
        updates(writes.Add({{"verb", "update"}})),
        deletes(prometheus::BuildCounter()
                    .Name("ashiato_cm_deletes_total")
                    .Help("Hourly ConfigMaps deleted by retention.")
                    .Register(r)
                    .Add({})),
        conflicts(prometheus::BuildCounter()
                      .Name("ashiato_cm_conflicts_total")
                      .Help("409 answers (stale resourceVersion or existing name), each "
                            "followed by a re-read and merge.")
                      .Register(r)
                      .Add({})),
        errors(prometheus::BuildCounter()
                   .Name("ashiato_cm_errors_total")
                   .Help("Failed ConfigMap API calls other than conflicts.")
                   .Register(r)
                   .Add({})),
        requests(prometheus::BuildCounter()
                     .Name("ashiato_cm_requests_total")
                     .Help("ConfigMap API calls of every kind.")
                     .Register(r)
                     .Add({})),
        bytes(prometheus::BuildCounter()
                  .Name("ashiato_cm_written_bytes_total")
                  .Help("Bytes of ConfigMap objects sent in creates and updates.")
                  .Register(r)
                  .Add({})),
        shards(prometheus::BuildGauge()
                   .Name("ashiato_cm_shards")
                   .Help("Shards of the current hour's ConfigMap.")
                   .Register(r)
                   .Add({})),
        keys(prometheus::BuildGauge()
                 .Name("ashiato_cm_keys")
                 .Help("Pods recorded in the current hour's ConfigMap.")
                 .Register(r)
                 .Add({})),
        max_shard_bytes(prometheus::BuildGauge()
                            .Name("ashiato_cm_max_shard_bytes")
                            .Help("Data bytes of the current hour's largest shard.")
                            .Register(r)
                            .Add({})) {}

  prometheus::Family<prometheus::Counter>& writes;
  prometheus::Counter& creates;
  prometheus::Counter& updates;
  prometheus::Counter& deletes;
  prometheus::Counter& conflicts;
  prometheus::Counter& errors;
  prometheus::Counter& requests;
  prometheus::Counter& bytes;
  prometheus::Gauge& shards;
  prometheus::Gauge& keys;
  prometheus::Gauge& max_shard_bytes;
};

HourlyConfigMapWriter::HourlyConfigMapWriter(ConfigMapWriterOptions options,
                                             std::unique_ptr<ConfigMapApi> api, const Clock* clock)
    : options_(std::move(options)), api_(std::move(api)), clock_(clock) {
  if (options_.registry) metrics_ = std::make_unique<Metrics>(*options_.registry);
}

HourlyConfigMapWriter::~HourlyConfigMapWriter() { Stop(); }

HourlyConfigMapWriter::HourState& HourlyConfigMapWriter::StateLocked(HourIndex hour) {
  auto& slot = hours_[hour];
  if (!slot) {
    ShardLimits limits;
    limits.max_bytes = options_.shard_max_bytes;
    slot = std::make_unique<HourState>(hour, limits);
  }
  return *slot;
}

void HourlyConfigMapWriter::RollLocked(HourIndex now_hour) {
  if (now_hour <= current_hour_) return;
  current_hour_ = now_hour;
  HourState& st = StateLocked(now_hour);
  // Pods still running at the boundary ran during the new hour too.
  for (const auto& [key, pod] : live_) st.data.Record(key, pod.node, pod.full_name);
}

void HourlyConfigMapWriter::PodSeen(const std::string& ns, const std::string& name,
                                    const std::string& node, SystemTime when) {
  if (ns.empty() || name.empty() || node.empty()) return;  // Not on a node (yet).
  PodKey pk = MakePodKey(ns, name);
  std::lock_guard<std::mutex> l(mu_);
  RollLocked(HourOf(clock_->Now()));
  live_[pk.key] = LivePod{node, pk.full_name};
  StateLocked(current_hour_).data.Record(pk.key, node, pk.full_name);
  // A late report about an earlier hour we still hold also lands there.
  HourIndex h = HourOf(when);
  if (h < current_hour_) {
    auto it = hours_.find(h);
    if (it != hours_.end()) it->second->data.Record(pk.key, node, pk.full_name);
  }
}

void HourlyConfigMapWriter::PodGone(const std::string& ns, const std::string& name,
                                    SystemTime /*when*/) {
  PodKey pk = MakePodKey(ns, name);
  std::lock_guard<std::mutex> l(mu_);
  RollLocked(HourOf(clock_->Now()));
  live_.erase(pk.key);
}

void HourlyConfigMapWriter::CountRequest(const Status& s) {
  std::lock_guard<std::mutex> l(mu_);
  ++stats_.requests;
  ++stats_.last_flush_requests;
  if (metrics_) metrics_->requests.Increment();
  if (s.ok() || s.code() == StatusCode::kNotFound) return;
  if (s.code() == StatusCode::kConflict || s.code() == StatusCode::kAlreadyExists) {
    ++stats_.conflicts;
    if (metrics_) metrics_->conflicts.Increment();
  } else {
    ++stats_.errors;
    if (metrics_) metrics_->errors.Increment();
  }
}

Status HourlyConfigMapWriter::LoadHour(HourIndex hour) {
  std::string selector =
      std::string(kCmAppLabel) + "=" + kCmAppValue + "," + kCmHourLabel + "=" + HourLabel(hour);
  auto list = api_->List(options_.namespace_, selector);
  CountRequest(list.ok() ? Status::Ok() : list.status());
  if (!list.ok()) return list.status();
  std::lock_guard<std::mutex> l(mu_);
  HourState& st = StateLocked(hour);
  for (const auto& item : (*list)["items"]) {
    auto parsed = ParseShardName(item["metadata"].value("name", ""));
    if (!parsed || parsed->hour != hour) continue;
    st.data.MergeFromServer(parsed->shard, item);
  }
  st.loaded = true;
  return Status::Ok();
}

Status HourlyConfigMapWriter::Start() {
  {
    std::lock_guard<std::mutex> l(thread_mu_);
    if (started_) return Status::Ok();
    started_ = true;
    stop_ = false;
  }
  Status loaded;
  {
    std::lock_guard<std::mutex> f(flush_mu_);
    HourIndex h;
    {
      std::lock_guard<std::mutex> l(mu_);
      RollLocked(HourOf(clock_->Now()));
      h = current_hour_;
    }
    loaded = LoadHour(h);
    if (!loaded.ok()) {
      spdlog::warn("configmaps: reading hour {} failed, will retry: {}", HourLabel(h),
                   loaded.ToString());
    }
    Status r = ApplyRetention();
    if (!r.ok()) spdlog::warn("configmaps: retention failed, will retry: {}", r.ToString());
  }
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> l(thread_mu_);
    while (!stop_) {
      cv_.wait_for(l, options_.debounce, [this] { return stop_; });
      if (stop_) break;
      l.unlock();
      Status s = FlushNow();
      if (!s.ok()) spdlog::warn("configmaps: flush failed, will retry: {}", s.ToString());
      l.lock();
    }
  });
  return loaded;
}

void HourlyConfigMapWriter::Stop() {
  {
    std::lock_guard<std::mutex> l(thread_mu_);
    if (!started_ || stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  Status s = FlushNow();
  if (!s.ok()) spdlog::error("configmaps: final flush failed: {}", s.ToString());
}

Status HourlyConfigMapWriter::FlushNow() {
  std::lock_guard<std::mutex> f(flush_mu_);
  std::vector<HourIndex> hours;
  {
    std::lock_guard<std::mutex> l(mu_);
    RollLocked(HourOf(clock_->Now()));
    for (const auto& [h, st] : hours_) hours.push_back(h);
    ++stats_.flushes;
    stats_.last_flush_requests = 0;
    stats_.last_flush_bytes = 0;
    stats_.last_flush_shards_written = 0;
  }
  Status first;
  for (HourIndex h : hours) {
    Status s = FlushHour(h);
    if (!s.ok() && first.ok()) first = s;
  }
  Status r = ApplyRetention();
  if (!r.ok() && first.ok()) first = r;

  std::lock_guard<std::mutex> l(mu_);
  // Past hours are dropped once safely written (or hopelessly old).
  for (auto it = hours_.begin(); it != hours_.end();) {
    HourState& st = *it->second;
    bool done = st.loaded && !st.data.dirty();
    if (it->first < current_hour_ && (done || it->first < current_hour_ - 2)) {
      if (!done) spdlog::error("configmaps: giving up on hour {}", HourLabel(it->first));
      it = hours_.erase(it);
    } else {
      ++it;
    }
  }
  HourState& cur = StateLocked(current_hour_);
  stats_.shards = cur.data.shard_count();
  stats_.keys = cur.data.key_count();
  stats_.max_shard_bytes = 0;
  for (int i = 0; i < cur.data.shard_count(); ++i) {
    stats_.max_shard_bytes = std::max(stats_.max_shard_bytes, cur.data.shard_bytes(i));
  }
  if (metrics_) {
    metrics_->shards.Set(stats_.shards);
    metrics_->keys.Set(static_cast<double>(stats_.keys));
    metrics_->max_shard_bytes.Set(static_cast<double>(stats_.max_shard_bytes));
  }
  return first;
}

Status HourlyConfigMapWriter::FlushHour(HourIndex hour) {
  HourState* st;
  bool loaded;
  {
    std::lock_guard<std::mutex> l(mu_);
    st = &StateLocked(hour);
    loaded = st->loaded;
  }
  // Never write an hour before reading it: placement must know the server's shards.
  if (!loaded) {
    if (Status s = LoadHour(hour); !s.ok()) return s;
  }
  // Moves after a merge can dirty other shards: a few passes settle it.
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<int> dirty;
    {
      std::lock_guard<std::mutex> l(mu_);
      st->data.Place();
      dirty = st->data.DirtyShards();
    }
    if (dirty.empty()) return Status::Ok();
    for (int shard : dirty) {
      if (Status s = WriteShard(*st, shard); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

Status HourlyConfigMapWriter::WriteShard(HourState& st, int shard) {
  Backoff backoff(options_.conflict_backoff);
  Status last;
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    ShardedHour::WriteRequest req;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto dirty = st.data.DirtyShards();
      if (std::find(dirty.begin(), dirty.end(), shard) == dirty.end()) return Status::Ok();
      req = st.data.BuildWrite(shard, options_.namespace_);
    }
    const std::string name = req.config_map["metadata"]["name"];
    size_t bytes = req.config_map.dump().size();
    auto r = req.create ? api_->Create(options_.namespace_, req.config_map)
                        : api_->Update(options_.namespace_, req.config_map);
    CountRequest(r.ok() ? Status::Ok() : r.status());
    if (r.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      st.data.Written(shard, req.generation, (*r)["metadata"].value("resourceVersion", ""));
      stats_.bytes_written += bytes;
      stats_.last_flush_bytes += bytes;
      ++stats_.last_flush_shards_written;
      ++(req.create ? stats_.creates : stats_.updates);
      if (metrics_) {
        (req.create ? metrics_->creates : metrics_->updates).Increment();
        metrics_->bytes.Increment(static_cast<double>(bytes));
      }
      return Status::Ok();
    }
    last = r.status();
    StatusCode code = last.code();
    if (code == StatusCode::kNotFound) {  // Deleted under us: create it again.
      std::lock_guard<std::mutex> l(mu_);
      st.data.MarkMissing(shard);
      continue;
    }
    if (code != StatusCode::kConflict && code != StatusCode::kAlreadyExists) return last;
    // Someone else wrote it: re-read, merge (union), retry.
    if (code == StatusCode::kConflict) std::this_thread::sleep_for(backoff.Next());
    auto current = api_->Get(options_.namespace_, name);
    CountRequest(current.ok() ? Status::Ok() : current.status());
    std::lock_guard<std::mutex> l(mu_);
    if (current.ok()) {
      st.data.MergeFromServer(shard, *current);
      st.data.Place();
    } else if (current.status().code() == StatusCode::kNotFound) {
      st.data.MarkMissing(shard);
    } else {
      return current.status();
    }
  }
  return Status(StatusCode::kConflict,
                "shard " + std::to_string(shard) + " still conflicting: " + last.ToString());
}

Status HourlyConfigMapWriter::ApplyRetention() {
  if (options_.retention.count() <= 0) return Status::Ok();
  SystemTime now = clock_->Now();
  HourIndex now_hour = HourOf(now);
  if (last_retention_hour_ == now_hour) return Status::Ok();
  // Hours from `keep_from` on are kept: they end after now - retention.
  HourIndex keep_from = HourOf(now - options_.retention);
  std::string selector =
      std::string(kCmAppLabel) + "=" + kCmAppValue + "," + kCmTypeLabel + "=" + kCmTypeValue;
  // Ask only for what is outside the window (notin also matches objects
  // without the hour label, e.g. the old poller's). Too long a list: ask all.
  if (now_hour + 1 - keep_from < 400) {
    selector += std::string(",") + kCmHourLabel + " notin (";
    for (HourIndex h = keep_from; h <= now_hour + 1; ++h) {
      if (h != keep_from) selector += ",";
      selector += HourLabel(h);
    }
    selector += ")";
  }
  auto list = api_->List(options_.namespace_, selector);
  CountRequest(list.ok() ? Status::Ok() : list.status());
  if (!list.ok()) return list.status();
  Status first;
  for (const auto& item : (*list)["items"]) {
    const auto& meta = item["metadata"];
    std::string name = meta.value("name", "");
    std::optional<HourIndex> hour;
    if (meta.contains("labels") && meta["labels"].contains(kCmHourLabel)) {
      hour = ParseHourLabel(meta["labels"].value(kCmHourLabel, ""));
    }
    if (!hour) {
      if (auto p = ParseShardName(name)) hour = p->hour;
    }
    if (!hour || *hour >= keep_from) continue;
    Status s = api_->Delete(options_.namespace_, name);
    CountRequest(s);
    if (s.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.deletes;
      if (metrics_) metrics_->deletes.Increment();
      spdlog::info("configmaps: retention deleted {}", name);
    } else if (s.code() != StatusCode::kNotFound && first.ok()) {
      first = s;
    }
  }
  if (first.ok()) last_retention_hour_ = now_hour;
  return first;
}

ConfigMapWriterStats HourlyConfigMapWriter::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

}  // namespace ashiato
