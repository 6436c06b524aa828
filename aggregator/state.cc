#include "aggregator/state.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "aggregator/image_census.h"

namespace ashiato {
namespace {

using nlohmann::json;

UnixMicros Micros(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
SystemTime FromMicros(UnixMicros us) { return SystemTime(std::chrono::microseconds(us)); }
SystemTime FromUnixMs(int64_t ms) { return SystemTime(std::chrono::milliseconds(ms)); }

std::vector<std::string> IpsOf(const PodRecord& p) {
  std::vector<std::string> ips;
  for (const auto& ip : p.pod_ips) {
    if (!ip.empty() && std::find(ips.begin(), ips.end(), ip) == ips.end()) ips.push_back(ip);
  }
  if (!p.pod_ip.empty() && std::find(ips.begin(), ips.end(), p.pod_ip) == ips.end()) {
    ips.push_back(p.pod_ip);
  }
  return ips;
}

// (container, image) -> "sha256:..." digest, for the image intervals.
std::map<std::pair<std::string, std::string>, std::string> ImagesOf(const PodRecord& p) {
  std::map<std::pair<std::string, std::string>, std::string> out;
  for (const auto& c : p.containers) {
    if (!c.image.empty()) out[{c.name, c.image}] = ImageCensus::DigestOf(c.image_id);
  }
  return out;
}

// When a pod first seen now has most likely held its IP and images since:
// the earliest condition transition after scheduling (the sandbox got its
// IP before any of them), else its creation; never later than `when`.
SystemTime StartEstimate(const PodRecord& p, SystemTime when) {
  std::optional<SystemTime> best;
  for (const auto& c : p.conditions) {
    if (c.type == "PodScheduled") continue;
    auto t = ParseRfc3339(c.last_transition_time);
    if (t && (!best || *t < *best)) best = t;
  }
  if (!best) best = ParseRfc3339(p.creation_timestamp);
  if (!best || *best > when) return when;
  return *best;
}

}  // namespace

ClusterState::ClusterState(StateOptions options, Store* store, AggregatorMetrics* metrics,
                           const Clock* clock)
    : options_(std::move(options)),
      store_(store),
      metrics_(metrics),
      clock_(clock ? clock : Clock::Real()) {}

void ClusterState::AddObserver(PodObserver* observer) {
  std::lock_guard<std::mutex> lock(ingest_mu_);
  observers_.push_back(observer);
}

void ClusterState::AddCensus(PodCensus* census) {
  std::lock_guard<std::mutex> lock(ingest_mu_);
  censuses_.push_back(census);
}

Status ClusterState::Open() {
  std::lock_guard<std::mutex> ingest(ingest_mu_);
  Status st;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    st = LoadLocked();
  }
  if (!st.ok()) {
    // The store may be unhealthy (corrupt file, full disk): serve reads and
    // health, refuse pushes, and load once it recovers.
    needs_reload_ = true;
    opened_ = true;  // CheckStore() loads it, then applies the scope.
    spdlog::error("state: cannot load from the store: {}", st.ToString());
    return Status::Ok();
  }
  SystemTime now = clock_->Now();
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const auto& [uid, e] : pods_) {
      if (e.deleted) continue;
      PodRecord rec = e.pod.Unpack();
      if (!scope_.Contains(rec.namespace_, rec.labels)) continue;
      for (PodObserver* o : observers_) o->OnPodPresent(rec, now);
    }
    spdlog::info("state loaded from {}: {} live pods, {} tombstones, {} nodes", store_->path(),
                 live_, tombstones_.size(), nodes_.size());
  }
  opened_ = true;
  // The scope may have changed while the aggregator was down.
  st = ApplyWantedScopeLocked();
  if (!st.ok()) spdlog::warn("live configuration: scope not applied yet: {}", st.ToString());
  return Status::Ok();
}

Status ClusterState::SetScope(const PodScope& scope) {
  std::lock_guard<std::mutex> ingest(ingest_mu_);
  wanted_scope_ = scope;
  if (!opened_) return Status::Ok();
  return ApplyWantedScopeLocked();
}

PodScope ClusterState::scope() const {
  std::lock_guard<std::mutex> ingest(ingest_mu_);
  return scope_;
}

bool ClusterState::InScope(const std::string& uid, const std::string& namespace_) const {
  std::lock_guard<std::mutex> ingest(ingest_mu_);
  if (scope_.everything()) return true;
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return scope_.ContainsNamespace(namespace_);
  PodRecord rec = it->second.pod.Unpack();
  return scope_.Contains(rec.namespace_, rec.labels);
}

Status ClusterState::ApplyWantedScopeLocked() {
  if (wanted_scope_.Canonical() == scope_.Canonical()) return Status::Ok();
  if (needs_reload_ || !store_->healthy()) {
    return Unavailable("history store unavailable: " + store_->last_error());
  }
  struct Crossing {
    PodRecord pod;
    std::string observed_by;
    bool enters;
  };
  std::vector<Crossing> crossings;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const auto& [uid, e] : pods_) {
      if (e.deleted) continue;
      PodRecord rec = e.pod.Unpack();
      bool was = scope_.Contains(rec.namespace_, rec.labels);
      bool will = wanted_scope_.Contains(rec.namespace_, rec.labels);
      if (was != will) crossings.push_back({std::move(rec), e.observed_by(), will});
    }
  }
  std::sort(crossings.begin(), crossings.end(), [](const Crossing& a, const Crossing& b) {
    return std::tie(a.pod.namespace_, a.pod.name, a.pod.uid) <
           std::tie(b.pod.namespace_, b.pod.name, b.pod.uid);
  });
  batch_ = ChangeBatch();
  SystemTime now = clock_->Now();
  now_text_ = FormatRfc3339Micros(now);
  replay_batch_ = false;
  size_t entered = 0;
  for (const Crossing& c : crossings) {
    if (!c.enters) continue;
    batch_.events.push_back(EventRowFor("SYNC", now, now, c.observed_by, c.pod));
    ++entered;
  }
  batch_.meta["scope"] = wanted_scope_.Canonical();
  Status st = store_->Commit(batch_);
  if (!st.ok()) return st;
  scope_ = wanted_scope_;
  for (const Crossing& c : crossings) {
    for (PodObserver* o : observers_) {
      if (c.enters) {
        o->OnPodPresent(c.pod, now);
      } else {
        o->OnPodGone(c.pod, now);
      }
    }
  }
  if (metrics_) metrics_->events_sync->Increment(static_cast<double>(entered));
  spdlog::info("live configuration: scope {} in force: {} live pods entered it (SYNC), {} left it",
               scope_.everything() ? "\"everything\"" : scope_.Canonical(), entered,
               crossings.size() - entered);
  if (entered > 0 && on_commit_) on_commit_();
  return Status::Ok();
}

Status ClusterState::LoadLocked() {
  pods_.clear();
  tombstones_.clear();
  nodes_.clear();
  live_ = 0;
  for (PodCensus* c : censuses_) c->Clear();
  SystemTime now = clock_->Now();
  Status parse_error;
  Status st = store_->LoadNodes([&](NodeRow&& n) {
    NodeEntry& e = NodeNamed(n.node);
    e.epoch = std::move(n.epoch);
    e.last_seq = n.last_seq;
    e.retired_epochs = std::move(n.retired_epochs);
    e.last_snapshot = FromMicros(n.last_snapshot);
    e.reports = n.reports;
    e.last_report = now;  // Restored nodes get a full --stale-after before they count as silent.
  });
  if (!st.ok()) return st;
  st = store_->LoadPods(options_.max_tombstones, [&](PodRow&& row) {
    json j = json::parse(row.record, nullptr, false);
    if (!j.is_object()) {
      if (parse_error.ok()) parse_error = Internal("pod " + row.uid + ": unreadable record");
      return;
    }
    PodRecord rec = PodRecordFromLogJson(j);
    rec.resource_version = row.resource_version;
    PodEntry& e = pods_[row.uid];
    e.pod = Pack(rec);
    e.observer = &NodeNamed(row.observed_by);
    e.epoch = InternedString(&strings_, row.epoch);
    e.seq = row.seq;
    e.deleted = row.deleted;
    e.deleted_by_snapshot = row.deleted_by_snapshot;
    e.last_change = FromMicros(row.last_change);
    if (e.deleted) {
      tombstones_.push_back(row.uid);
    } else {
      LinkLive(e, *e.observer);
      ++live_;
      for (PodCensus* c : censuses_) c->Restore(rec);
    }
  });
  if (!st.ok()) return st;
  if (!parse_error.ok()) spdlog::warn("state: {}", parse_error.ToString());
  // The scope in force is the one committed with the lines it caused.
  auto stored = store_->Meta("scope");
  if (!stored.ok()) return stored.status();
  auto scope = PodScope::FromCanonical(*stored);
  if (scope.ok()) {
    scope_ = std::move(*scope);
  } else {
    spdlog::warn("state: stored scope unreadable ({}); taking every pod as in scope",
                 scope.status().ToString());
    scope_ = PodScope();
  }
  return Status::Ok();
}

bool ClusterState::accepting() const { return store_->healthy(); }

void ClusterState::CheckStore() {
  std::lock_guard<std::mutex> ingest(ingest_mu_);
  if (!store_->healthy() || needs_reload_) {
    if (!store_->Probe().ok()) return;
    std::unique_lock<std::shared_mutex> lock(mu_);
    Status st = LoadLocked();
    if (!st.ok()) {
      spdlog::error("state: reload from the store failed: {}", st.ToString());
      return;
    }
    needs_reload_ = false;
    spdlog::info("state reloaded from the store: {} live pods, accepting reports again", live_);
  }
  if (!opened_) return;
  Status st = ApplyWantedScopeLocked();  // A scope change the store refused earlier.
  if (!st.ok()) spdlog::warn("live configuration: scope not applied yet: {}", st.ToString());
}

ApplyResult ClusterState::Apply(const Report& report) {
  Report copy = report;
  return Apply(std::move(copy));
}

ApplyResult ClusterState::Apply(Report&& report) {
  // Reports that arrive while a commit runs queue up; the first in line
  // applies and commits every report queued behind it in one transaction
  // (group commit, as leveldb's DBImpl::Write), then hands each its result.
  PendingReport self;
  self.report = &report;
  std::unique_lock<std::mutex> queue(queue_mu_);
  queue_.push_back(&self);
  self.cv.wait(queue, [&] { return self.done || queue_.front() == &self; });
  if (self.done) return std::move(self.result);
  std::vector<PendingReport*> group;
  size_t records = 0;
  for (PendingReport* p : queue_) {
    if (!group.empty() && records + p->report->records.size() > kMaxGroupRecords) break;
    records += p->report->records.size();
    group.push_back(p);
  }
  queue.unlock();
  ApplyGroup(group);
  queue.lock();
  for (PendingReport* p : group) {
    queue_.pop_front();
    if (p != &self) {
      p->done = true;
      p->cv.notify_one();
    }
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return std::move(self.result);
}

void ClusterState::ApplyGroup(const std::vector<PendingReport*>& group) {
  std::lock_guard<std::mutex> ingest(ingest_mu_);
  if (needs_reload_ || !store_->healthy()) {
    for (PendingReport* p : group) {
      p->result.outcome = ApplyOutcome::kUnavailable;
      p->result.error = Unavailable("history store unavailable: " + store_->last_error());
    }
    return;
  }
  batch_ = ChangeBatch();
  touched_.clear();
  touched_set_.clear();
  notices_.clear();
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    for (PendingReport* p : group) {
      size_t events_before = batch_.events.size();
      p->result = ApplyReportLocked(*p->report);
      p->result.events = batch_.events.size() - events_before;
    }
    for (const std::string& uid : touched_) {
      const PodEntry& e = pods_.at(uid);
      PodRow row;
      PodRecord rec = e.pod.Unpack();
      row.uid = uid;
      row.namespace_ = rec.namespace_;
      row.name = rec.name;
      row.node = rec.node_name;
      row.observed_by = e.observed_by();
      row.epoch = std::string(e.epoch.view());
      row.seq = e.seq;
      row.resource_version = rec.resource_version;
      row.deleted = e.deleted;
      row.deleted_by_snapshot = e.deleted_by_snapshot;
      row.last_change = Micros(e.last_change);
      AppendPodLogJson(rec, {}, &row.record);
      batch_.pods.push_back(std::move(row));
    }
  }
  Status st = store_->Commit(batch_);
  if (!st.ok()) {
    // The cache is ahead of the store: rebuild it from the store (reads
    // usually still work on a full or read-only disk), else before
    // accepting anything else. Every report of the group is refused, those
    // answered as replays too: their seq was applied by a report of this
    // group, which is not committed.
    needs_reload_ = true;
    {
      std::unique_lock<std::shared_mutex> lock(mu_);
      if (LoadLocked().ok()) needs_reload_ = false;
    }
    for (PendingReport* p : group) {
      ApplyResult refused;
      refused.outcome = ApplyOutcome::kUnavailable;
      refused.error = st;
      p->result = std::move(refused);
    }
    return;
  }
  for (const Notice& n : notices_) {
    for (PodObserver* o : observers_) {
      if (n.gone) {
        o->OnPodGone(n.pod, n.when);
      } else {
        o->OnPodPresent(n.pod, n.when);
      }
    }
  }
  if (metrics_) {
    for (const EventRow& e : batch_.events) {
      if (e.event == "CREATED") metrics_->events_created->Increment();
      if (e.event == "UPDATED") metrics_->events_updated->Increment();
      if (e.event == "DELETED") metrics_->events_deleted->Increment();
      if (e.event == "SYNC") metrics_->events_sync->Increment();
      if (e.event == "IMAGE_ADDED") metrics_->events_image_added->Increment();
      if (e.event == "IMAGE_REMOVED") metrics_->events_image_removed->Increment();
    }
  }
  if (!batch_.events.empty() && on_commit_) on_commit_();
}

ApplyResult ClusterState::ApplyReportLocked(Report& report) {
  ApplyResult result;
  SystemTime now = clock_->Now();
  now_text_ = FormatRfc3339Micros(now);
  replay_batch_ = report.replay;
  NodeEntry& node = NodeNamed(report.node);
  bool gap = false;
  if (report.epoch != node.epoch) {
    if (std::find(node.retired_epochs.begin(), node.retired_epochs.end(), report.epoch) !=
        node.retired_epochs.end()) {
      result.outcome = ApplyOutcome::kStaleEpoch;
      return result;
    }
    if (!node.epoch.empty()) {
      node.retired_epochs.push_back(node.epoch);
      if (node.retired_epochs.size() > 16) node.retired_epochs.erase(node.retired_epochs.begin());
    }
    node.epoch = report.epoch;
    node.last_seq = report.seq;
  } else if (report.seq <= node.last_seq) {
    node.last_report = now;  // A retry still proves the agent is alive.
    result.outcome = ApplyOutcome::kReplayed;
    result.committed_seq = node.last_seq;
    return result;
  } else {
    // A gap: batches this store never committed (an older copy of the
    // store was restored, or batches were refused as invalid). Answering
    // a committed_seq below what the agent had acknowledged makes it
    // replay what it retains; dedup makes that safe.
    gap = report.seq > node.last_seq + 1;
    if (gap) result.committed_seq = node.last_seq;
    node.last_seq = report.seq;
  }
  node.last_report = now;
  ++node.reports;

  // Records are moved into the cache below; a snapshot needs its UIDs after.
  std::unordered_set<std::string> present;
  if (report.snapshot) {
    present.reserve(report.records.size());
    for (const auto& r : report.records) present.insert(r.pod.uid);
  }
  for (ReportRecord& r : report.records) {
    int rc = ApplyRecord(report, node, r, now);
    if (rc > 0) {
      ++result.applied;
    } else if (rc == 0) {
      ++result.duplicate;
    } else {
      ++result.stale;
    }
  }
  if (report.snapshot) {
    std::vector<std::string> gone;
    for (const PodEntry* p = node.live_head; p; p = p->next_live) {
      std::string uid(p->pod.uid());
      if (!present.count(uid)) gone.push_back(std::move(uid));
    }
    std::sort(gone.begin(), gone.end());
    for (const auto& uid : gone) {
      PodEntry& e = pods_.at(uid);
      e.deleted = true;
      e.deleted_by_snapshot = true;
      e.last_change = now;
      UnlinkLive(e);
      --live_;
      AddTombstone(uid);
      Touch(uid);
      Emit("DELETED", now, now, report.node, e.pod.Unpack(), &e.pod, false);
    }
    node.last_snapshot = now;
  }
  {
    // Heartbeats too: a persisted seq without holes is what makes a gap
    // after a restart mean lost batches.
    NodeRow row;
    row.node = report.node;
    row.epoch = node.epoch;
    row.last_seq = node.last_seq;
    row.retired_epochs = node.retired_epochs;
    row.last_snapshot = Micros(node.last_snapshot);
    row.reports = node.reports;
    batch_.nodes.push_back(std::move(row));
  }
  if (!gap) result.committed_seq = node.last_seq;
  return result;
}

ClusterState::NodeEntry& ClusterState::NodeNamed(const std::string& name) {
  auto [it, inserted] = nodes_.try_emplace(name);
  if (inserted) it->second.name = &it->first;
  return it->second;
}

void ClusterState::LinkLive(PodEntry& e, NodeEntry& node) {
  e.observer = &node;
  e.prev_live = nullptr;
  e.next_live = node.live_head;
  if (node.live_head) node.live_head->prev_live = &e;
  node.live_head = &e;
  ++node.live_count;
}

void ClusterState::UnlinkLive(PodEntry& e) {
  NodeEntry& node = *e.observer;
  (e.prev_live ? e.prev_live->next_live : node.live_head) = e.next_live;
  if (e.next_live) e.next_live->prev_live = e.prev_live;
  e.prev_live = e.next_live = nullptr;
  --node.live_count;
}

void ClusterState::Touch(const std::string& uid) {
  if (touched_set_.insert(uid).second) touched_.push_back(uid);
}

int ClusterState::ApplyRecord(const Report& report, NodeEntry& node, ReportRecord& rec,
                              SystemTime now) {
  const PodRecord& p = rec.pod;
  SystemTime when = rec.observed_unix_ms > 0 ? FromUnixMs(rec.observed_unix_ms) : now;
  auto [it, inserted] = pods_.try_emplace(p.uid);
  const std::string& uid = it->first;
  if (inserted) {
    PodEntry& e = it->second;
    e.pod = Pack(p);
    e.observer = &node;
    e.epoch = InternedString(&strings_, report.epoch);
    e.seq = report.seq;
    e.last_change = when;
    Touch(uid);
    if (rec.op == RecordOp::kDelete) {
      // Never seen alive (created and deleted while we were away, or
      // replayed to an aggregator that lost its store): a real change.
      e.deleted = true;
      AddTombstone(uid);
      Emit("DELETED", when, now, report.node, p, nullptr, true);
      return 1;
    }
    LinkLive(e, node);
    ++live_;
    Emit(report.snapshot ? "SYNC" : "CREATED", when, now, report.node, p, nullptr, true);
    return 1;
  }

  PodEntry& e = it->second;
  // Order this record against the state we hold: >0 newer, 0 same, <0 older.
  int order;
  const std::string& rv_new = p.resource_version;
  const std::string rv_old(e.pod.resource_version());
  if (!rv_new.empty() && !rv_old.empty()) {
    order = CompareResourceVersions(rv_new, rv_old);
  } else if (e.epoch == report.epoch) {
    order = report.seq > e.seq ? 1 : (report.seq == e.seq ? 0 : -1);
  } else {
    order = 1;  // Another agent process: its report is the later one.
  }

  if (e.deleted) {
    // A snapshot-inferred deletion is undone by a strictly newer record (a
    // snapshot raced with a change); an agent-reported deletion is final.
    if (rec.op == RecordOp::kUpsert && e.deleted_by_snapshot && order > 0) {
      e.deleted = false;
      e.deleted_by_snapshot = false;
      e.pod = Pack(p);
      e.epoch = InternedString(&strings_, report.epoch);
      e.seq = report.seq;
      e.last_change = when;
      LinkLive(e, node);
      ++live_;
      Touch(uid);
      Emit(report.snapshot ? "SYNC" : "CREATED", when, now, report.node, p, nullptr, false);
      return 1;
    }
    return order < 0 ? -1 : 0;
  }
  if (order < 0) return -1;

  if (rec.op == RecordOp::kDelete) {
    // The same version as we hold is fine: a deletion found by a relist
    // carries the last state seen.
    StoredPod before = std::move(e.pod);
    e.deleted = true;
    e.pod = Pack(p);
    e.epoch = InternedString(&strings_, report.epoch);
    e.seq = report.seq;
    e.last_change = when;
    UnlinkLive(e);
    --live_;
    AddTombstone(uid);
    Touch(uid);
    Emit("DELETED", when, now, report.node, p, &before, false);
    return 1;
  }
  // The same version is a duplicate, unless the agent sent it as a change:
  // it extracts differently now (the live configuration's captureAnnotations
  // changed and it relisted). Snapshots re-send every pod: not compared.
  if (order == 0 && report.snapshot) return 0;
  StoredPod packed = Pack(p);
  if (order == 0 && packed.SameObservableState(e.pod)) return 0;
  bool changed = !packed.SameObservableState(e.pod);
  if (e.observer != &node) {
    UnlinkLive(e);
    LinkLive(e, node);
  }
  e.epoch = InternedString(&strings_, report.epoch);
  e.seq = report.seq;
  Touch(uid);
  if (!changed) {
    // Only the resourceVersion moved: remember it for dedup.
    if (e.pod.resource_version() != p.resource_version) e.pod = std::move(packed);
    return 0;
  }
  StoredPod before = std::move(e.pod);
  e.pod = std::move(packed);
  e.last_change = when;
  Emit("UPDATED", when, now, report.node, p, &before, false);
  return 1;
}

EventRow ClusterState::EventRowFor(const std::string& event, SystemTime when, SystemTime now,
                                   const std::string& node, const PodRecord& record) const {
  std::string when_text = when == now ? now_text_ : FormatRfc3339Micros(when);
  EventRow row;
  row.event = event;
  row.ts = Micros(when);
  row.aggregated = Micros(now);
  row.uid = record.uid;
  row.namespace_ = record.namespace_;
  row.name = record.name;
  row.node = record.node_name;
  row.observed_by = node;
  // Extra fields in key order (AppendPodLogJson merges them with the pod's).
  NodeDirectory::LogText where;
  if (node_directory_) where = node_directory_->LogFields(record.node_name);
  LogField extra[8];
  size_t n = 0;
  extra[n++] = {"aggregated_at", now_text_};
  extra[n++] = {"event", event};
  if (!where.addresses.empty()) extra[n++] = {"node_addresses", where.addresses, true};
  if (!where.region.empty()) extra[n++] = {"node_region", where.region};
  if (!where.zone.empty()) extra[n++] = {"node_zone", where.zone};
  extra[n++] = {"observed_by", node};
  if (replay_batch_) extra[n++] = {"replayed", "true", true};
  extra[n++] = {"timestamp", when_text};
  AppendPodLogJson(record, extra, n, &row.line);
  row.replayed = replay_batch_;
  return row;
}

void ClusterState::Emit(const std::string& event, SystemTime when, SystemTime now,
                        const std::string& node, const PodRecord& record,
                        const StoredPod* before_pod, bool first_seen) {
  EventRow row = EventRowFor(event, when, now, node, record);
  bool gone = event == "DELETED";
  PodRecord before;
  if (before_pod) before = before_pod->Unpack();
  bool in_scope = scope_.Contains(record.namespace_, record.labels);
  row.out_of_scope = !in_scope;
  batch_.events.push_back(std::move(row));
  if (in_scope) {
    notices_.push_back({gone, record, when});
  } else if (before_pod && scope_.Contains(before.namespace_, before.labels)) {
    // A label change took it out of scope: the ConfigMaps stop carrying it.
    notices_.push_back({true, record, when});
  }

  // Intervals: what the pod held before (if it was live) against what it
  // holds now (nothing once deleted). A pod we never saw alive ran from
  // about its start until `when`.
  bool was_live = before_pod != nullptr;
  bool never_live = !was_live && gone;
  UnixMicros t = Micros(when);
  UnixMicros start = first_seen ? Micros(StartEstimate(record, when)) : t;
  auto base = [&](IntervalOp::Kind kind, IntervalOp::Action action) {
    IntervalOp op;
    op.kind = kind;
    op.action = action;
    op.uid = record.uid;
    op.namespace_ = record.namespace_;
    op.name = record.name;
    op.node = record.node_name;
    return op;
  };
  using K = IntervalOp::Kind;
  using A = IntervalOp::Action;
  if (never_live || !was_live) {
    IntervalOp op = base(K::kPlacement, A::kOpen);
    op.from = start;
    if (never_live) op.to = t;
    batch_.intervals.push_back(std::move(op));
  } else if (gone) {
    IntervalOp op = base(K::kPlacement, A::kClose);
    op.to = t;
    batch_.intervals.push_back(std::move(op));
  }
  std::vector<std::string> ips_before = was_live ? IpsOf(before) : std::vector<std::string>{};
  std::vector<std::string> ips_after = IpsOf(record);
  if (gone && !never_live) ips_after.clear();
  for (const auto& ip : ips_before) {
    if (std::find(ips_after.begin(), ips_after.end(), ip) != ips_after.end()) continue;
    IntervalOp op = base(K::kIpLease, A::kClose);
    op.ip = ip;
    op.to = t;
    batch_.intervals.push_back(std::move(op));
  }
  for (const auto& ip : ips_after) {
    if (std::find(ips_before.begin(), ips_before.end(), ip) != ips_before.end()) continue;
    IntervalOp op = base(K::kIpLease, A::kOpen);
    op.ip = ip;
    op.from = was_live ? t : start;
    if (never_live) op.to = t;
    batch_.intervals.push_back(std::move(op));
  }
  auto images_before = was_live ? ImagesOf(before) : decltype(ImagesOf(before)){};
  auto images_after = ImagesOf(record);
  if (gone && !never_live) images_after.clear();
  for (const auto& [key, digest] : images_before) {
    if (images_after.count(key)) continue;
    IntervalOp op = base(K::kImage, A::kClose);
    op.container = key.first;
    op.image = key.second;
    op.to = t;
    batch_.intervals.push_back(std::move(op));
  }
  for (const auto& [key, digest] : images_after) {
    auto b = images_before.find(key);
    if (b != images_before.end()) {
      if (b->second != digest && !digest.empty()) {
        IntervalOp op = base(K::kImage, A::kSetDigest);
        op.container = key.first;
        op.image = key.second;
        op.digest = digest;
        batch_.intervals.push_back(std::move(op));
      }
      continue;
    }
    IntervalOp op = base(K::kImage, A::kOpen);
    op.container = key.first;
    op.image = key.second;
    op.digest = digest;
    op.from = was_live ? t : start;
    if (never_live) op.to = t;
    batch_.intervals.push_back(std::move(op));
  }
  if (!censuses_.empty()) {
    CensusContext ctx;
    ctx.when_us = t;
    ctx.now_us = Micros(now);
    ctx.when_text = when == now ? now_text_ : FormatRfc3339Micros(when);
    ctx.now_text = now_text_;
    ctx.observed_by = node;
    ctx.replayed = replay_batch_;
    const PodRecord* after = gone ? nullptr : &record;
    size_t first = batch_.events.size();
    for (PodCensus* c : censuses_) c->Apply(was_live ? &before : nullptr, after, ctx, &batch_);
    // IMAGE_* lines name this pod: they follow its scope.
    for (size_t i = first; i < batch_.events.size(); ++i) batch_.events[i].out_of_scope = !in_scope;
  }
}

void ClusterState::AddTombstone(const std::string& uid) {
  tombstones_.push_back(uid);
  TrimTombstones();
}

void ClusterState::TrimTombstones() {
  while (tombstones_.size() > options_.max_tombstones) {
    std::string old = tombstones_.front();
    tombstones_.pop_front();
    auto it = pods_.find(old);
    if (it == pods_.end() || !it->second.deleted) continue;
    // Still in this batch: its row is written from the cache below.
    if (touched_set_.count(old)) continue;
    pods_.erase(it);
  }
}

// ---------------------------------------------------------------- queries

bool ClusterState::IsStale(const NodeEntry& n, SystemTime now) const {
  return now - n.last_report > options_.stale_after;
}

json ClusterState::PodJson(const PodEntry& e, SystemTime now) const {
  PodRecord rec = e.pod.Unpack();
  json j = PodRecordToLogJson(rec);
  if (node_directory_) node_directory_->AddTo(rec.node_name, &j);
  j["observed_by"] = e.observed_by();
  j["last_change"] = FormatRfc3339Micros(e.last_change);
  j["deleted"] = e.deleted;
  j["stale"] = !e.deleted && IsStale(*e.observer, now);
  return j;
}

json ClusterState::Nodes() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  SystemTime now = clock_->Now();
  json out = json::array();
  for (const auto& [name, n] : nodes_) {
    out.push_back({{"node", name},
                   {"epoch", n.epoch},
                   {"last_seq", n.last_seq},
                   {"last_report", FormatRfc3339Micros(n.last_report)},
                   {"last_snapshot", n.last_snapshot.time_since_epoch().count() == 0
                                         ? json(nullptr)
                                         : json(FormatRfc3339Micros(n.last_snapshot))},
                   {"reports", n.reports},
                   {"pods", n.live_count},
                   {"stale", IsStale(n, now)}});
  }
  return {{"nodes", std::move(out)}, {"count", nodes_.size()}};
}

json ClusterState::Pods(const PodQuery& q) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  SystemTime now = clock_->Now();
  std::vector<std::pair<std::string, const PodEntry*>> hits;
  for (const auto& [uid, e] : pods_) {
    if (e.deleted) continue;
    const StoredPod& s = e.pod;
    if (!q.node.empty() && s.Get(StoredPod::kNode) != q.node && e.observed_by() != q.node) continue;
    if (!q.namespace_.empty() && s.namespace_() != q.namespace_) continue;
    if (q.namespaces &&
        !std::binary_search(q.namespaces->begin(), q.namespaces->end(), s.namespace_())) {
      continue;
    }
    if (!q.phase.empty() && s.Get(StoredPod::kPhase) != q.phase) continue;
    std::string key = s.Key() + "/" + uid;
    if (!q.after.empty() && key <= q.after) continue;
    if (!q.ip.empty() || !q.selector.empty()) {
      PodRecord p = s.Unpack();
      if (!q.ip.empty()) {
        auto ips = IpsOf(p);
        if (std::find(ips.begin(), ips.end(), q.ip) == ips.end()) continue;
      }
      if (!q.selector.empty() && !q.selector.Matches(p.labels)) continue;
    }
    hits.emplace_back(std::move(key), &e);
  }
  std::sort(hits.begin(), hits.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string next;
  if (q.limit > 0 && hits.size() > q.limit) {
    hits.resize(q.limit);
    next = hits.back().first;
  }
  json pods = json::array();
  for (const auto& [key, e] : hits) pods.push_back(PodJson(*e, now));
  json out = {{"pods", std::move(pods)}, {"count", hits.size()}};
  if (!next.empty()) out["continue"] = next;
  return out;
}

std::optional<json> ClusterState::Pod(const std::string& uid) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return std::nullopt;
  return PodJson(it->second, clock_->Now());
}

json ClusterState::Images(const std::vector<std::string>* namespaces) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  struct Usage {
    size_t pods = 0;
    std::set<std::string> nodes;
    std::map<std::string, size_t> digests;
  };
  std::map<std::string, Usage> images;
  for (const auto& [uid, e] : pods_) {
    if (e.deleted) continue;
    if (namespaces &&
        !std::binary_search(namespaces->begin(), namespaces->end(), e.pod.namespace_())) {
      continue;
    }
    std::set<std::string> seen;
    PodRecord p = e.pod.Unpack();
    for (const auto& c : p.containers) {
      Usage& u = images[c.image];
      if (seen.insert(c.image).second) {
        ++u.pods;
        u.nodes.insert(e.observed_by());
      }
      if (!c.image_id.empty()) ++u.digests[c.image_id];
    }
  }
  json out = json::array();
  for (const auto& [image, u] : images) {
    json digests = json::array();
    for (const auto& [d, n] : u.digests) digests.push_back({{"image_id", d}, {"containers", n}});
    out.push_back(
        {{"image", image}, {"pods", u.pods}, {"nodes", u.nodes.size()}, {"digests", digests}});
  }
  std::stable_sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return a["pods"].get<size_t>() > b["pods"].get<size_t>();
  });
  return {{"images", std::move(out)}, {"count", images.size()}};
}

size_t ClusterState::live_pods() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return live_;
}

void ClusterState::UpdateGauges() const {
  if (!metrics_) return;
  std::shared_lock<std::shared_mutex> lock(mu_);
  SystemTime now = clock_->Now();
  size_t stale = 0;
  for (const auto& [name, n] : nodes_) stale += IsStale(n, now) ? 1 : 0;
  metrics_->pods_tracked->Set(static_cast<double>(live_));
  metrics_->nodes_known->Set(static_cast<double>(nodes_.size()));
  metrics_->nodes_stale->Set(static_cast<double>(stale));
  metrics_->reports_waiting->Set(static_cast<double>(reports_waiting()));
}

size_t ClusterState::reports_waiting() const {
  std::lock_guard<std::mutex> queue(queue_mu_);
  return queue_.size();
}

}  // namespace ashiato
