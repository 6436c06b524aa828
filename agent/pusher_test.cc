// Pusher against a fake aggregator on HttpServer over loopback.
#include "agent/pusher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
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
    std::string enc = r.Header("content-encoding");
    auto report = DecodeReportBody(r.body, enc, 64 << 20);
    if (!report.ok()) return HttpResponse::Json(400, R"({"error":"bad"})");
    std::lock_guard<std::mutex> lock(mu);
    std::string auth = r.Header("authorization");
    received.push_back({*report, auth.size() > 7 ? auth.substr(7) : "", enc == "gzip"});
    return HttpResponse::Json(200, "{}");
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

  std::atomic<int> fail_next{0};
  std::atomic<bool> down{false};
  std::atomic<int> attempts{0};
  std::mutex mu;
  std::vector<Received> received;

 private:
  std::unique_ptr<HttpServer> server_;
};

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
  ASSERT_TRUE(WaitFor([&] { return agg.Got().size() >= 3; }));
  EXPECT_TRUE(agg.Got()[0].report.records.empty());
  EXPECT_GE(p.stats().heartbeats_sent, 3u);
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

}  // namespace
}  // namespace ashiato
