#include "aggregator/log_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "aggregator/log_text.h"
#include "aggregator/query.h"
#include "aggregator/state.h"
#include "aggregator/test_util.h"

namespace ashiato {
namespace {

using testutil::FakeClock;
using testutil::MakeReport;
using testutil::Pod;
using testutil::TempStore;
using testutil::Up;

// Reads everything from `fd` until `lines` newlines arrived or 10 s passed.
std::string ReadLines(int fd, size_t lines) {
  std::string out;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (static_cast<size_t>(std::count(out.begin(), out.end(), '\n')) < lines &&
         std::chrono::steady_clock::now() < deadline) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    if (n <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return out;
}

TEST(LogWriterTest, StalledStdoutBlocksNeitherIngestNorQueriesAndCatchesUp) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::FILE* out = fdopen(fds[1], "w");
  FakeClock clock;
  TempStore store;
  ClusterState state(StateOptions{}, store.get(), nullptr, &clock);
  ASSERT_TRUE(state.Open().ok());
  LogWriter writer(LogWriterOptions{.batch = 50, .poll = std::chrono::milliseconds(100)},
                   store.get(), out, nullptr);
  state.SetCommitListener([&] { writer.Notify(); });
  writer.Start();
  // Nobody reads the pipe: ~1 KB lines fill its 64 KiB after ~60 of them.
  const int kPods = 400;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kPods; ++i) {
    PodRecord p = Pod("p" + std::to_string(i), "n1", std::to_string(i + 1));
    p.labels["pad"] = std::string(900, 'x');
    ApplyResult r = state.Apply(MakeReport("n1", "e1", static_cast<uint64_t>(i + 1), {Up(p)}));
    ASSERT_EQ(r.outcome, ApplyOutcome::kApplied);
  }
  EXPECT_EQ(state.live_pods(), static_cast<size_t>(kPods));
  QueryApi api(QueryOptions{}, &state, store.get());
  HttpRequest req;
  req.query = {{"limit", "5"}};
  EXPECT_EQ(api.History(req).status, 200);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(20)) << "ingest waited on the stalled pipe";
  EXPECT_LT(writer.cursor(), *store->LastEventId()) << "the pipe was supposed to be full";
  // The reader comes back: every line arrives once, in order, ids increasing.
  std::string text = ReadLines(fds[0], kPods);
  EXPECT_TRUE(writer.WaitCaughtUp(std::chrono::seconds(10)));
  std::istringstream in(text);
  std::string line;
  int64_t last_id = 0;
  int n = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_GT(j["id"].get<int64_t>(), last_id);
    last_id = j["id"];
    EXPECT_EQ(j["pod_name"], "p" + std::to_string(n));
    ++n;
  }
  EXPECT_EQ(n, kPods);
  writer.Stop(std::chrono::seconds(1));
  std::fclose(out);
  close(fds[0]);
}

TEST(LogWriterTest, StopDoesNotHangOnAStalledPipeAndResumesFromTheCursor) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::FILE* out = fdopen(fds[1], "w");
  FakeClock clock;
  TempStore store;
  {
    ClusterState state(StateOptions{}, store.get(), nullptr, &clock);
    ASSERT_TRUE(state.Open().ok());
    for (int i = 0; i < 200; ++i) {
      PodRecord p = Pod("p" + std::to_string(i), "n1", std::to_string(i + 1));
      p.labels["pad"] = std::string(900, 'x');
      state.Apply(MakeReport("n1", "e1", static_cast<uint64_t>(i + 1), {Up(p)}));
    }
  }
  int64_t written;
  {
    LogWriter writer(LogWriterOptions{.batch = 20, .poll = std::chrono::milliseconds(50)},
                     store.get(), out, nullptr);
    writer.Start();
    EXPECT_FALSE(writer.WaitCaughtUp(std::chrono::milliseconds(500)));
    auto t0 = std::chrono::steady_clock::now();
    writer.Stop(std::chrono::milliseconds(200));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    written = writer.cursor();
    EXPECT_GT(written, 0);
  }
  // Drain what the first writer got out, then a "restarted" writer goes on
  // after the persisted cursor.
  char drain[65536];
  while (read(fds[0], drain, sizeof(drain)) > 0) {
  }
  std::FILE* out2 = std::tmpfile();
  LogWriter again(LogWriterOptions{}, store.get(), out2, nullptr);
  again.Start();
  ASSERT_TRUE(again.WaitCaughtUp(std::chrono::seconds(5)));
  again.Stop(std::chrono::seconds(1));
  std::rewind(out2);
  char buf[64];
  ASSERT_NE(std::fgets(buf, sizeof(buf), out2), nullptr);
  std::string head(buf);
  int64_t first_id = std::stoll(head.substr(6));
  EXPECT_EQ(first_id, written + 1) << "resumes right after the persisted cursor";
  std::fclose(out2);
  std::fclose(out);
  close(fds[0]);
}

}  // namespace
}  // namespace ashiato

namespace ashiato {
namespace {

// The live configuration: out-of-scope lines are not printed; logFormat text.
TEST(LogWriterTest, SkipsOutOfScopeLinesAndSwitchesToText) {
  testutil::LogCapture out;
  FakeClock clock;
  TempStore store;
  ClusterState state(StateOptions{}, store.get(), nullptr, &clock);
  ASSERT_TRUE(state.Open().ok());
  ASSERT_TRUE(state.SetScope(*PodScope::Make({"team-*"}, {}, "")).ok());
  LogWriter writer(LogWriterOptions{.poll = std::chrono::milliseconds(20), .cluster = "prod"},
                   store.get(), out.file(), nullptr);
  state.SetCommitListener([&] { writer.Notify(); });
  writer.Start();
  PodRecord in = Pod("a", "n1", "1", "10.0.0.1");
  in.namespace_ = "team-a";
  PodRecord outside = Pod("b", "n1", "2");
  state.Apply(MakeReport("n1", "e1", 1, {Up(in), Up(outside)}));
  ASSERT_TRUE(writer.WaitCaughtUp(std::chrono::seconds(10)));
  writer.SetFormat(LogFormat::kText);
  PodRecord later = Pod("c", "n1", "3");
  later.namespace_ = "team-b";
  state.Apply(MakeReport("n1", "e1", 2, {Up(later)}));
  ASSERT_TRUE(writer.WaitCaughtUp(std::chrono::seconds(10)));
  writer.Stop(std::chrono::seconds(1));
  auto lines = out.RawLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"pod_name\":\"a\""), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1].rfind(FormatRfc3339Micros(clock.now) + " CREATED team-b/c node=n1 ", 0), 0u)
      << lines[1];
  EXPECT_NE(lines[1].find(" images=nginx:1.27 cluster=prod id="), std::string::npos) << lines[1];
}

TEST(LogTextTest, QuotesWhatIsNotOneWordAndNamesImages) {
  std::string line =
      R"({"event":"IMAGE_ADDED","timestamp":"t","image":"nginx:1.27","digest":"sha256:x",)"
      R"("namespace":"ns","pod_name":"we ird\n\"pod"})";
  EXPECT_EQ(UnifiedLogTextLine(7, "", line),
            "t IMAGE_ADDED \"ns/we ird\\n\\\"pod\" image=nginx:1.27 digest=sha256:x id=7\n");
  EXPECT_EQ(UnifiedLogTextLine(8, "", "not json"), "unreadable line id=8\n");
}

}  // namespace
}  // namespace ashiato
