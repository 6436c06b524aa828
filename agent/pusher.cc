#include "agent/pusher.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
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

}  // namespace

PusherOptions PusherOptionsFromAgent(const AgentOptions& a) {
  PusherOptions o;
  o.url = a.aggregator;
  o.token_file = a.aggregator_token_file;
  o.node = a.node;
  o.batch_max = static_cast<size_t>(std::max(1, a.batch_max));
  o.batch_delay = a.batch_delay;
  o.buffer_max = static_cast<size_t>(std::max(1, a.buffer_max));
  return o;
}

Pusher::Pusher(PusherOptions options, const Clock* clock)
    : options_(std::move(options)),
      clock_(clock ? clock : Clock::Real()),
      epoch_(RandomEpoch()),
      last_sent_(std::chrono::steady_clock::now()) {
  if (options_.batch_max == 0) options_.batch_max = 1;
  if (options_.buffer_max < options_.batch_max) options_.buffer_max = options_.batch_max;
}

Pusher::~Pusher() { Stop(); }

Status Pusher::Start() {
  if (options_.url.empty()) return InvalidArgument("pusher: no aggregator URL");
  if (options_.node.empty()) return InvalidArgument("pusher: no node name");
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
  }
}

Status Pusher::Flush(std::chrono::milliseconds deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  flushing_ = true;
  cv_.notify_all();
  bool done = cv_.wait_for(lock, deadline, [this] {
    return stop_ || (pending_.empty() && !in_flight_ && !need_snapshot_);
  });
  flushing_ = false;
  if (done && pending_.empty() && !in_flight_ && !need_snapshot_) return Status::Ok();
  return Status(StatusCode::kDeadlineExceeded,
                "pusher: " + std::to_string(pending_.size()) +
                    " records not delivered to the aggregator before the deadline");
}

Pusher::Stats Pusher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.pending = pending_.size();
  return s;
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
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) {
        auto now = std::chrono::steady_clock::now();
        if (need_snapshot_ && have_view_) break;
        if (!pending_.empty() && (pending_.size() >= options_.batch_max || flushing_ ||
                                  now - pending_.front().queued >= options_.batch_delay)) {
          break;
        }
        bool beat = options_.heartbeat.count() > 0;
        if (beat && now - last_sent_ >= options_.heartbeat) break;
        auto wake = now + std::chrono::hours(1);
        if (!pending_.empty()) wake = pending_.front().queued + options_.batch_delay;
        if (beat) wake = std::min(wake, last_sent_ + options_.heartbeat);
        cv_.wait_until(lock, wake);
      }
      if (stop_) break;
      report.node = options_.node;
      report.epoch = epoch_;
      if (!pending_.empty()) {
        // Changes first, in order; a pending snapshot follows them.
        size_t n = std::min(options_.batch_max, pending_.size());
        report.records.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          report.records.push_back(std::move(pending_.front().record));
          pending_.pop_front();
        }
      } else if (need_snapshot_ && have_view_) {
        report.snapshot = true;
        report.records.reserve(view_.size());
        for (const auto& [uid, pod] : view_) report.records.push_back({RecordOp::kUpsert, pod, 0});
        need_snapshot_ = false;
      }
      report.seq = next_seq_++;
      in_flight_ = true;
    }
    bool accepted = SendWithRetry(client, report);
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ = false;
      last_sent_ = std::chrono::steady_clock::now();
      if (accepted) {
        ++stats_.batches_sent;
        stats_.records_sent += report.records.size();
        if (report.snapshot) ++stats_.snapshots_sent;
        if (report.records.empty() && !report.snapshot) ++stats_.heartbeats_sent;
      }
    }
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  client_ = nullptr;
}

bool Pusher::SendWithRetry(HttpClient& client, Report& report) {
  report.sent_unix_ms = NowMs();
  std::string body = EncodeReport(report);
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
        std::lock_guard<std::mutex> lock(mu_);
        stats_.bytes_sent += body.size();
        // Reconnected after a failure: the aggregator may have missed
        // anything (or restarted): resend the whole view.
        if (failed && have_view_) need_snapshot_ = true;
        return true;
      }
      if (code == 400 || code == 409 || code == 413) {
        // Retrying cannot help: the aggregator refuses this batch for good
        // (a bug, or a newer agent process for this node exists).
        spdlog::error("aggregator rejected report seq {} ({} records): HTTP {}: {}", report.seq,
                      report.records.size(), code, r->body);
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
    std::unique_lock<std::mutex> lock(mu_);
    ++stats_.retries;
    cv_.wait_for(lock, wait, [this] { return stop_; });
  }
}

}  // namespace ashiato
