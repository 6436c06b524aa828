#include "aggregator/state.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>

namespace ashiato {
namespace {

using nlohmann::json;

SystemTime FromUnixMs(int64_t ms) { return SystemTime(std::chrono::milliseconds(ms)); }
int64_t ToUnixMs(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

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

json LogLine(const std::string& event, SystemTime when, SystemTime aggregated_at,
             const std::string& node, const PodRecord& pod) {
  json j = PodRecordToLogJson(pod);
  j["event"] = event;
  j["timestamp"] = FormatRfc3339Micros(when);
  j["observed_by"] = node;
  j["aggregated_at"] = FormatRfc3339Micros(aggregated_at);
  return j;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

// Layout of StoredPod::packed_: every observable field of a PodRecord, in
// a fixed order, each string as a varint length then its bytes; lists as a
// varint count then their strings. Deterministic, so two records have the
// same observable state iff their buffers are equal. The resourceVersion is
// kept apart (it is not observable state).
class ClusterState::StoredPod {
 public:
  // Field order of the leading strings (the accessors walk to them).
  enum Field { kUid, kNamespace, kName, kNode, kPhase, kCreated };

  static PodPtr Pack(const PodRecord& p) {
    auto out = std::make_shared<StoredPod>();
    std::string& b = out->packed_;
    size_t size = 1 + VarintSize(p.pod_ips.size()) + VarintSize(p.conditions.size()) +
                  VarintSize(p.containers.size()) + VarintSize(p.labels.size());
    for (const std::string* f :
         {&p.uid, &p.namespace_, &p.name, &p.node_name, &p.phase, &p.creation_timestamp, &p.pod_ip,
          &p.host_ip, &p.deletion_timestamp, &p.owner_kind, &p.owner_name}) {
      size += StringSize(*f);
    }
    for (const auto& ip : p.pod_ips) size += StringSize(ip);
    for (const auto& c : p.conditions) {
      size += StringSize(c.type) + StringSize(c.status) + StringSize(c.last_transition_time);
    }
    for (const auto& c : p.containers) {
      size += StringSize(c.name) + StringSize(c.image) + StringSize(c.image_id);
    }
    for (const auto& [k, v] : p.labels) size += StringSize(k) + StringSize(v);
    b.reserve(size);
    for (const std::string* f :
         {&p.uid, &p.namespace_, &p.name, &p.node_name, &p.phase, &p.creation_timestamp, &p.pod_ip,
          &p.host_ip, &p.deletion_timestamp, &p.owner_kind, &p.owner_name}) {
      PutString(*f, &b);
    }
    b.push_back(p.owner_inferred ? 1 : 0);
    PutVarint(p.pod_ips.size(), &b);
    for (const auto& ip : p.pod_ips) PutString(ip, &b);
    PutVarint(p.conditions.size(), &b);
    for (const auto& c : p.conditions) {
      PutString(c.type, &b);
      PutString(c.status, &b);
      PutString(c.last_transition_time, &b);
    }
    PutVarint(p.containers.size(), &b);
    for (const auto& c : p.containers) {
      PutString(c.name, &b);
      PutString(c.image, &b);
      PutString(c.image_id, &b);
    }
    PutVarint(p.labels.size(), &b);
    for (const auto& [k, v] : p.labels) {
      PutString(k, &b);
      PutString(v, &b);
    }
    assert(b.size() == size);  // The reserve was exact: no reallocation.
    out->resource_version_ = p.resource_version;
    return out;
  }

  PodRecord Unpack() const {
    PodRecord p;
    const char* c = packed_.data();
    for (std::string* f :
         {&p.uid, &p.namespace_, &p.name, &p.node_name, &p.phase, &p.creation_timestamp, &p.pod_ip,
          &p.host_ip, &p.deletion_timestamp, &p.owner_kind, &p.owner_name}) {
      *f = GetString(&c);
    }
    p.owner_inferred = *c++ != 0;
    p.pod_ips.resize(GetVarint(&c));
    for (auto& ip : p.pod_ips) ip = GetString(&c);
    p.conditions.resize(GetVarint(&c));
    for (auto& x : p.conditions) {
      x.type = GetString(&c);
      x.status = GetString(&c);
      x.last_transition_time = GetString(&c);
    }
    p.containers.resize(GetVarint(&c));
    for (auto& x : p.containers) {
      x.name = GetString(&c);
      x.image = GetString(&c);
      x.image_id = GetString(&c);
    }
    for (size_t n = GetVarint(&c); n > 0; --n) {
      std::string k(GetString(&c));
      p.labels.emplace_hint(p.labels.end(), std::move(k), GetString(&c));
    }
    p.resource_version = resource_version_;
    return p;
  }

  std::string_view Get(Field f) const {
    const char* c = packed_.data();
    for (int i = 0; i < f; ++i) GetString(&c);
    return GetString(&c);
  }
  std::string_view uid() const { return Get(kUid); }
  std::string_view namespace_() const { return Get(kNamespace); }
  std::string_view name() const { return Get(kName); }
  std::string Key() const {
    std::string k(namespace_());
    k += '/';
    k += name();
    return k;
  }
  const std::string& resource_version() const { return resource_version_; }
  bool SameObservableState(const StoredPod& o) const { return packed_ == o.packed_; }

 private:
  static size_t VarintSize(size_t v) {
    size_t n = 1;
    for (; v >= 0x80; v >>= 7) ++n;
    return n;
  }
  static size_t StringSize(const std::string& s) { return VarintSize(s.size()) + s.size(); }
  static void PutVarint(size_t v, std::string* b) {
    while (v >= 0x80) {
      b->push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    b->push_back(static_cast<char>(v));
  }
  static void PutString(const std::string& s, std::string* b) {
    PutVarint(s.size(), b);
    b->append(s);
  }
  static size_t GetVarint(const char** c) {
    size_t v = 0;
    for (int shift = 0;; shift += 7) {
      unsigned char x = static_cast<unsigned char>(*(*c)++);
      v |= static_cast<size_t>(x & 0x7f) << shift;
      if (!(x & 0x80)) return v;
    }
  }
  static std::string_view GetString(const char** c) {
    size_t n = GetVarint(c);
    std::string_view s(*c, n);
    *c += n;
    return s;
  }

  std::string packed_;
  std::string resource_version_;
};

ClusterState::ClusterState(StateOptions options, std::FILE* log_out, AggregatorMetrics* metrics,
                           const Clock* clock)
    : options_(std::move(options)),
      log_out_(log_out),
      metrics_(metrics),
      clock_(clock ? clock : Clock::Real()) {}

ClusterState::~ClusterState() { Flush(); }

void ClusterState::AddObserver(PodObserver* observer) {
  std::lock_guard<std::mutex> lock(mu_);
  observers_.push_back(observer);
}

Status ClusterState::Open() {
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.state_file.empty()) return Status::Ok();
  std::vector<std::string> lines;
  auto f = StateFile::Open(options_.state_file, &lines);
  if (!f.ok()) return f.status();
  journal_ = std::move(f.value());
  Status st = Replay(lines);
  if (!st.ok()) return st;
  st = journal_->Rewrite(CompactedJournal());
  if (!st.ok()) return st;
  SystemTime now = clock_->Now();
  for (const auto& [uid, e] : pods_) {
    if (e.deleted) continue;
    PodRecord rec = e.pod->Unpack();
    for (PodObserver* o : observers_) o->OnPodPresent(rec, now);
  }
  spdlog::info("state restored from {}: {} live pods, {} tombstones, {} history events",
               options_.state_file, live_, tombstones_.size(), history_.size());
  return Status::Ok();
}

void ClusterState::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (journal_) {
    Status st = journal_->Sync();
    if (!st.ok()) spdlog::warn("state file: {}", st.ToString());
  }
  if (log_out_) std::fflush(log_out_);
}

ClusterState::NodeEntry& ClusterState::Node(const std::string& name) { return nodes_[name]; }

ApplyResult ClusterState::Apply(const Report& report) {
  Report copy = report;
  return Apply(std::move(copy));
}

ApplyResult ClusterState::Apply(Report&& report) {
  std::lock_guard<std::mutex> lock(mu_);
  ApplyResult result;
  SystemTime now = clock_->Now();
  now_text_ = FormatRfc3339Micros(now);
  NodeEntry& node = Node(report.node);
  if (report.epoch != node.epoch) {
    if (std::find(node.retired_epochs.begin(), node.retired_epochs.end(), report.epoch) !=
        node.retired_epochs.end()) {
      result.outcome = ApplyOutcome::kStaleEpoch;
      return result;
    }
    if (!node.epoch.empty()) {
      node.retired_epochs.push_back(node.epoch);
      if (node.retired_epochs.size() > 16) node.retired_epochs.pop_front();
    }
    node.epoch = report.epoch;
    node.last_seq = report.seq;
  } else if (report.seq <= node.last_seq) {
    node.last_report = now;  // A retry still proves the agent is alive.
    result.outcome = ApplyOutcome::kReplayed;
    return result;
  } else {
    node.last_seq = report.seq;
  }
  node.last_report = now;
  ++node.reports;

  // Records are moved into the state below; a snapshot needs its UIDs after.
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
    for (const auto& uid : node.live_uids) {
      if (!present.count(uid)) gone.push_back(uid);
    }
    std::sort(gone.begin(), gone.end());
    for (const auto& uid : gone) {
      PodEntry& e = pods_.at(uid);
      e.deleted = true;
      e.deleted_by_snapshot = true;
      e.last_change = now;
      node.live_uids.erase(uid);
      --live_;
      AddTombstone(uid);
      Emit("DELETED", now, now, report.node, e.pod->Unpack(), e.pod, true);
      ++result.events;
    }
    node.last_snapshot = now;
  }
  result.events += result.applied;  // Every applied record wrote one line.
  WriteOut();
  return result;
}

int ClusterState::ApplyRecord(const Report& report, NodeEntry& node, ReportRecord& rec,
                              SystemTime now) {
  const PodRecord& p = rec.pod;
  SystemTime when = rec.observed_unix_ms > 0 ? FromUnixMs(rec.observed_unix_ms) : now;
  auto [it, inserted] = pods_.try_emplace(p.uid);
  if (inserted) {
    PodEntry& e = it->second;
    auto& uids = uids_by_name_[p.Key()];
    uids.push_back(p.uid);
    e.pod = StoredPod::Pack(p);
    e.observed_by = report.node;
    e.epoch = report.epoch;
    e.seq = report.seq;
    e.last_change = when;
    if (rec.op == RecordOp::kDelete) {
      // Never seen alive (created and deleted while we were away): still a
      // real change nobody logged.
      e.deleted = true;
      AddTombstone(it->first);
      Emit("DELETED", when, now, report.node, p, e.pod, false);
      return 1;
    }
    node.live_uids.insert(it->first);
    ++live_;
    Emit(report.snapshot ? "SYNC" : "CREATED", when, now, report.node, p, e.pod, false);
    return 1;
  }

  PodEntry& e = it->second;
  const std::string& uid = it->first;
  // Order this record against the state we hold: >0 newer, 0 same, <0 older.
  int order;
  const std::string& rv_new = p.resource_version;
  const std::string& rv_old = e.pod->resource_version();
  if (!rv_new.empty() && !rv_old.empty()) {
    order = CompareResourceVersions(rv_new, rv_old);
  } else if (report.epoch == e.epoch) {
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
      e.pod = StoredPod::Pack(p);
      e.observed_by = report.node;
      e.epoch = report.epoch;
      e.seq = report.seq;
      e.last_change = when;
      node.live_uids.insert(uid);
      ++live_;
      Emit(report.snapshot ? "SYNC" : "CREATED", when, now, report.node, p, e.pod, false);
      return 1;
    }
    return order < 0 ? -1 : 0;
  }
  if (order < 0) return -1;

  if (rec.op == RecordOp::kDelete) {
    // The same version as we hold is fine: a deletion found by a relist
    // carries the last state seen.
    e.deleted = true;
    e.pod = StoredPod::Pack(p);
    e.epoch = report.epoch;
    e.seq = report.seq;
    e.last_change = when;
    (e.observed_by == report.node ? node : nodes_[e.observed_by]).live_uids.erase(uid);
    --live_;
    AddTombstone(uid);
    Emit("DELETED", when, now, report.node, p, e.pod, false);
    return 1;
  }
  if (order == 0) return 0;

  PodPtr packed = StoredPod::Pack(p);
  bool changed = !packed->SameObservableState(*e.pod);
  if (e.observed_by != report.node) {
    nodes_[e.observed_by].live_uids.erase(uid);
    node.live_uids.insert(uid);
    e.observed_by = report.node;
  }
  e.epoch = report.epoch;
  e.seq = report.seq;
  if (!changed) {
    // Only the resourceVersion moved: keep the shared record (history and
    // indexes point at it), remember the version for dedup.
    if (e.pod->resource_version() != p.resource_version) e.pod = std::move(packed);
    return 0;
  }
  e.pod = std::move(packed);
  e.last_change = when;
  Emit("UPDATED", when, now, report.node, p, e.pod, false);
  return 1;
}

void ClusterState::Emit(const std::string& event, SystemTime when, SystemTime now,
                        const std::string& node, const PodRecord& record, const PodPtr& pod,
                        bool deleted_by_snapshot) {
  RecordEvent(event, when, now, node, record, pod);
  std::string when_text = when == now ? now_text_ : FormatRfc3339Micros(when);
  if (journal_) {
    AppendPodLogJson(record,
                     {{"_sd", deleted_by_snapshot ? "true" : "false", true},
                      {"aggregated_at", now_text_},
                      {"event", event},
                      {"observed_by", node},
                      {"timestamp", when_text}},
                     &journal_buf_);
    journal_buf_ += '\n';
  }
  AppendPodLogJson(record,
                   {{"aggregated_at", now_text_},
                    {"event", event},
                    {"observed_by", node},
                    {"timestamp", when_text}},
                   &log_buf_);
  log_buf_ += '\n';
  for (PodObserver* o : observers_) {
    if (event == "DELETED") {
      o->OnPodGone(record, when);
    } else {
      o->OnPodPresent(record, when);
    }
  }
  if (metrics_) {
    if (event == "CREATED") metrics_->events_created->Increment();
    if (event == "UPDATED") metrics_->events_updated->Increment();
    if (event == "DELETED") metrics_->events_deleted->Increment();
    if (event == "SYNC") metrics_->events_sync->Increment();
  }
}

void ClusterState::RecordEvent(const std::string& event, SystemTime when, SystemTime aggregated_at,
                               const std::string& node, const PodRecord& record,
                               const PodPtr& pod) {
  history_.push_back({event, when, aggregated_at, node, pod});
  while (history_.size() > options_.history_size) {
    history_.pop_front();
    ++history_dropped_;
    if (metrics_) metrics_->history_dropped->Increment();
  }
  SystemTime lease_time = when;
  if (event == "SYNC") {
    // Present before we looked: the pod has held its IP about since it
    // started.
    if (auto created = ParseRfc3339(record.creation_timestamp); created && *created < when) {
      lease_time = *created;
    }
  }
  UpdateLeases(record, event == "DELETED" ? std::vector<std::string>{} : IpsOf(record), lease_time);
}

ClusterState::Lease::Lease(const PodRecord& pod, SystemTime from_time) : from(from_time) {
  names.reserve(pod.uid.size() + pod.namespace_.size() + pod.name.size() + pod.node_name.size() +
                3);
  names += pod.uid;
  names += '\0';
  names += pod.namespace_;
  names += '\0';
  names += pod.name;
  names += '\0';
  names += pod.node_name;
}

std::string_view ClusterState::Lease::Part(int i) const {
  std::string_view rest = names;
  for (; i > 0; --i) rest.remove_prefix(std::min(rest.size(), rest.find('\0') + 1));
  return rest.substr(0, rest.find('\0'));
}

void ClusterState::UpdateLeases(const PodRecord& pod, const std::vector<std::string>& ips,
                                SystemTime when) {
  static const std::vector<std::string> kNone;
  auto it = lease_ips_.find(pod.uid);
  // leases_ and closed_leases_ change below, never lease_ips_: `open` stays valid.
  const std::vector<std::string>& open = it == lease_ips_.end() ? kNone : it->second;
  if (open == ips) return;  // Same IPs as the open leases: nothing to do.
  for (const auto& ip : open) {
    if (std::find(ips.begin(), ips.end(), ip) != ips.end()) continue;
    auto& v = leases_[ip];
    for (auto l = v.rbegin(); l != v.rend(); ++l) {
      if (l->uid() == pod.uid && !l->to) {
        l->to = when;
        closed_leases_.emplace_back(ip, pod.uid);
        break;
      }
    }
  }
  for (const auto& ip : ips) {
    if (std::find(open.begin(), open.end(), ip) != open.end()) continue;
    leases_[ip].emplace_back(pod, when);
  }
  if (ips.empty()) {
    if (it != lease_ips_.end()) lease_ips_.erase(it);
  } else if (it != lease_ips_.end()) {
    it->second = ips;
  } else {
    lease_ips_.emplace(pod.uid, ips);
  }
  while (closed_leases_.size() > options_.max_closed_leases) {
    auto [ip, uid] = closed_leases_.front();
    closed_leases_.pop_front();
    auto lit = leases_.find(ip);
    if (lit == leases_.end()) continue;
    auto& v = lit->second;
    for (auto l = v.begin(); l != v.end(); ++l) {
      if (l->uid() == uid && l->to) {
        v.erase(l);
        break;
      }
    }
    if (v.empty()) leases_.erase(lit);
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
    auto nit = uids_by_name_.find(it->second.pod->Key());
    if (nit != uids_by_name_.end()) {
      auto& v = nit->second;
      v.erase(std::remove(v.begin(), v.end(), old), v.end());
      if (v.empty()) uids_by_name_.erase(nit);
    }
    pods_.erase(it);
  }
}

void ClusterState::WriteOut() {
  if (journal_ && !journal_buf_.empty()) {
    // Journal first: if we die between the two writes, a restart does not
    // log the change again (no duplicate; at worst one line is missing).
    Status st = journal_->Append(journal_buf_);
    if (!st.ok()) spdlog::error("state file: {}", st.ToString());
  }
  journal_buf_.clear();
  if (!log_buf_.empty() && log_out_) {
    std::fwrite(log_buf_.data(), 1, log_buf_.size(), log_out_);
    std::fflush(log_out_);
  }
  log_buf_.clear();
  if (journal_ && journal_->appended_lines() > 2 * (pods_.size() + history_.size()) + 10000) {
    Status st = journal_->Rewrite(CompactedJournal());
    if (!st.ok()) spdlog::error("state file compaction: {}", st.ToString());
  }
}

std::string ClusterState::CompactedJournal() const {
  std::string out;
  for (const auto& [uid, e] : pods_) {
    json j = PodRecordToLogJson(e.pod->Unpack());
    j["_pod"] = true;
    j["_by"] = e.observed_by;
    j["_del"] = e.deleted;
    j["_sd"] = e.deleted_by_snapshot;
    j["_epoch"] = e.epoch;
    j["_seq"] = e.seq;
    j["_lc"] = ToUnixMs(e.last_change);
    out += Dump(j);
    out += '\n';
  }
  for (const auto& h : history_) {
    json j = LogLine(h.event, h.timestamp, h.aggregated_at, h.observed_by, h.pod->Unpack());
    j["_h"] = true;
    out += Dump(j);
    out += '\n';
  }
  return out;
}

Status ClusterState::Replay(const std::vector<std::string>& lines) {
  size_t bad = 0;
  SystemTime now = clock_->Now();
  for (const auto& line : lines) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++bad;
      continue;
    }
    try {
      PodRecord rec = PodRecordFromLogJson(j);
      if (rec.uid.empty()) {
        ++bad;
        continue;
      }
      PodPtr ptr = StoredPod::Pack(rec);
      if (j.value("_pod", false)) {
        PodEntry e;
        e.pod = ptr;
        e.observed_by = j.value("_by", "");
        e.deleted = j.value("_del", false);
        e.deleted_by_snapshot = j.value("_sd", false);
        e.epoch = j.value("_epoch", "");
        e.seq = j.value("_seq", uint64_t{0});
        e.last_change = FromUnixMs(j.value("_lc", int64_t{0}));
        if (!pods_.count(rec.uid)) uids_by_name_[rec.Key()].push_back(rec.uid);
        pods_[rec.uid] = e;
        if (e.deleted) {
          tombstones_.push_back(rec.uid);
        } else {
          nodes_[e.observed_by].live_uids.insert(rec.uid);
          ++live_;
        }
        continue;
      }
      std::string event = j.value("event", "");
      std::string by = j.value("observed_by", "");
      SystemTime ts = ParseRfc3339(j.value("timestamp", "")).value_or(now);
      SystemTime agg = ParseRfc3339(j.value("aggregated_at", "")).value_or(now);
      if (!j.value("_h", false)) {
        // An event appended after the last compaction: replay its effect.
        auto it = pods_.find(rec.uid);
        if (it == pods_.end()) {
          uids_by_name_[rec.Key()].push_back(rec.uid);
          it = pods_.emplace(rec.uid, PodEntry{}).first;
          it->second.deleted = true;  // So the live count below starts right.
        }
        PodEntry& e = it->second;
        bool was_live = !e.deleted;
        if (was_live) nodes_[e.observed_by].live_uids.erase(rec.uid);
        e.pod = ptr;
        e.observed_by = by;
        e.last_change = ts;
        e.epoch.clear();
        if (event == "DELETED") {
          e.deleted = true;
          e.deleted_by_snapshot = j.value("_sd", false);
          if (was_live) --live_;
          tombstones_.push_back(rec.uid);
        } else {
          e.deleted = false;
          e.deleted_by_snapshot = false;
          nodes_[by].live_uids.insert(rec.uid);
          if (!was_live) ++live_;
        }
      }
      RecordEvent(event, ts, agg, by, rec, ptr);
    } catch (const std::exception& ex) {
      ++bad;
    }
  }
  // Live pods whose events fell out of history still hold their IPs.
  for (const auto& [uid, e] : pods_) {
    if (e.deleted || lease_ips_.count(uid)) continue;
    PodRecord rec = e.pod->Unpack();
    auto ips = IpsOf(rec);
    if (ips.empty()) continue;
    SystemTime from = ParseRfc3339(rec.creation_timestamp).value_or(e.last_change);
    UpdateLeases(rec, ips, from);
  }
  TrimTombstones();
  // Restored nodes get a full --stale-after before they count as silent.
  for (auto& [name, n] : nodes_) n.last_report = now;
  if (bad > 0) spdlog::warn("state file: skipped {} unreadable lines", bad);
  return Status::Ok();
}

// ---------------------------------------------------------------- queries

bool ClusterState::IsStale(const NodeEntry& n, SystemTime now) const {
  return now - n.last_report > options_.stale_after;
}

json ClusterState::PodJson(const PodEntry& e, SystemTime now) const {
  json j = PodRecordToLogJson(e.pod->Unpack());
  j["observed_by"] = e.observed_by;
  j["last_change"] = FormatRfc3339Micros(e.last_change);
  j["deleted"] = e.deleted;
  auto nit = nodes_.find(e.observed_by);
  j["stale"] = !e.deleted && nit != nodes_.end() && IsStale(nit->second, now);
  return j;
}

json ClusterState::EventJson(const HistoryEvent& h) const {
  return LogLine(h.event, h.timestamp, h.aggregated_at, h.observed_by, h.pod->Unpack());
}

json ClusterState::Nodes() const {
  std::lock_guard<std::mutex> lock(mu_);
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
                   {"pods", n.live_uids.size()},
                   {"stale", IsStale(n, now)}});
  }
  return {{"nodes", std::move(out)}, {"count", nodes_.size()}};
}

json ClusterState::Pods(const PodQuery& q) const {
  std::lock_guard<std::mutex> lock(mu_);
  SystemTime now = clock_->Now();
  std::vector<const PodEntry*> hits;
  for (const auto& [uid, e] : pods_) {
    if (e.deleted) continue;
    const StoredPod& s = *e.pod;
    if (!q.node.empty() && s.Get(StoredPod::kNode) != q.node && e.observed_by != q.node) continue;
    if (!q.namespace_.empty() && s.namespace_() != q.namespace_) continue;
    if (!q.phase.empty() && s.Get(StoredPod::kPhase) != q.phase) continue;
    if (q.ip.empty() && q.selector.empty()) {
      hits.push_back(&e);
      continue;
    }
    PodRecord p = s.Unpack();
    if (!q.ip.empty()) {
      auto ips = IpsOf(p);
      if (std::find(ips.begin(), ips.end(), q.ip) == ips.end()) continue;
    }
    if (!q.selector.empty() && !q.selector.Matches(p.labels)) continue;
    hits.push_back(&e);
  }
  std::sort(hits.begin(), hits.end(), [](const PodEntry* a, const PodEntry* b) {
    if (a->pod->namespace_() != b->pod->namespace_()) {
      return a->pod->namespace_() < b->pod->namespace_();
    }
    if (a->pod->name() != b->pod->name()) return a->pod->name() < b->pod->name();
    return a->pod->uid() < b->pod->uid();
  });
  json pods = json::array();
  for (const PodEntry* e : hits) pods.push_back(PodJson(*e, now));
  return {{"pods", std::move(pods)}, {"count", hits.size()}};
}

std::optional<json> ClusterState::PodByName(const std::string& ns, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  SystemTime now = clock_->Now();
  std::string key = ns + "/" + name;
  std::vector<std::string> uids;
  if (auto it = uids_by_name_.find(key); it != uids_by_name_.end()) uids = it->second;
  for (const auto& h : history_) {
    if (h.pod->namespace_() == ns && h.pod->name() == name &&
        std::find(uids.begin(), uids.end(), h.pod->uid()) == uids.end()) {
      uids.push_back(std::string(h.pod->uid()));
    }
  }
  if (uids.empty()) return std::nullopt;
  json current = nullptr;
  json list = json::array();
  for (const auto& uid : uids) {
    json u = {{"uid", uid}};
    auto it = pods_.find(uid);
    if (it != pods_.end()) {
      u["state"] = PodJson(it->second, now);
      u["deleted"] = it->second.deleted;
      if (!it->second.deleted) current = u["state"];
    } else {
      u["state"] = nullptr;
      u["deleted"] = true;
    }
    json events = json::array();
    for (const auto& h : history_) {
      if (h.pod->uid() == uid) events.push_back(EventJson(h));
    }
    u["history"] = std::move(events);
    list.push_back(std::move(u));
  }
  return json{{"namespace", ns},
              {"name", name},
              {"current", current},
              {"uids", std::move(list)},
              {"history_dropped", history_dropped_}};
}

json ClusterState::Ip(const std::string& ip, std::optional<SystemTime> at) const {
  std::lock_guard<std::mutex> lock(mu_);
  json holders = json::array();
  auto it = leases_.find(ip);
  if (it != leases_.end()) {
    for (auto l = it->second.rbegin(); l != it->second.rend(); ++l) {
      bool match = at ? (l->from <= *at && (!l->to || *at < *l->to)) : !l->to;
      if (!match) continue;
      holders.push_back({{"namespace", l->namespace_()},
                         {"pod_name", l->name()},
                         {"uid", l->uid()},
                         {"node_name", l->node()},
                         {"from", FormatRfc3339Micros(l->from)},
                         {"to", l->to ? json(FormatRfc3339Micros(*l->to)) : json(nullptr)}});
    }
  }
  json out = {{"ip", ip}, {"holders", std::move(holders)}};
  out["at"] = at ? json(FormatRfc3339Micros(*at)) : json(nullptr);
  return out;
}

json ClusterState::History(std::optional<SystemTime> since, std::optional<SystemTime> until,
                           size_t limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  json events = json::array();
  bool truncated = false;
  for (const auto& h : history_) {
    if (since && h.timestamp < *since) continue;
    if (until && h.timestamp >= *until) continue;
    if (events.size() >= limit) {
      truncated = true;
      break;
    }
    events.push_back(EventJson(h));
  }
  json out = {{"events", std::move(events)},
              {"truncated", truncated},
              {"history_dropped", history_dropped_}};
  out["oldest"] =
      history_.empty() ? json(nullptr) : json(FormatRfc3339Micros(history_.front().timestamp));
  return out;
}

json ClusterState::Images() const {
  std::lock_guard<std::mutex> lock(mu_);
  struct Usage {
    size_t pods = 0;
    std::set<std::string> nodes;
    std::map<std::string, size_t> digests;
  };
  std::map<std::string, Usage> images;
  for (const auto& [uid, e] : pods_) {
    if (e.deleted) continue;
    std::set<std::string> seen;
    PodRecord p = e.pod->Unpack();
    for (const auto& c : p.containers) {
      Usage& u = images[c.image];
      if (seen.insert(c.image).second) {
        ++u.pods;
        u.nodes.insert(e.observed_by);
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
  std::lock_guard<std::mutex> lock(mu_);
  return live_;
}

uint64_t ClusterState::history_dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return history_dropped_;
}

void ClusterState::UpdateGauges() const {
  if (!metrics_) return;
  std::lock_guard<std::mutex> lock(mu_);
  SystemTime now = clock_->Now();
  size_t stale = 0;
  for (const auto& [name, n] : nodes_) stale += IsStale(n, now) ? 1 : 0;
  metrics_->pods_tracked->Set(static_cast<double>(live_));
  metrics_->nodes_known->Set(static_cast<double>(nodes_.size()));
  metrics_->nodes_stale->Set(static_cast<double>(stale));
  metrics_->history_size->Set(static_cast<double>(history_.size()));
}

}  // namespace ashiato
