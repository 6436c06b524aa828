#include "agent/pusher.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace ashiato {
namespace {

std::string RandomEpoch() {
  std::random_device rd;
  std::mt19937_64 rng(
      (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// What a 200 answer says about the aggregator's store (docs/protocol.md).
// An old aggregator names neither.
struct Answer {
  std::string instance;  // "" = not named.
  bool has_committed_seq = false;
  uint64_t committed_seq = 0;
};

Answer ParseAnswer(const std::string& body) {
  Answer a;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return a;
  auto inst = j.find("instance");
  if (inst != j.end() && inst->is_string()) a.instance = inst->get<std::string>();
  auto seq = j.find("committed_seq");
  if (seq != j.end() && seq->is_number_unsigned()) {
    a.has_committed_seq = true;
    a.committed_seq = seq->get<uint64_t>();
  } else if (seq != j.end() && seq->is_number_integer()) {
    // Negative: treated as "nothing committed".
    a.has_committed_seq = true;
  }
  return a;
}

}  // namespace

std::string DefaultAggregatorCaFile(const std::string& url, const std::string& in_cluster_ca) {
  if (url.rfind("https://", 0) != 0) return "";
  return ::access(in_cluster_ca.c_str(), R_OK) == 0 ? in_cluster_ca : "";
}

PusherOptions PusherOptionsFromAgent(const AgentOptions& a) {
  PusherOptions o;
  o.url = a.aggregator;
  o.token_file = a.aggregator_token_file;
  o.ca_file =
      a.aggregator_ca_file.empty() ? DefaultAggregatorCaFile(a.aggregator) : a.aggregator_ca_file;
  o.node = a.node;
  o.batch_max = static_cast<size_t>(std::max(1, a.batch_max));
  o.batch_delay = a.batch_delay;
  o.buffer_max = static_cast<size_t>(std::max(1, a.buffer_max));
  o.heartbeat = a.heartbeat;
  o.backoff.max = std::max(a.push_backoff_max, o.backoff.initial);
  o.replay_window = a.replay_window;
  o.replay_max = static_cast<size_t>(std::max(0, a.replay_max));
  return o;
}

// --- RetainedChanges ---

RetainedChanges::RetainedChanges(std::string node, size_t max_pods)
    : node_(std::move(node)), max_pods_(max_pods) {}

RetainedChanges::Key RetainedChanges::First() { return {std::numeric_limits<int64_t>::min(), 0}; }

RetainedChanges::Key RetainedChanges::LastKey() const {
  return by_time_.empty() ? First() : by_time_.rbegin()->first;
}

size_t RetainedChanges::Add(const ReportRecord& record) {
  if (max_pods_ == 0) return 0;
  auto [it, inserted] = by_uid_.try_emplace(record.pod.uid, First());
  if (!inserted) {
    if (it->second.first > record.observed_unix_ms) return 0;  // A later one is held.
    auto old = by_time_.find(it->second);
    encoded_bytes_ -= old->second.encoded.capacity();
    by_time_.erase(old);
  }
  Entry e{&it->first, EncodeRecord(record, node_)};
  e.encoded.shrink_to_fit();
  encoded_bytes_ += e.encoded.capacity();
  Key key{record.observed_unix_ms, next_++};
  it->second = key;
  by_time_.emplace(key, std::move(e));
  size_t dropped = 0;
  while (by_uid_.size() > max_pods_) {
    auto oldest = by_time_.begin();
    encoded_bytes_ -= oldest->second.encoded.capacity();
    by_uid_.erase(by_uid_.find(*oldest->second.uid));
    by_time_.erase(oldest);
    ++dropped;
  }
  return dropped;
}

size_t RetainedChanges::Prune(int64_t cutoff_unix_ms) {
  size_t n = 0;
  while (!by_time_.empty() && by_time_.begin()->first.first < cutoff_unix_ms) {
    auto oldest = by_time_.begin();
    encoded_bytes_ -= oldest->second.encoded.capacity();
    by_uid_.erase(by_uid_.find(*oldest->second.uid));
    by_time_.erase(oldest);
    ++n;
  }
  return n;
}

bool RetainedChanges::Has(const Key& after, const Key& last) const {
  auto it = by_time_.upper_bound(after);
  return it != by_time_.end() && it->first <= last;
}

std::vector<std::string> RetainedChanges::Take(Key* after, const Key& last, size_t max) const {
  std::vector<std::string> out;
  for (auto it = by_time_.upper_bound(*after);
       it != by_time_.end() && it->first <= last && out.size() < max; ++it) {
    *after = it->first;
    out.push_back(it->second.encoded);
  }
  return out;
}

// --- Pusher ---

Pusher::Pusher(PusherOptions options, const Clock* clock, AgentMetrics* metrics)
    : options_(std::move(options)),
      clock_(clock ? clock : Clock::Real()),
      metrics_(metrics),
      epoch_(RandomEpoch()),
      rng_(std::random_device{}()),
      retained_(options_.node,
                options_.replay_window.count() > 0 ? options_.replay_max : size_t{0}),
      replay_after_(RetainedChanges::First()),
      replay_last_(RetainedChanges::First()) {
  if (options_.batch_max == 0) options_.batch_max = 1;
  if (options_.buffer_max < options_.batch_max) options_.buffer_max = options_.batch_max;
  ScheduleHeartbeatLocked(std::chrono::steady_clock::now());
}

Pusher::~Pusher() { Stop(); }

Status Pusher::Start() {
  if (options_.url.empty()) return InvalidArgument("pusher: no aggregator URL");
  if (options_.node.empty()) return InvalidArgument("pusher: no node name");
  if (!options_.ca_file.empty() && ::access(options_.ca_file.c_str(), R_OK) != 0) {
    return InvalidArgument("pusher: cannot read the aggregator CA file " + options_.ca_file);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return Status::Ok();
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Pusher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (client_) client_->Cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Pusher::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->Now().time_since_epoch())
      .count();
}

void Pusher::ScheduleHeartbeatLocked(std::chrono::steady_clock::time_point sent) {
  if (options_.heartbeat.count() <= 0) return;
  // Uniform in [90%, 100%] of the period: never later than the flag says.
  auto period = options_.heartbeat.count();
  std::uniform_int_distribution<long long> dist(period - period / 10, period);
  next_heartbeat_ = sent + std::chrono::milliseconds(dist(rng_));
}

void Pusher::OnEvent(const std::string& event_type, const PodRecord& record) {
  bool deleted = event_type == "DELETED";
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (deleted) {
      view_.erase(record.uid);
    } else {
      view_[record.uid] = record;
    }
    // A SYNC (present at the first list) is always followed by OnSnapshot,
    // which carries it: sending it on its own too would make the aggregator
    // take a pod that existed before as CREATED instead of SYNC.
    if (event_type == "SYNC") return;
    pending_.push_back({{deleted ? RecordOp::kDelete : RecordOp::kUpsert, record, NowMs()},
                        std::chrono::steady_clock::now()});
    if (pending_.size() >= options_.buffer_max) CoalesceLocked();
    stats_.pending = pending_.size();
  }
  cv_.notify_all();
}

void Pusher::OnSnapshot(const std::vector<PodRecord>& all) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    view_.clear();
    for (const auto& p : all) view_[p.uid] = p;
    have_view_ = true;
    need_snapshot_ = true;
  }
  cv_.notify_all();
}

void Pusher::CoalesceLocked() {
  // Keep the last record of each pod, in the order of those last records.
  std::unordered_map<std::string, size_t> last;
  for (size_t i = 0; i < pending_.size(); ++i) last[pending_[i].record.pod.uid] = i;
  std::deque<Pending> kept;
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (last[pending_[i].record.pod.uid] == i) kept.push_back(std::move(pending_[i]));
  }
  stats_.coalesced += pending_.size() - kept.size();
  pending_ = std::move(kept);
  if (pending_.size() >= options_.buffer_max && have_view_) {
    // More distinct pods than the buffer holds: the snapshot carries the
    // latest state of each (and implies the deletions).
    stats_.coalesced += pending_.size();
    pending_.clear();
    need_snapshot_ = true;
    view_has_undelivered_ = true;
  }
}

bool Pusher::ReplayPendingLocked() const {
  return replaying_ && retained_.Has(replay_after_, replay_last_);
}

Status Pusher::Flush(std::chrono::milliseconds deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  flushing_ = true;
  cv_.notify_all();
  auto idle = [this] {
    return pending_.empty() && !ReplayPendingLocked() && !in_flight_ && !need_snapshot_;
  };
  bool done = cv_.wait_for(lock, deadline, [&] { return stop_ || idle(); });
  flushing_ = false;
  if (done && idle()) return Status::Ok();
  return Status(StatusCode::kDeadlineExceeded,
                "pusher: " + std::to_string(pending_.size()) +
                    " records not delivered to the aggregator before the deadline");
}

Pusher::Stats Pusher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.pending = pending_.size();
  s.replay_retained = retained_.size();
  return s;
}

std::string Pusher::aggregator_instance() const {
  std::lock_guard<std::mutex> lock(mu_);
  return instance_;
}

std::string Pusher::Token() {
  if (options_.token_file.empty()) return "";
  std::lock_guard<std::mutex> lock(token_mu_);
  struct stat st {};
  if (::stat(options_.token_file.c_str(), &st) != 0) return token_;
  long long mtime = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  if (mtime != token_mtime_ns_) {
    std::ifstream in(options_.token_file);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string t = ss.str();
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    token_ = t;
    token_mtime_ns_ = mtime;
  }
  return token_;
}

void Pusher::PruneLocked() {
  if (options_.replay_window.count() <= 0) return;
  size_t n = retained_.Prune(NowMs() - options_.replay_window.count());
  stats_.replay_expired += n;
  if (metrics_ != nullptr) {
    if (n > 0) metrics_->PushReplayExpired(n);
    metrics_->SetPushReplayRetained(retained_.size());
  }
}

void Pusher::StartReplayLocked() {
  PruneLocked();
  // Everything retained now is sent again (a replay already under way
  // starts over: this aggregator has not seen it either), then a snapshot.
  replaying_ = true;
  replay_after_ = RetainedChanges::First();
  replay_last_ = retained_.LastKey();
  recovering_ = true;
  if (have_view_) need_snapshot_ = true;
  ++stats_.replays;
}

void Pusher::CheckAnswerLocked(BatchKind kind, uint64_t seq, const std::string& body) {
  Answer a = ParseAnswer(body);
  // A heartbeat need not be committed: compare only with seqs that carried
  // records or a snapshot.
  bool data = kind != BatchKind::kHeartbeat;
  uint64_t expected = data ? std::max(acked_data_seq_, seq) : acked_data_seq_;
  if (data) acked_data_seq_ = expected;
  const char* reason = nullptr;
  std::string why;
  if (!a.instance.empty()) {
    if (!instance_.empty() && a.instance != instance_) {
      reason = "instance";
      why = "aggregator store instance changed from " + instance_ + " to " + a.instance;
    }
    instance_ = a.instance;
  }
  // While a replay is under way the aggregator is catching up: don't restart it.
  if (reason == nullptr && a.has_committed_seq && !recovering_ && a.committed_seq < expected) {
    reason = "committed_seq";
    why = "aggregator answered committed_seq " + std::to_string(a.committed_seq) + " for epoch " +
          epoch_ + " after acknowledging seq " + std::to_string(expected);
  }
  if (reason == nullptr) return;
  StartReplayLocked();
  spdlog::info("{}: it may have lost state; replaying {} retained changes, then a snapshot", why,
               retained_.size());
  if (metrics_ != nullptr) metrics_->PushReplay(reason);
}

void Pusher::Run() {
  HttpClientOptions co;
  co.base_url = options_.url;
  while (!co.base_url.empty() && co.base_url.back() == '/') co.base_url.pop_back();
  co.ca_file = options_.ca_file;
  co.bearer_token = [this] { return Token(); };
  co.request_timeout_ms = options_.request_timeout.count();
  co.user_agent = "ashiato-agent";
  HttpClient client(co);
  {
    std::lock_guard<std::mutex> lock(mu_);
    client_ = &client;
    if (stop_) client.Cancel();
  }
  while (true) {
    Report report;
    std::vector<std::string> replayed;  // A replay's records, encoded (RetainedChanges).
    BatchKind kind = BatchKind::kHeartbeat;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) {
        auto now = std::chrono::steady_clock::now();
        if (ReplayPendingLocked()) break;
        if (need_snapshot_ && have_view_) break;
        if (!pending_.empty() && (pending_.size() >= options_.batch_max || flushing_ ||
                                  now - pending_.front().queued >= options_.batch_delay)) {
          break;
        }
        bool beat = options_.heartbeat.count() > 0;
        if (beat && now >= next_heartbeat_) break;
        auto wake = now + std::chrono::hours(1);
        if (!pending_.empty()) wake = pending_.front().queued + options_.batch_delay;
        if (beat) wake = std::min(wake, next_heartbeat_);
        cv_.wait_until(lock, wake);
      }
      if (stop_) break;
      report.node = options_.node;
      report.epoch = epoch_;
      if (ReplayPendingLocked()) {
        // What an aggregator lost goes first, in observed order (original
        // `t`); changes queued since and the snapshot follow.
        kind = BatchKind::kReplay;
        replayed = retained_.Take(&replay_after_, replay_last_, options_.batch_max);
        report.replay = true;  // Acknowledged before: stored again, not logged again.
        stats_.replayed_records += replayed.size();
        if (!retained_.Has(replay_after_, replay_last_)) replaying_ = false;
      } else if (!pending_.empty()) {
        // Changes first, in order; a pending snapshot follows them.
        kind = BatchKind::kChanges;
        size_t n = std::min(options_.batch_max, pending_.size());
        report.records.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          report.records.push_back(std::move(pending_.front().record));
          pending_.pop_front();
        }
      } else if (need_snapshot_ && have_view_) {
        kind = BatchKind::kSnapshot;
        report.snapshot = true;
        // After a replay every pod's state in the view was delivered to an
        // earlier aggregator (pending changes went first), unless overflow
        // folded undelivered changes into this snapshot.
        report.replay = recovering_ && !view_has_undelivered_;
        report.records.reserve(view_.size());
        for (const auto& [uid, pod] : view_) report.records.push_back({RecordOp::kUpsert, pod, 0});
        need_snapshot_ = false;
      }
      report.seq = next_seq_++;
      in_flight_ = true;
    }
    std::string answer;
    bool accepted = SendWithRetry(client, report, replayed, &answer);
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ = false;
      ScheduleHeartbeatLocked(std::chrono::steady_clock::now());
      if (accepted) {
        ++stats_.batches_sent;
        stats_.records_sent += report.records.size() + replayed.size();
        if (kind == BatchKind::kSnapshot) {
          ++stats_.snapshots_sent;
          view_has_undelivered_ = false;
          if (!ReplayPendingLocked()) recovering_ = false;
        }
        if (kind == BatchKind::kHeartbeat) ++stats_.heartbeats_sent;
        if (kind == BatchKind::kChanges) {
          // Delivered: kept for a replay to an aggregator that loses them.
          // What expired goes first, so that it is not counted as dropped.
          PruneLocked();
          size_t dropped = 0;
          for (const auto& r : report.records) dropped += retained_.Add(r);
          stats_.replay_dropped += dropped;
          if (metrics_ != nullptr && dropped > 0) metrics_->PushReplayDropped(dropped);
        }
        PruneLocked();
        // In the same critical section as in_flight_ = false, so that Flush
        // never sees an idle pusher between this answer and the replay it
        // starts.
        CheckAnswerLocked(kind, report.seq, answer);
      }
    }
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  client_ = nullptr;
}

bool Pusher::SendWithRetry(HttpClient& client, Report& report,
                           const std::vector<std::string>& replayed, std::string* answer) {
  report.sent_unix_ms = NowMs();
  // Replayed records are sent as they were encoded when first delivered.
  std::string body = replayed.empty() ? EncodeReport(report) : EncodeReport(report, replayed);
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"}};
  if (body.size() >= options_.gzip_min_bytes) {
    auto gz = GzipCompress(body, 6);
    if (gz.ok()) {
      body = std::move(gz.value());
      headers.emplace_back("Content-Encoding", "gzip");
    }
  }
  Backoff backoff(options_.backoff);
  bool failed = false;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return false;
    }
    auto r = client.Do("POST", "/v1/reports", body, headers, options_.request_timeout.count());
    std::chrono::milliseconds wait = backoff.Next();
    if (r.ok()) {
      long code = r->status;
      if (code >= 200 && code < 300) {
        if (metrics_ != nullptr) metrics_->PushRequest("delivered");
        std::lock_guard<std::mutex> lock(mu_);
        stats_.bytes_sent += body.size();
        // Reconnected after a failure: the aggregator may have missed
        // anything (or restarted): resend the whole view.
        if (failed && have_view_) need_snapshot_ = true;
        *answer = std::move(r->body);
        return true;
      }
      if (code == 400 || code == 409 || code == 413) {
        // Retrying cannot help: the aggregator refuses this batch for good
        // (a bug, or a newer agent process for this node exists).
        spdlog::error("aggregator rejected report seq {} ({} records): HTTP {}: {}", report.seq,
                      report.records.size() + replayed.size(), code, r->body);
        if (metrics_ != nullptr) metrics_->PushRequest("rejected");
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.dropped_batches;
        if (have_view_) need_snapshot_ = true;
        return false;
      }
      if (code == 401) {
        // Maybe the token rotated under us: force a re-read.
        std::lock_guard<std::mutex> lock(token_mu_);
        token_mtime_ns_ = -1;
      }
      // 503 + Retry-After: the aggregator (its store, or TokenReview) is
      // unavailable for now; keep the batch and retry no sooner than asked.
      std::string ra = r->Header("retry-after");
      if (!ra.empty()) {
        int secs = std::atoi(ra.c_str());
        if (secs > 0) wait = std::max(wait, std::chrono::milliseconds(secs * 1000LL));
      }
      spdlog::warn("aggregator answered HTTP {} to report seq {}; retrying in {} ms", code,
                   report.seq, wait.count());
    } else {
      spdlog::warn("cannot reach aggregator: {}; retrying in {} ms", r.status().ToString(),
                   wait.count());
    }
    failed = true;
    if (metrics_ != nullptr) metrics_->PushRequest("failed");
    std::unique_lock<std::mutex> lock(mu_);
    ++stats_.retries;
    cv_.wait_for(lock, wait, [this] { return stop_; });
  }
}

}  // namespace ashiato
