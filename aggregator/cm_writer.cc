#include "aggregator/cm_writer.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>
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
                            .Add({})),
        total_bytes(prometheus::BuildGauge()
                        .Name("ashiato_cm_bytes")
                        .Help("Bytes (serialized objects) of the hourly pod-ashiato ConfigMaps "
                              "in the namespace, as last listed or written.")
                        .Register(r)
                        .Add({})),
        budget_pruned(prometheus::BuildCounter()
                          .Name("ashiato_cm_budget_pruned_total")
                          .Help("Hourly ConfigMaps deleted to stay within --cm-max-bytes "
                                "(inside retention; the budget, not the age, decided).")
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
  prometheus::Gauge& total_bytes;
  prometheus::Counter& budget_pruned;
};

namespace {

// "2026112401, 2026112402" or, for many, "2026111703 .. 2026112312".
std::string FormatHours(const std::set<HourIndex>& hours) {
  std::string out;
  if (hours.size() > 6) return HourLabel(*hours.begin()) + " .. " + HourLabel(*hours.rbegin());
  for (HourIndex h : hours) {
    if (!out.empty()) out += ", ";
    out += HourLabel(h);
  }
  return out;
}

// The hour of an hourly ConfigMap: its label, else parsed from its name (the
// old poller's have no label).
std::optional<HourIndex> HourOfObject(const nlohmann::json& cm) {
  if (!cm.contains("metadata") || !cm["metadata"].is_object()) return std::nullopt;
  const auto& meta = cm["metadata"];
  if (meta.contains("labels") && meta["labels"].is_object() &&
      meta["labels"].contains(kCmHourLabel)) {
    if (auto h = ParseHourLabel(meta["labels"].value(kCmHourLabel, ""))) return h;
  }
  if (auto p = ParseShardName(meta.value("name", ""))) return p->hour;
  return std::nullopt;
}

// True iff the object carries both labels retention and the budget require
// before deleting anything.
bool HasOurLabels(const nlohmann::json& cm) {
  if (!cm.contains("metadata") || !cm["metadata"].is_object()) return false;
  const auto& meta = cm["metadata"];
  if (!meta.contains("labels") || !meta["labels"].is_object()) return false;
  const auto& l = meta["labels"];
  return l.value(kCmAppLabel, "") == kCmAppValue && l.value(kCmTypeLabel, "") == kCmTypeValue;
}

}  // namespace

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

HourIndex HourlyConfigMapWriter::KeepFrom(SystemTime now) const {
  if (options_.retention.count() <= 0) return std::numeric_limits<HourIndex>::min();
  return HourOf(now - options_.retention);
}

HourIndex HourlyConfigMapWriter::OldestRetainedHour() const { return KeepFrom(clock_->Now()); }

HourlyConfigMapWriter::HourState* HourlyConfigMapWriter::PastStateLocked(HourIndex hour) {
  // Hour 0 (1970) is what an unset timestamp gives: never a real report.
  if (hour <= 0 || hour >= current_hour_ || hour <= budget_floor_) return nullptr;
  if (hour < KeepFrom(clock_->Now())) return nullptr;
  return &StateLocked(hour);
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
  // A late report about an earlier hour also lands there (read back first if
  // that hour is no longer in memory).
  HourIndex h = HourOf(when);
  if (h < current_hour_) {
    if (HourState* st = PastStateLocked(h)) st->data.Record(pk.key, node, pk.full_name);
  }
}

void HourlyConfigMapWriter::PodGone(const std::string& ns, const std::string& name,
                                    const std::string& node, SystemTime when) {
  PodKey pk = MakePodKey(ns, name);
  std::lock_guard<std::mutex> l(mu_);
  RollLocked(HourOf(clock_->Now()));
  live_.erase(pk.key);
  if (ns.empty() || name.empty() || node.empty()) return;
  // The pod existed on `node` until `when`: even one never seen present
  // (created and deleted within one report) ran in that hour.
  // An unset `when` (1970) counts as now.
  HourIndex h = HourOf(when);
  HourState* st = h <= 0 || h >= current_hour_ ? &StateLocked(current_hour_) : PastStateLocked(h);
  if (st) st->data.Record(pk.key, node, pk.full_name);
}

void HourlyConfigMapWriter::Backfill(HourIndex hour, std::vector<BackfillEntry> entries) {
  // One value per pod, its nodes newest first, as PodSeen in this order would give.
  std::map<std::string, std::string> values;
  for (const BackfillEntry& e : entries) {
    if (e.namespace_.empty() || e.name.empty() || e.node.empty()) continue;
    PodKey pk = MakePodKey(e.namespace_, e.name);
    std::string& v = values[pk.key];
    v = AddNodeToValue(v, e.node, pk.full_name);
  }
  entries.clear();
  std::lock_guard<std::mutex> l(mu_);
  RollLocked(HourOf(clock_->Now()));
  HourState* st = hour == current_hour_ ? &StateLocked(current_hour_) : PastStateLocked(hour);
  if (!st) {
    spdlog::debug("configmaps: backfill of hour {} ignored (outside retention or budget)",
                  HourLabel(hour));
    return;
  }
  for (auto& [key, value] : values) {
    if (st->loaded) {
      st->data.Merge(key, value);
      continue;
    }
    auto [it, inserted] = st->backfill.try_emplace(key, value);
    if (!inserted) {
      st->backfill_bytes -= EntryBytes(key.size(), it->second.size());
      it->second = MergeValues(it->second, value);
    }
    st->backfill_bytes += EntryBytes(key.size(), it->second.size());
  }
  // Hours beyond the budget are forgotten right away, so backfilling more
  // history than the budget holds does not pile up in memory.
  PlanBudgetLocked();
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

void HourlyConfigMapWriter::NoteServerObjectLocked(const nlohmann::json& cm) {
  if (!HasOurLabels(cm)) return;
  auto hour = HourOfObject(cm);
  if (!hour) return;
  server_objects_[cm["metadata"].value("name", "")] = ServerObject{*hour, cm.dump().size()};
}

uint64_t HourlyConfigMapWriter::TotalBytesLocked() const {
  uint64_t total = 0;
  for (const auto& [name, o] : server_objects_) total += o.bytes;
  return total;
}

Status HourlyConfigMapWriter::LoadHour(HourIndex hour) {
  std::string selector =
      std::string(kCmAppLabel) + "=" + kCmAppValue + "," + kCmHourLabel + "=" + HourLabel(hour);
  // Item by item: an hour at 150,000 pods is ~9.4 MB, never held as one list.
  Status s = api_->ListEach(options_.namespace_, selector, [&](const nlohmann::json& item) {
    if (!item.contains("metadata") || !item["metadata"].is_object()) return;
    auto parsed = ParseShardName(item["metadata"].value("name", ""));
    if (!parsed || parsed->hour != hour) return;
    std::lock_guard<std::mutex> l(mu_);
    StateLocked(hour).data.MergeFromServer(parsed->shard, item);
    NoteServerObjectLocked(item);
  });
  CountRequest(s);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  HourState& st = StateLocked(hour);
  st.loaded = true;
  // Backfilled values go after the server's, which keep their node order.
  for (const auto& [key, value] : st.backfill) st.data.Merge(key, value);
  st.backfill.clear();
  st.backfill_bytes = 0;
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
    // Before writing anything: hours the budget cannot hold are not written.
    PlanBudgetLocked();
    for (auto it = hours_.rbegin(); it != hours_.rend(); ++it) hours.push_back(it->first);
    ++stats_.flushes;
    stats_.last_flush_requests = 0;
    stats_.last_flush_bytes = 0;
    stats_.last_flush_shards_written = 0;
  }
  Status first;
  for (HourIndex h : hours) {  // Newest first: the current hour matters most.
    Status s = FlushHour(h);
    if (!s.ok() && first.ok()) first = s;
  }
  Status r = ApplyRetention();
  if (!r.ok() && first.ok()) first = r;
  // Between the hourly passes: prune as soon as our own writes cross the budget.
  if (options_.max_total_bytes > 0) {
    bool due;
    {
      std::lock_guard<std::mutex> l(mu_);
      due = TotalBytesLocked() > options_.max_total_bytes &&
            clock_->Now() - last_budget_check_ >= options_.budget_check_interval;
    }
    if (due) {
      Status b = EnforceBudget();
      if (!b.ok() && first.ok()) first = b;
    }
  }

  std::lock_guard<std::mutex> l(mu_);
  // Past hours are dropped once safely written; unwritten ones are retried
  // while retention (and the budget) still keep them.
  const HourIndex keep_from = KeepFrom(clock_->Now());
  for (auto it = hours_.begin(); it != hours_.end();) {
    HourIndex h = it->first;
    HourState& st = *it->second;
    bool done = st.loaded && !st.data.dirty() && st.backfill.empty();
    bool hopeless = h < keep_from || h <= budget_floor_;
    if (h < current_hour_ && (done || hopeless)) {
      if (!done && h > budget_floor_) {
        spdlog::error("configmaps: giving up on hour {}: outside --cm-retention", HourLabel(h));
      }
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
  stats_.total_bytes = TotalBytesLocked();
  if (metrics_) {
    metrics_->shards.Set(stats_.shards);
    metrics_->keys.Set(static_cast<double>(stats_.keys));
    metrics_->max_shard_bytes.Set(static_cast<double>(stats_.max_shard_bytes));
    metrics_->total_bytes.Set(static_cast<double>(stats_.total_bytes));
  }
  return first;
}

Status HourlyConfigMapWriter::FlushHour(HourIndex hour) {
  HourState* st;
  bool loaded;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (hour <= budget_floor_) return Status::Ok();  // Pruned by the budget.
    st = &StateLocked(hour);
    loaded = st->loaded;
  }
  // Never write an hour before reading it: placement must know the server's
  // shards, and merging first means an hour the server already has in full
  // costs one list and no write.
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
      req = st.data.BuildWrite(shard, options_.namespace_, options_.cluster);
    }
    const std::string name = req.config_map["metadata"]["name"];
    size_t bytes = req.config_map.dump().size();
    auto r = req.create ? api_->Create(options_.namespace_, req.config_map)
                        : api_->Update(options_.namespace_, req.config_map);
    CountRequest(r.ok() ? Status::Ok() : r.status());
    if (r.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      st.data.Written(shard, req.generation, (*r)["metadata"].value("resourceVersion", ""));
      NoteServerObjectLocked(*r);
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
      server_objects_.erase(name);
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
      NoteServerObjectLocked(*current);
    } else if (current.status().code() == StatusCode::kNotFound) {
      st.data.MarkMissing(shard);
      server_objects_.erase(name);
    } else {
      return current.status();
    }
  }
  return Status(StatusCode::kConflict,
                "shard " + std::to_string(shard) + " still conflicting: " + last.ToString());
}

Status HourlyConfigMapWriter::ApplyRetention() {
  const bool by_age = options_.retention.count() > 0;
  const bool budget = options_.max_total_bytes > 0;
  if (!by_age && !budget) return Status::Ok();
  SystemTime now = clock_->Now();
  HourIndex now_hour = HourOf(now);
  if (last_retention_hour_ == now_hour) return Status::Ok();
  // Hours from `keep_from` on are kept: they end after now - retention.
  HourIndex keep_from = KeepFrom(now);
  std::string selector =
      std::string(kCmAppLabel) + "=" + kCmAppValue + "," + kCmTypeLabel + "=" + kCmTypeValue;
  // The budget needs the size of every hour: one list of all of them. Without
  // it, ask only for what is outside the window (notin also matches objects
  // without the hour label, e.g. the old poller's). Too long a list: ask all.
  if (!budget && now_hour + 1 - keep_from < 400) {
    selector += std::string(",") + kCmHourLabel + " notin (";
    for (HourIndex h = keep_from; h <= now_hour + 1; ++h) {
      if (h != keep_from) selector += ",";
      selector += HourLabel(h);
    }
    selector += ")";
  }
  std::vector<std::string> expired;
  std::map<std::string, ServerObject> present;
  Status listed = api_->ListEach(options_.namespace_, selector, [&](const nlohmann::json& item) {
    auto hour = HourOfObject(item);
    if (!hour) return;
    std::string name = item["metadata"].value("name", "");  // HourOfObject: metadata exists.
    if (by_age && *hour < keep_from) {
      expired.push_back(name);
    } else if (HasOurLabels(item)) {
      present[name] = ServerObject{*hour, item.dump().size()};
    }
  });
  CountRequest(listed);
  if (!listed.ok()) return listed;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (budget) {
      server_objects_ = std::move(present);  // The whole picture.
    } else {
      for (auto& [name, o] : present) server_objects_[name] = o;
    }
  }
  Status first;
  for (const std::string& name : expired) {
    Status s = api_->Delete(options_.namespace_, name);
    CountRequest(s);
    if (s.ok() || s.code() == StatusCode::kNotFound) {
      std::lock_guard<std::mutex> l(mu_);
      server_objects_.erase(name);
    }
    if (s.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      ++stats_.deletes;
      if (metrics_) metrics_->deletes.Increment();
      spdlog::info("configmaps: retention deleted {}", name);
    } else if (s.code() != StatusCode::kNotFound && first.ok()) {
      first = s;
    }
  }
  if (budget) {
    Status b = EnforceBudget();
    if (!b.ok() && first.ok()) first = b;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    stats_.total_bytes = TotalBytesLocked();
    if (metrics_) metrics_->total_bytes.Set(static_cast<double>(stats_.total_bytes));
  }
  if (first.ok()) last_retention_hour_ = now_hour;
  return first;
}

void HourlyConfigMapWriter::PlanBudgetLocked() {
  const uint64_t budget = options_.max_total_bytes;
  if (budget == 0) return;
  // Bytes per hour: what the server holds, or what we are about to write if
  // more (an hour in memory is a superset of its server copy once merged).
  std::map<HourIndex, uint64_t> per_hour;
  uint64_t total = 0;
  for (const auto& [name, o] : server_objects_) per_hour[o.hour] += o.bytes;
  for (const auto& [h, st] : hours_) {
    // A written hour is exactly its server copy; estimate only what is not.
    if (h <= budget_floor_ || (st->loaded && !st->data.dirty())) continue;
    uint64_t mine = st->data.EstimatedBytes(st->backfill_bytes);
    uint64_t& have = per_hour[h];
    have = std::max(have, mine);
  }
  for (const auto& [h, bytes] : per_hour) {
    if (h > budget_floor_) total += bytes;
  }
  if (total <= budget) return;
  // Newest first: the current hour (and any later) always stays; the first
  // older hour that does not fit, and every hour before it, goes.
  uint64_t kept = 0;
  HourIndex floor = budget_floor_;
  for (auto it = per_hour.rbegin(); it != per_hour.rend(); ++it) {
    if (it->first <= budget_floor_) break;
    if (it->first >= current_hour_ || kept + it->second <= budget) {
      kept += it->second;
      continue;
    }
    floor = it->first;
    break;
  }
  if (floor == budget_floor_) return;
  budget_floor_ = floor;
  std::set<HourIndex> unwritten;
  for (auto& [h, st] : hours_) {
    if (h > floor) break;
    if (!st->loaded || st->data.dirty()) unwritten.insert(h);
    st->backfill.clear();
    st->backfill_bytes = 0;
  }
  if (!unwritten.empty()) {
    spdlog::warn(
        "configmaps: not writing {} hour(s) {}: over the byte budget --cm-max-bytes={} with "
        "the newer hours (~{} bytes); the budget, not --cm-retention, decided",
        unwritten.size(), FormatHours(unwritten), budget, kept);
  }
}

Status HourlyConfigMapWriter::EnforceBudget() {
  if (options_.max_total_bytes == 0) return Status::Ok();
  std::vector<std::string> victims;  // Oldest first (names sort by hour).
  uint64_t total_before;
  {
    std::lock_guard<std::mutex> l(mu_);
    last_budget_check_ = clock_->Now();
    total_before = TotalBytesLocked();
    PlanBudgetLocked();
    for (const auto& [name, o] : server_objects_) {
      if (o.hour <= budget_floor_ && o.hour < current_hour_) victims.push_back(name);
    }
  }
  if (victims.empty()) return Status::Ok();
  Status first;
  std::set<HourIndex> pruned;
  int deleted = 0;
  for (const std::string& name : victims) {
    Status s = api_->Delete(options_.namespace_, name);
    CountRequest(s);
    std::lock_guard<std::mutex> l(mu_);
    if (s.ok() || s.code() == StatusCode::kNotFound) {
      auto it = server_objects_.find(name);
      if (it != server_objects_.end()) {
        if (s.ok()) pruned.insert(it->second.hour);
        server_objects_.erase(it);
      }
    }
    if (s.ok()) {
      ++deleted;
      ++stats_.budget_pruned;
      if (metrics_) metrics_->budget_pruned.Increment();
    } else if (s.code() != StatusCode::kNotFound && first.ok()) {
      first = s;
    }
  }
  uint64_t total_after;
  {
    std::lock_guard<std::mutex> l(mu_);
    total_after = TotalBytesLocked();
    stats_.total_bytes = total_after;
    if (metrics_) metrics_->total_bytes.Set(static_cast<double>(total_after));
  }
  if (!pruned.empty()) {
    spdlog::warn(
        "configmaps: deleted {} hour(s) {} ({} ConfigMaps, oldest first) although inside "
        "--cm-retention: the byte budget --cm-max-bytes={} decided, not the age "
        "({} -> {} bytes)",
        pruned.size(), FormatHours(pruned), deleted, options_.max_total_bytes, total_before,
        total_after);
  }
  return first;
}

ConfigMapWriterStats HourlyConfigMapWriter::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

}  // namespace ashiato
