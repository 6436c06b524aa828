// Pusher against a fake aggregator on HttpServer over loopback.
#include "agent/pusher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/http_server.h"

namespace ashiato {
namespace {

using namespace std::chrono_literals;

struct Received {
  Report report;
  std::string token;
  bool gzip = false;
};

class FakeAggregator {
 public:
  FakeAggregator() {
    auto s = HttpServer::Start({}, [this](const HttpRequest& r) { return Handle(r); });
    EXPECT_TRUE(s.ok());
    server_ = std::move(s.value());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  HttpResponse Handle(const HttpRequest& r) {
    ++attempts;
    if (fail_next > 0) {
      --fail_next;
      return HttpResponse::Json(503, R"({"error":"try later"})");
    }
    if (down) return HttpResponse::Json(503, R"({"error":"down"})");
    if (reject_next > 0) {
      --reject_next;
      return HttpResponse::Json(400, R"({"error":"refused"})");
    }
    std::string enc = r.Header("content-encoding");
    auto report = DecodeReportBody(r.body, enc, 64 << 20);
    if (!report.ok()) return HttpResponse::Json(400, R"({"error":"bad"})");
    std::lock_guard<std::mutex> lock(mu);
    std::string auth = r.Header("authorization");
    received.push_back({*report, auth.size() > 7 ? auth.substr(7) : "", enc == "gzip"});
    // As the aggregator does: the answer names the store instance and the
    // highest committed seq of the batch's (node, epoch); an old one names
    // neither.
    uint64_t& committed = committed_[report->node + "/" + report->epoch];
    committed = std::max(committed, report->seq);
    if (old_style) {
      return HttpResponse::Json(200, R"({"applied":0,"seq":)" + std::to_string(report->seq) + "}");
    }
    uint64_t answer = committed;
    if (answer_committed_ >= 0) {
      answer = static_cast<uint64_t>(answer_committed_);
      answer_committed_ = -1;
    }
    ++answered_with_instance_;
    std::string body = R"({"applied":0,"committed_seq":)" + std::to_string(answer) +
                       R"(,"instance":")" + instance_ + R"(","seq":)" +
                       std::to_string(report->seq) + "}";
    if (!hold_answers_) return HttpResponse::Json(200, std::move(body));
    // Committed, but answered only on ReleaseAnswers(): a request in flight.
    HttpResponse held;
    held.stream = std::make_shared<ResponseStream>();
    held_.emplace_back(held.stream, std::move(body));
    return held;
  }

  // Answers of later requests wait for ReleaseAnswers().
  void HoldAnswers() {
    std::lock_guard<std::mutex> lock(mu);
    hold_answers_ = true;
  }
  size_t HeldAnswers() {
    std::lock_guard<std::mutex> lock(mu);
    return held_.size();
  }
  // Sends the held answers and stops holding.
  void ReleaseAnswers() {
    std::lock_guard<std::mutex> lock(mu);
    hold_answers_ = false;
    for (auto& [stream, body] : held_) {
      stream->Write(std::move(body));
      stream->Close();
    }
    held_.clear();
  }

  // A new aggregator store: a new instance id that knows no epoch.
  void SetInstance(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    instance_ = id;
    committed_.clear();
  }
  // The next answer says `seq` is the highest committed one (as an
  // aggregator that lost the tail of its store would).
  void AnswerCommittedOnce(uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu);
    answer_committed_ = static_cast<int64_t>(seq);
  }
  int answered_with_instance() {
    std::lock_guard<std::mutex> lock(mu);
    return answered_with_instance_;
  }

  std::vector<Received> Got() {
    std::lock_guard<std::mutex> lock(mu);
    return received;
  }
  // The latest record per UID over everything received, in arrival order.
  std::map<std::string, ReportRecord> Latest() {
    std::map<std::string, ReportRecord> out;
    for (const auto& g : Got()) {
      for (const auto& r : g.report.records) out[r.pod.uid] = r;
    }
    return out;
  }

  std::atomic<int> fail_next{0};    // Answer 503 (retry) this many times.
  std::atomic<int> reject_next{0};  // Answer 400 (drop the batch) this many times.
  std::atomic<bool> down{false};
  std::atomic<int> attempts{0};
  // Answer as an aggregator from before instance/committed_seq.
  std::atomic<bool> old_style{false};
  std::mutex mu;
  std::vector<Received> received;

 private:
  std::string instance_ = "instance-a";
  std::map<std::string, uint64_t> committed_;
  int64_t answer_committed_ = -1;
  int answered_with_instance_ = 0;
  bool hold_answers_ = false;
  std::vector<std::pair<std::shared_ptr<ResponseStream>, std::string>> held_;
  std::unique_ptr<HttpServer> server_;
};

// A settable clock for observed times and the replay window.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t unix_ms) : ms_(unix_ms) {}
  SystemTime Now() const override { return SystemTime(std::chrono::milliseconds(ms_.load())); }
  void Set(int64_t unix_ms) { ms_ = unix_ms; }
  int64_t ms() const { return ms_.load(); }

 private:
  std::atomic<int64_t> ms_;
};

constexpr int64_t kT0 = 1795000000000;  // 2026-11-19, Unix ms.

PodRecord Pod(const std::string& name, const std::string& rv,
              const std::string& phase = "Running") {
  PodRecord p;
  p.uid = "uid-" + name;
  p.namespace_ = "default";
  p.name = name;
  p.node_name = "node-1";
  p.phase = phase;
  p.resource_version = rv;
  return p;
}

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

PusherOptions Options(const FakeAggregator& agg) {
  PusherOptions o;
  o.url = agg.url();
  o.node = "node-1";
  o.batch_delay = 20ms;
  o.backoff = {5ms, 50ms, 2.0, 60000ms};
  o.heartbeat = 0ms;
  return o;
}

TEST(PusherTest, DeliversBatchesWithEnvelope) {
  FakeAggregator agg;
  Pusher p(Options(agg));
  ASSERT_TRUE(p.Start().ok());
  p.OnEvent("SYNC", Pod("a", "1"));
  p.OnSnapshot({Pod("a", "1")});
  p.OnEvent("CREATED", Pod("b", "2"));
  p.OnEvent("UPDATED", Pod("b", "3"));
  p.OnEvent("DELETED", Pod("a", "4"));
  ASSERT_TRUE(p.Flush(10s).ok());
  auto got = agg.Got();
  ASSERT_FALSE(got.empty());
  uint64_t last_seq = 0;
  size_t snapshots = 0, records = 0;
  for (const auto& g : got) {
    EXPECT_EQ(g.report.node, "node-1");
    EXPECT_EQ(g.report.epoch, p.epoch());
    EXPECT_GT(g.report.seq, last_seq);
    last_seq = g.report.seq;
    if (g.report.snapshot) {
      ++snapshots;
    } else {
      records += g.report.records.size();
      for (const auto& r : g.report.records) EXPECT_GT(r.observed_unix_ms, 0);
    }
  }
  EXPECT_EQ(snapshots, 1u);
  EXPECT_EQ(records, 3u);  // The SYNC of "a" travels in the snapshot only.
  auto latest = agg.Latest();
  EXPECT_EQ(latest["uid-a"].op, RecordOp::kDelete);
  EXPECT_EQ(latest["uid-b"].pod.resource_version, "3");
  EXPECT_EQ(p.stats().coalesced, 0u);
}

TEST(PusherTest, IdleRecordIsSentWithoutWaitingForATimer) {
  // With the default batch_delay (0) nothing waits for a timer: a lone
  // change goes out at once. (With the old fixed delay, this 1 h one, it
  // would never arrive.)
  FakeAggregator agg;
  PusherOptions o = Options(agg);
  o.batch_delay = PusherOptions{}.batch_delay;
  ASSERT_EQ(o.batch_delay, 0ms);
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  p.OnEvent("CREATED", Pod("a", "1"));
  ASSERT_TRUE(WaitFor([&] { return agg.Got().size() == 1; }));
  p.OnEvent("UPDATED", Pod("a", "2"));
  ASSERT_TRUE(WaitFor([&] { return agg.Got().size() == 2; }));
  auto got = agg.Got();
  EXPECT_EQ(got[0].report.records.size(), 1u);
  EXPECT_EQ(got[1].report.records.size(), 1u);
  EXPECT_EQ(got[1].report.seq, got[0].report.seq + 1);
}

TEST(PusherTest, RecordsArrivingDuringARequestGoTogetherInTheNext) {
  FakeAggregator agg;
  PusherOptions o = Options(agg);
  o.batch_delay = 0ms;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  agg.HoldAnswers();
  p.OnEvent("CREATED", Pod("a", "1"));
  ASSERT_TRUE(WaitFor([&] { return agg.HeldAnswers() == 1; }));
  // Under load: five changes while the first request is in flight.
  for (int i = 0; i < 5; ++i) p.OnEvent("CREATED", Pod("b" + std::to_string(i), "2"));
  agg.ReleaseAnswers();
  ASSERT_TRUE(p.Flush(10s).ok());
  auto got = agg.Got();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].report.records.size(), 1u);
  ASSERT_EQ(got[1].report.records.size(), 5u);
  for (int i = 0; i < 5; ++i) {  // In the order observed.
    EXPECT_EQ(got[1].report.records[i].pod.name, "b" + std::to_string(i));
  }
  EXPECT_EQ(p.stats().batches_sent, 2u);
}

TEST(PusherTest, RetriesSameSeqThenSendsSnapshot) {
  FakeAggregator agg;
  agg.fail_next = 3;
  Pusher p(Options(agg));
  ASSERT_TRUE(p.Start().ok());
  p.OnSnapshot({});
  ASSERT_TRUE(p.Flush(10s).ok());
  size_t before = agg.Got().size();
  agg.fail_next = 4;
  p.OnEvent("CREATED", Pod("a", "1"));
  ASSERT_TRUE(p.Flush(10s).ok());
  auto got = agg.Got();
  EXPECT_GE(p.stats().retries, 7u);
  // The change, then a snapshot because we reconnected after failures.
  ASSERT_EQ(got.size(), before + 2);
  EXPECT_FALSE(got[before].report.snapshot);
  EXPECT_EQ(got[before].report.records.size(), 1u);
  EXPECT_TRUE(got[before + 1].report.snapshot);
  ASSERT_EQ(got[before + 1].report.records.size(), 1u);
  EXPECT_EQ(got[before + 1].report.records[0].pod.uid, "uid-a");
  EXPECT_EQ(got[before + 1].report.seq, got[before].report.seq + 1);
}

TEST(PusherTest, FullBufferCoalescesKeepingLatestStateOfEveryPod) {
  FakeAggregator agg;
  agg.down = true;
  PusherOptions o = Options(agg);
  o.buffer_max = 10;
  o.batch_max = 5;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  // 3 pods, 200 updates while the aggregator is down.
  for (int i = 1; i <= 200; ++i) {
    p.OnEvent("UPDATED", Pod("p" + std::to_string(i % 3), std::to_string(i)));
  }
  p.OnEvent("DELETED", Pod("p0", "1000"));
  EXPECT_LE(p.stats().pending, 10u);
  EXPECT_GT(p.stats().coalesced, 150u);
  EXPECT_FALSE(p.Flush(100ms).ok()) << "nothing can be delivered while down";
  agg.down = false;
  ASSERT_TRUE(p.Flush(10s).ok());
  auto latest = agg.Latest();
  ASSERT_EQ(latest.size(), 3u);
  EXPECT_EQ(latest["uid-p0"].op, RecordOp::kDelete);
  EXPECT_EQ(latest["uid-p1"].pod.resource_version, "199");
  EXPECT_EQ(latest["uid-p2"].pod.resource_version, "200");
}

TEST(PusherTest, TokenFileReReadWhenItChanges) {
  FakeAggregator agg;
  char path[] = "/tmp/ashiato-token-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  { std::ofstream(path) << "first\n"; }
  PusherOptions o = Options(agg);
  o.token_file = path;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  p.OnEvent("CREATED", Pod("a", "1"));
  ASSERT_TRUE(p.Flush(10s).ok());
  // Rotate: a new file content and mtime.
  { std::ofstream(path) << "second"; }
  struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  times[1].tv_sec = time(nullptr) + 5;
  times[1].tv_nsec = 0;
  utimensat(AT_FDCWD, path, times, 0);
  p.OnEvent("UPDATED", Pod("a", "2", "Succeeded"));
  ASSERT_TRUE(p.Flush(10s).ok());
  auto got = agg.Got();
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got.front().token, "first");
  EXPECT_EQ(got.back().token, "second");
  unlink(path);
}

TEST(PusherTest, LargeBatchesAreGzipped) {
  FakeAggregator agg;
  PusherOptions o = Options(agg);
  o.gzip_min_bytes = 1024;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  std::vector<PodRecord> all;
  for (int i = 0; i < 50; ++i) all.push_back(Pod("pod-" + std::to_string(i), "1"));
  p.OnSnapshot(all);
  p.OnEvent("CREATED", Pod("x", "2"));
  ASSERT_TRUE(p.Flush(10s).ok());
  bool saw_gzip = false, saw_plain = false;
  for (const auto& g : agg.Got()) (g.gzip ? saw_gzip : saw_plain) = true;
  EXPECT_TRUE(saw_gzip);
  EXPECT_TRUE(saw_plain);
}

TEST(PusherTest, HeartbeatWhenIdle) {
  FakeAggregator agg;
  PusherOptions o = Options(agg);
  o.heartbeat = 50ms;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  // The pusher counts a heartbeat once it has the answer, a moment after
  // the aggregator saw it: wait for both.
  ASSERT_TRUE(WaitFor([&] { return agg.Got().size() >= 3 && p.stats().heartbeats_sent >= 3; }));
  EXPECT_TRUE(agg.Got()[0].report.records.empty());
}

TEST(PusherTest, StopWhileAggregatorUnreachable) {
  PusherOptions o;
  o.url = "http://127.0.0.1:1";  // Nothing listens.
  o.node = "node-1";
  o.backoff = {5ms, 20ms, 2.0, 60000ms};
  auto start = std::chrono::steady_clock::now();
  {
    Pusher p(o);
    ASSERT_TRUE(p.Start().ok());
    p.OnEvent("CREATED", Pod("a", "1"));
    EXPECT_EQ(p.Flush(200ms).code(), StatusCode::kDeadlineExceeded);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

// --- Replay to an aggregator that lost state ---

// Batches received after the first `from`.
std::vector<Received> Since(FakeAggregator& agg, size_t from) {
  auto got = agg.Got();
  return std::vector<Received>(got.begin() + static_cast<std::ptrdiff_t>(from), got.end());
}

std::vector<std::string> Uids(const Report& r) {
  std::vector<std::string> out;
  for (const auto& rec : r.records) out.push_back(rec.pod.uid);
  std::sort(out.begin(), out.end());
  return out;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(PusherTest, NewInstanceReplaysRetainedChangesThenSnapshot) {
  FakeAggregator agg;
  FakeClock clock(kT0);
  AgentMetrics metrics;
  Pusher p(Options(agg), &clock, &metrics);
  ASSERT_TRUE(p.Start().ok());
  p.OnEvent("SYNC", Pod("a", "1"));
  p.OnEvent("SYNC", Pod("b", "2"));
  p.OnSnapshot({Pod("a", "1"), Pod("b", "2")});
  ASSERT_TRUE(p.Flush(10s).ok());
  clock.Set(kT0 + 1000);
  p.OnEvent("CREATED", Pod("c", "3", "Pending"));
  clock.Set(kT0 + 2000);
  p.OnEvent("UPDATED", Pod("a", "4", "Succeeded"));
  clock.Set(kT0 + 3000);
  p.OnEvent("DELETED", Pod("b", "5"));
  ASSERT_TRUE(p.Flush(10s).ok());
  clock.Set(kT0 + 4000);
  p.OnEvent("UPDATED", Pod("c", "6"));
  ASSERT_TRUE(p.Flush(10s).ok());
  EXPECT_EQ(p.stats().replays, 0u);
  EXPECT_EQ(p.stats().replay_retained, 3u);  // a, b (deleted), c; SYNCs are not changes.
  EXPECT_EQ(p.aggregator_instance(), "instance-a");
  size_t before = agg.Got().size();

  // The aggregator comes back on a new, empty volume; the next answer says so.
  agg.SetInstance("instance-b");
  clock.Set(kT0 + 5000);
  p.OnEvent("CREATED", Pod("d", "7"));
  ASSERT_TRUE(p.Flush(10s).ok());
  auto got = Since(agg, before);
  // d's batch, the replay (one batch: batch_max 500), the snapshot.
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(p.aggregator_instance(), "instance-b");
  const Report& replay = got[1].report;
  EXPECT_FALSE(got[0].report.replay) << "d is new: the aggregator must log it";
  EXPECT_TRUE(replay.replay) << "acknowledged before: stored again, not logged again";
  EXPECT_FALSE(replay.snapshot);
  EXPECT_EQ(replay.seq, got[0].report.seq + 1);
  ASSERT_EQ(replay.records.size(), 4u);
  // The latest change of each pod, in observed order, with its original time.
  EXPECT_EQ(replay.records[0].pod.uid, "uid-a");
  EXPECT_EQ(replay.records[0].pod.resource_version, "4");
  EXPECT_EQ(replay.records[0].observed_unix_ms, kT0 + 2000);
  EXPECT_EQ(replay.records[1].pod.uid, "uid-b");  // No longer in the view.
  EXPECT_EQ(replay.records[1].op, RecordOp::kDelete);
  EXPECT_EQ(replay.records[1].pod.resource_version, "5");
  EXPECT_EQ(replay.records[1].pod.phase, "Running");  // Its last state.
  EXPECT_EQ(replay.records[1].observed_unix_ms, kT0 + 3000);
  EXPECT_EQ(replay.records[2].pod.uid, "uid-c");
  EXPECT_EQ(replay.records[2].pod.resource_version, "6");
  EXPECT_EQ(replay.records[2].observed_unix_ms, kT0 + 4000);
  EXPECT_EQ(replay.records[3].pod.uid, "uid-d");
  EXPECT_EQ(replay.records[3].observed_unix_ms, kT0 + 5000);
  const Report& snap = got[2].report;
  EXPECT_TRUE(snap.snapshot);
  EXPECT_TRUE(snap.replay);
  EXPECT_EQ(snap.seq, replay.seq + 1);
  EXPECT_EQ(Uids(snap), (std::vector<std::string>{"uid-a", "uid-c", "uid-d"}));

  auto s = p.stats();
  EXPECT_EQ(s.replays, 1u);
  EXPECT_EQ(s.replayed_records, 4u);
  std::string text = metrics.Serialize();
  EXPECT_TRUE(Contains(text, "ashiato_agent_push_replays_total{reason=\"instance\"} 1")) << text;
  EXPECT_TRUE(Contains(text, "ashiato_agent_push_replays_total{reason=\"committed_seq\"} 0"));

  // The same new instance from now on: nothing more is replayed.
  before = agg.Got().size();
  p.OnEvent("UPDATED", Pod("d", "8", "Succeeded"));
  ASSERT_TRUE(p.Flush(10s).ok());
  got = Since(agg, before);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].report.records.size(), 1u);
  EXPECT_EQ(p.stats().replays, 1u);
}

TEST(PusherTest, InstanceChangeOnHeartbeatReplaysWithoutNewChanges) {
  FakeAggregator agg;
  PusherOptions o = Options(agg);
  o.heartbeat = 30ms;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  p.OnSnapshot({Pod("a", "1")});
  p.OnEvent("DELETED", Pod("a", "2"));
  ASSERT_TRUE(p.Flush(10s).ok());
  // Nothing changes on the node; only heartbeats can tell.
  agg.SetInstance("instance-b");
  ASSERT_TRUE(WaitFor([&] { return p.stats().replays == 1 && p.stats().snapshots_sent >= 2; }));
  int deletions_sent = 0;  // Once as a change, once replayed.
  for (const auto& g : agg.Got()) {
    for (const auto& r : g.report.records) deletions_sent += r.op == RecordOp::kDelete;
  }
  EXPECT_EQ(deletions_sent, 2);
}

TEST(PusherTest, PushRequestsAreCountedByResult) {
  FakeAggregator agg;
  AgentMetrics metrics;
  Pusher p(Options(agg), nullptr, &metrics);
  std::string text = metrics.Serialize();
  // Every result is exposed from the start, so rate() and alerts see a zero.
  for (const char* r : {"delivered", "failed", "rejected"}) {
    EXPECT_TRUE(
        Contains(text, std::string("ashiato_agent_push_requests_total{result=\"") + r + "\"} 0"))
        << text;
  }
  agg.fail_next = 2;
  ASSERT_TRUE(p.Start().ok());
  p.OnSnapshot({});
  ASSERT_TRUE(p.Flush(10s).ok());
  agg.reject_next = 1;
  p.OnEvent("CREATED", Pod("a", "1"));
  ASSERT_TRUE(p.Flush(10s).ok());
  text = metrics.Serialize();
  EXPECT_TRUE(Contains(text, "ashiato_agent_push_requests_total{result=\"failed\"} 2")) << text;
  EXPECT_TRUE(Contains(text, "ashiato_agent_push_requests_total{result=\"rejected\"} 1")) << text;
  EXPECT_FALSE(Contains(text, "ashiato_agent_push_requests_total{result=\"delivered\"} 0")) << text;
}

TEST(PusherTest, SameInstanceReplaysNothing) {
  FakeAggregator agg;
  PusherOptions o = Options(agg);
  o.heartbeat = 20ms;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  p.OnSnapshot({Pod("a", "1")});
  p.OnEvent("CREATED", Pod("b", "2"));
  p.OnEvent("DELETED", Pod("a", "3"));
  ASSERT_TRUE(p.Flush(10s).ok());
  ASSERT_TRUE(WaitFor([&] { return p.stats().heartbeats_sent >= 5; }));
  auto s = p.stats();
  EXPECT_EQ(s.replays, 0u);
  EXPECT_EQ(s.replayed_records, 0u);
  EXPECT_EQ(s.snapshots_sent, 1u);
  size_t change_records = 0;
  for (const auto& g : agg.Got()) {
    if (!g.report.snapshot) change_records += g.report.records.size();
  }
  EXPECT_EQ(change_records, 2u);
  EXPECT_GE(agg.answered_with_instance(), 6);
}

TEST(PusherTest, CommittedSeqBelowAcknowledgedReplays) {
  FakeAggregator agg;
  AgentMetrics metrics;
  Pusher p(Options(agg), nullptr, &metrics);
  ASSERT_TRUE(p.Start().ok());
  p.OnSnapshot({Pod("a", "1")});
  p.OnEvent("UPDATED", Pod("a", "2", "Succeeded"));
  ASSERT_TRUE(p.Flush(10s).ok());
  size_t before = agg.Got().size();
  // Same instance, but it answers the next batch as if it had committed
  // only seq 1 (it lost the tail of its store).
  agg.AnswerCommittedOnce(1);
  p.OnEvent("CREATED", Pod("b", "3"));
  ASSERT_TRUE(p.Flush(10s).ok());
  auto got = Since(agg, before);
  ASSERT_EQ(got.size(), 3u);  // b, replay of a and b, snapshot.
  EXPECT_EQ(Uids(got[1].report), (std::vector<std::string>{"uid-a", "uid-b"}));
  EXPECT_FALSE(got[1].report.snapshot);
  EXPECT_TRUE(got[2].report.snapshot);
  EXPECT_EQ(p.stats().replays, 1u);
  EXPECT_TRUE(Contains(metrics.Serialize(),
                       "ashiato_agent_push_replays_total{reason=\"committed_seq\"} 1"));
}

TEST(PusherTest, HeartbeatNeedNotBeCommitted) {
  FakeAggregator agg;
  PusherOptions o = Options(agg);
  o.heartbeat = 20ms;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  p.OnSnapshot({Pod("a", "1")});
  ASSERT_TRUE(p.Flush(10s).ok());
  uint64_t data_seq = agg.Got().back().report.seq;
  // An aggregator may not commit an empty batch: committed_seq below the
  // heartbeat's own seq but not below the last batch with records is fine.
  for (int i = 0; i < 3; ++i) {
    agg.AnswerCommittedOnce(data_seq);
    uint64_t beats = p.stats().heartbeats_sent;
    ASSERT_TRUE(WaitFor([&] { return p.stats().heartbeats_sent > beats; }));
  }
  EXPECT_EQ(p.stats().replays, 0u);
  // Below the snapshot's seq, even on a heartbeat, is a loss.
  agg.AnswerCommittedOnce(data_seq - 1);
  ASSERT_TRUE(WaitFor([&] { return p.stats().replays == 1; }));
}

TEST(PusherTest, OldStyleAnswersNeverReplay) {
  FakeAggregator agg;
  agg.old_style = true;
  PusherOptions o = Options(agg);
  o.heartbeat = 20ms;
  Pusher p(o);
  ASSERT_TRUE(p.Start().ok());
  p.OnSnapshot({Pod("a", "1")});
  p.OnEvent("UPDATED", Pod("a", "2", "Succeeded"));
  ASSERT_TRUE(p.Flush(10s).ok());
  ASSERT_TRUE(WaitFor([&] { return p.stats().heartbeats_sent >= 3; }));
  EXPECT_EQ(p.stats().replays, 0u);
  EXPECT_EQ(p.aggregator_instance(), "");
  // Upgraded aggregator: the first instance named is remembered, not a change.
  agg.old_style = false;
  p.OnEvent("CREATED", Pod("b", "3"));
  ASSERT_TRUE(p.Flush(10s).ok());
  ASSERT_TRUE(WaitFor([&] { return p.aggregator_instance() == "instance-a"; }));
  // Rolled back to an old one, then forward again to the same store.
  agg.old_style = true;
  p.OnEvent("UPDATED", Pod("b", "4", "Succeeded"));
  ASSERT_TRUE(p.Flush(10s).ok());
  uint64_t beats = p.stats().heartbeats_sent;
  ASSERT_TRUE(WaitFor([&] { return p.stats().heartbeats_sent >= beats + 2; }));
  agg.old_style = false;
  beats = p.stats().heartbeats_sent;
  ASSERT_TRUE(WaitFor([&] { return p.stats().heartbeats_sent >= beats + 2; }));
  EXPECT_EQ(p.stats().replays, 0u);
  EXPECT_EQ(p.aggregator_instance(), "instance-a");
  // The detection itself still works in this test.
  agg.SetInstance("instance-b");
  ASSERT_TRUE(WaitFor([&] { return p.stats().replays == 1; }));
}

TEST(PusherTest, RetentionWindowAndMaxAreCounted) {
  FakeAggregator agg;
  FakeClock clock(kT0);
  AgentMetrics metrics;
  PusherOptions o = Options(agg);
  o.replay_max = 3;
  o.replay_window = std::chrono::hours(1);
  Pusher p(o, &clock, &metrics);
  ASSERT_TRUE(p.Start().ok());
  p.OnSnapshot({});
  for (int i = 1; i <= 5; ++i) {
    clock.Set(kT0 + i * 1000);
    p.OnEvent("CREATED", Pod("p" + std::to_string(i), std::to_string(i)));
  }
  ASSERT_TRUE(p.Flush(10s).ok());
  auto s = p.stats();
  EXPECT_EQ(s.replay_retained, 3u);
  EXPECT_EQ(s.replay_dropped, 2u);  // p1 and p2, the oldest.
  EXPECT_EQ(s.replay_expired, 0u);
  // Another change of a retained pod replaces it: nothing dropped.
  clock.Set(kT0 + 6000);
  p.OnEvent("UPDATED", Pod("p5", "6", "Succeeded"));
  ASSERT_TRUE(p.Flush(10s).ok());
  EXPECT_EQ(p.stats().replay_dropped, 2u);
  EXPECT_EQ(p.stats().replay_retained, 3u);

  // An hour and a bit later p3..p5 are past the window.
  clock.Set(kT0 + 3600 * 1000 + 5000);
  p.OnEvent("CREATED", Pod("p6", "7"));
  ASSERT_TRUE(p.Flush(10s).ok());
  s = p.stats();
  EXPECT_EQ(s.replay_expired, 2u);   // p3, p4 (observed at T0+3s, T0+4s).
  EXPECT_EQ(s.replay_retained, 2u);  // p5 (T0+6s) and p6.
  clock.Set(kT0 + 3600 * 1000 + 6001);
  p.OnEvent("CREATED", Pod("p7", "8"));
  ASSERT_TRUE(p.Flush(10s).ok());
  s = p.stats();
  EXPECT_EQ(s.replay_expired, 3u);   // p5 too.
  EXPECT_EQ(s.replay_retained, 2u);  // p6, p7.

  size_t before = agg.Got().size();
  agg.SetInstance("instance-b");
  clock.Set(kT0 + 3600 * 1000 + 7000);
  p.OnEvent("CREATED", Pod("p8", "9"));
  ASSERT_TRUE(p.Flush(10s).ok());
  auto got = Since(agg, before);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(Uids(got[1].report), (std::vector<std::string>{"uid-p6", "uid-p7", "uid-p8"}));
  EXPECT_EQ(p.stats().replay_dropped, 2u);

  std::string text = metrics.Serialize();
  EXPECT_TRUE(Contains(text, "ashiato_agent_push_replay_dropped_total 2")) << text;
  EXPECT_TRUE(Contains(text, "ashiato_agent_push_replay_expired_total 3")) << text;
  EXPECT_TRUE(Contains(text, "ashiato_agent_push_replay_retained 3")) << text;
}

// What a replay of `encoded` (RetainedChanges::Take) sends, decoded.
std::vector<ReportRecord> Decoded(const std::vector<std::string>& encoded) {
  Report envelope;
  envelope.node = "node-1";
  envelope.epoch = "e";
  auto report = DecodeReport(EncodeReport(envelope, encoded));
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? report->records : std::vector<ReportRecord>{};
}

TEST(PusherTest, RetainedRecordWithSeveralIpsIsReplayed) {
  // Found by the chaos soak: a retained pod with a dual-stack IP list was
  // refused by the decoder's list limit, and silently left out of replays.
  RetainedChanges r("node-1", 10);
  PodRecord p = Pod("a", "1");
  p.pod_ip = "10.0.0.1";
  p.pod_ips = {"10.0.0.1", "fd00::1"};
  r.Add({RecordOp::kUpsert, p, 5});
  auto after = RetainedChanges::First();
  auto got = Decoded(r.Take(&after, r.LastKey(), 10));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].pod.pod_ips, p.pod_ips);
}

TEST(PusherTest, RetainedChangesKeepLatestPerPodInObservedOrder) {
  RetainedChanges r("node-1", 10);
  auto rec = [](const std::string& name, const std::string& rv, int64_t t,
                RecordOp op = RecordOp::kUpsert) {
    return ReportRecord{op, Pod(name, rv), t};
  };
  EXPECT_EQ(r.Add(rec("a", "1", 300)), 0u);
  r.Add(rec("b", "2", 100));
  r.Add(rec("a", "3", 500));                     // Replaces a@300.
  r.Add(rec("c", "4", 200, RecordOp::kDelete));  // A deletion keeps its last state.
  r.Add(rec("a", "5", 400));                     // Older than the a@500 held: ignored.
  EXPECT_EQ(r.size(), 3u);
  auto after = RetainedChanges::First();
  auto last = r.LastKey();
  auto page = Decoded(r.Take(&after, last, 2));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].pod.uid, "uid-b");
  EXPECT_EQ(page[1].pod.uid, "uid-c");
  EXPECT_EQ(page[1].op, RecordOp::kDelete);
  EXPECT_EQ(page[1].observed_unix_ms, 200);
  EXPECT_TRUE(page[1].pod.SameObservableState(Pod("c", "4")));
  EXPECT_TRUE(r.Has(after, last));
  page = Decoded(r.Take(&after, last, 2));
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].pod.resource_version, "3");
  EXPECT_EQ(page[0].observed_unix_ms, 500);
  EXPECT_FALSE(r.Has(after, last));
  // Added after the replay began: not part of it.
  r.Add(rec("d", "6", 600));
  EXPECT_FALSE(r.Has(after, last));
  EXPECT_EQ(r.Prune(201), 2u);  // b@100, c@200.
  EXPECT_EQ(r.size(), 2u);
  RetainedChanges off("node-1", 0);
  EXPECT_EQ(off.Add(rec("a", "1", 1)), 0u);
  EXPECT_EQ(off.size(), 0u);
}

// A realistic pod (as ReportTest.BytesPerTypicalRecord): 2 containers with
// digests, 5 conditions, owner, 2 labels, unique uid/name/IP.
PodRecord TypicalPod(int i) {
  static const char* kApps[] = {"checkout-api", "payments-worker", "web-frontend", "redis-cache"};
  std::mt19937 rng(static_cast<unsigned>(i) * 7919u + 17u);
  auto hex = [&rng](int n) {
    std::string s;
    for (int k = 0; k < n; ++k) s += "0123456789abcdef"[rng() % 16];
    return s;
  };
  std::string app = kApps[i % 4];
  std::string hash = "7d4b9c8f" + std::to_string(i % 4) + "d";
  PodRecord p;
  p.uid = hex(8) + "-" + hex(4) + "-" + hex(4) + "-" + hex(4) + "-" + hex(12);
  p.namespace_ = "payments";
  p.name = app + "-" + hash + "-" + hex(5);
  p.node_name = "node-1";
  p.pod_ip = "10.244." + std::to_string(i / 250) + "." + std::to_string(2 + i % 250);
  p.pod_ips = {p.pod_ip};
  p.host_ip = "172.18.0.3";
  p.phase = "Running";
  p.conditions = {{"PodReadyToStartContainers", "True", "2026-11-24T03:00:02Z"},
                  {"Initialized", "True", "2026-11-24T03:00:01Z"},
                  {"Ready", "True", "2026-11-24T03:00:04Z"},
                  {"ContainersReady", "True", "2026-11-24T03:00:04Z"},
                  {"PodScheduled", "True", "2026-11-24T03:00:00Z"}};
  std::string digest = "sha256:" + std::string(64, "0123"[i % 4]);
  p.containers = {{"app", "registry.example.com/payments/" + app + ":1.42.0",
                   "registry.example.com/payments/" + app + "@" + digest},
                  {"istio-proxy", "docker.io/istio/proxyv2:1.22.1",
                   "docker.io/istio/proxyv2@sha256:"
                   "0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}};
  p.owner_kind = "Deployment";
  p.owner_name = app;
  p.owner_inferred = true;
  p.labels = {{"app", app}, {"pod-template-hash", hash}};
  p.creation_timestamp = "2026-11-24T02:59:58Z";
  p.resource_version = std::to_string(123456 + i * 37);
  return p;
}

// Prints the memory figure quoted in docs/agent.md (heap in use, measured
// with mallinfo2, per retained pod).
TEST(PusherTest, RetainedBytesPerTypicalRecord) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "mallinfo2() does not see the sanitizer's allocator";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  GTEST_SKIP() << "mallinfo2() does not see the sanitizer's allocator";
#endif
#endif
  const int n = 5000;
  std::vector<ReportRecord> records;
  for (int i = 0; i < n; ++i) records.push_back({RecordOp::kUpsert, TypicalPod(i), kT0 + i});
  malloc_trim(0);
  size_t base = mallinfo2().uordblks;
  auto retained = std::make_unique<RetainedChanges>("node-1", n);
  for (const auto& r : records) retained->Add(r);
  size_t with_retained = mallinfo2().uordblks;
  double per_record = static_cast<double>(with_retained - base) / n;
  double encoded = static_cast<double>(retained->encoded_bytes()) / n;
  retained.reset();
  // For comparison: the same pods held as PodRecord structs.
  malloc_trim(0);
  base = mallinfo2().uordblks;
  auto copies = std::make_unique<std::vector<PodRecord>>();
  copies->reserve(n);
  for (const auto& r : records) copies->push_back(r.pod);
  double per_podrecord = static_cast<double>(mallinfo2().uordblks - base) / n;
  // What gzip per record would save (not done: zlib's ~256 KiB deflate state
  // per record costs more CPU than the ~500 B it saves is worth).
  size_t gz_total = 0;
  for (size_t i = 0; i < 200; ++i) {
    Report one;
    one.node = "node-1";
    one.epoch = "r";
    one.records.push_back(records[i]);
    gz_total += GzipCompress(EncodeReport(one), 6)->size();
  }
  std::printf(
      "retained change: %.0f B heap per pod (encoded record %.0f B, %.0f B if gzipped alone); "
      "as PodRecord %.0f B\n",
      per_record, encoded, static_cast<double>(gz_total) / 200, per_podrecord);
  EXPECT_LT(per_record, per_podrecord);
  EXPECT_LT(per_record, 1536.0);
}

TEST(PusherTest, AgentFlagsReachPusherOptions) {
  AgentOptions a;
  a.aggregator = "https://agg:8443";
  a.node = "node-1";
  PusherOptions d = PusherOptionsFromAgent(a);
  EXPECT_EQ(d.ca_file, "");
  EXPECT_EQ(d.heartbeat, 10s);
  EXPECT_EQ(d.backoff.max, 5s);
  EXPECT_EQ(d.replay_window, std::chrono::hours(1));
  EXPECT_EQ(d.replay_max, 20000u);
  a.aggregator_ca_file = "/etc/ashiato/aggregator-ca.crt";
  a.heartbeat = 7s;
  a.push_backoff_max = 3s;
  a.replay_window = std::chrono::minutes(30);
  a.replay_max = 5;
  PusherOptions o = PusherOptionsFromAgent(a);
  EXPECT_EQ(o.ca_file, "/etc/ashiato/aggregator-ca.crt");
  EXPECT_EQ(o.heartbeat, 7s);
  EXPECT_EQ(o.backoff.max, 3s);
  EXPECT_EQ(o.replay_window, std::chrono::minutes(30));
  EXPECT_EQ(o.replay_max, 5u);
}

TEST(PusherTest, HttpsAggregatorDefaultsToTheInClusterCaBundle) {
  char path[] = "/tmp/ashiato-ca-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(DefaultAggregatorCaFile("https://agg:8443", path), path);
  EXPECT_EQ(DefaultAggregatorCaFile("http://agg:8080", path), "") << "no TLS, no CA";
  EXPECT_EQ(DefaultAggregatorCaFile("https://agg:8443", "/nonexistent/ca.crt"), "")
      << "outside a pod: the system store";
  unlink(path);
}

TEST(PusherTest, UnreadableCaFileIsRefusedAtStart) {
  PusherOptions o;
  o.url = "https://127.0.0.1:1";
  o.node = "node-1";
  o.ca_file = "/nonexistent/ashiato-ca.crt";
  Pusher p(o);
  Status s = p.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "/nonexistent/ashiato-ca.crt")) << s.ToString();
}

}  // namespace
}  // namespace ashiato
