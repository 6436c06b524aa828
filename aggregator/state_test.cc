#include "aggregator/state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "aggregator/test_util.h"

namespace ashiato {
namespace {

using testutil::Del;
using testutil::FakeClock;
using testutil::LogCapture;
using testutil::MakeReport;
using testutil::Pod;
using testutil::Up;
using Events = std::vector<std::string>;

class RecordingObserver : public PodObserver {
 public:
  void OnPodPresent(const PodRecord& pod, SystemTime) override { seen.push_back("+" + pod.name); }
  void OnPodGone(const PodRecord& pod, SystemTime) override { seen.push_back("-" + pod.name); }
  std::vector<std::string> seen;
};

class StateTest : public ::testing::Test {
 protected:
  StateTest() : state_(StateOptions{}, log_.file(), nullptr, &clock_) {
    EXPECT_TRUE(state_.Open().ok());
  }
  FakeClock clock_;
  LogCapture log_;
  ClusterState state_;
};

TEST_F(StateTest, CreateUpdateDeleteLoggedOnce) {
  state_.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}));
  state_.Apply(MakeReport("n1", "e1", 2, {Up(Pod("a", "n1", "11", "10.0.0.1"))}));
  state_.Apply(MakeReport("n1", "e1", 3, {Del(Pod("a", "n1", "12", "10.0.0.1"))}));
  EXPECT_EQ(log_.Events(), (Events{"CREATED default/a", "UPDATED default/a", "DELETED default/a"}));
  EXPECT_EQ(state_.live_pods(), 0u);
  auto lines = log_.Lines();
  EXPECT_EQ(lines[1]["pod_ip"], "10.0.0.1");
  EXPECT_EQ(lines[1]["observed_by"], "n1");
  EXPECT_TRUE(lines[1].contains("aggregated_at"));
  EXPECT_TRUE(lines[1].contains("timestamp"));
}

TEST_F(StateTest, ReplayedBatchIsIgnored) {
  Report r = MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))});
  EXPECT_EQ(state_.Apply(r).outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(state_.Apply(r).outcome, ApplyOutcome::kReplayed);
  EXPECT_EQ(log_.Events().size(), 1u);
}

TEST_F(StateTest, OlderOrSameVersionIsNotApplied) {
  state_.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "20", "10.0.0.1"))}));
  // A new agent process re-sends older and equal versions: nothing logged.
  ApplyResult r = state_.Apply(MakeReport(
      "n1", "e2", 1, {Up(Pod("a", "n1", "19", "10.0.0.9")), Up(Pod("a", "n1", "20", "10.0.0.1"))}));
  EXPECT_EQ(r.stale, 1u);
  EXPECT_EQ(r.duplicate, 1u);
  EXPECT_EQ(log_.Events().size(), 1u);
  auto pods = state_.Pods({});
  EXPECT_EQ(pods["pods"][0]["pod_ip"], "10.0.0.1");
}

TEST_F(StateTest, ResourceVersionBumpWithoutChangeIsSilent) {
  state_.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}));
  ApplyResult r = state_.Apply(MakeReport("n1", "e1", 2, {Up(Pod("a", "n1", "11"))}));
  EXPECT_EQ(r.applied, 0u);
  EXPECT_EQ(log_.Events().size(), 1u);
  auto j = state_.Pods({});
  EXPECT_EQ(j["pods"][0]["resource_version"], "11");
}

TEST_F(StateTest, SnapshotSyncsNewAndDeletesMissingOnce) {
  state_.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10")), Up(Pod("b", "n1", "11"))}));
  state_.Apply(MakeReport("n2", "f1", 1, {Up(Pod("z", "n2", "12"))}));
  // n1's snapshot: a unchanged, b gone, c new.
  Report snap =
      MakeReport("n1", "e1", 2, {Up(Pod("a", "n1", "10")), Up(Pod("c", "n1", "13"))}, true);
  state_.Apply(snap);
  snap.seq = 3;
  state_.Apply(snap);  // The next periodic snapshot: nothing new.
  EXPECT_EQ(log_.Events(), (Events{"CREATED default/a", "CREATED default/b", "CREATED default/z",
                                   "SYNC default/c", "DELETED default/b"}));
  EXPECT_EQ(state_.live_pods(), 3u);  // a, c on n1; z on n2 untouched.
}

TEST_F(StateTest, AgentRestartWithSnapshotLogsNothing) {
  state_.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10")), Up(Pod("b", "n1", "11"))}));
  state_.Apply(
      MakeReport("n1", "e2", 0, {Up(Pod("a", "n1", "10")), Up(Pod("b", "n1", "11"))}, true));
  EXPECT_EQ(log_.Events().size(), 2u);
}

TEST_F(StateTest, StaleEpochRejected) {
  state_.Apply(MakeReport("n1", "e1", 5, {Up(Pod("a", "n1", "10"))}));
  state_.Apply(MakeReport("n1", "e2", 0, {Up(Pod("a", "n1", "10"))}, true));
  // A late batch of the replaced process must not undo the newer state.
  ApplyResult r = state_.Apply(MakeReport("n1", "e1", 6, {}, true));
  EXPECT_EQ(r.outcome, ApplyOutcome::kStaleEpoch);
  EXPECT_EQ(state_.live_pods(), 1u);
}

TEST_F(StateTest, DeletedPodNotResurrectedByLateUpsert) {
  state_.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}));
  state_.Apply(MakeReport("n1", "e1", 2, {Del(Pod("a", "n1", "12"))}));
  state_.Apply(MakeReport("n1", "e2", 0, {Up(Pod("a", "n1", "11"))}));
  state_.Apply(MakeReport("n1", "e2", 1, {Del(Pod("a", "n1", "12"))}));
  EXPECT_EQ(log_.Events(), (Events{"CREATED default/a", "DELETED default/a"}));
}

TEST_F(StateTest, DeleteOfUnknownPodLoggedOnce) {
  state_.Apply(MakeReport("n1", "e1", 1, {Del(Pod("a", "n1", "10"))}));
  state_.Apply(MakeReport("n1", "e2", 1, {Del(Pod("a", "n1", "10"))}));
  EXPECT_EQ(log_.Events(), (Events{"DELETED default/a"}));
}

TEST_F(StateTest, MovedPodIsTwoPods) {
  state_.Apply(MakeReport("n1", "e1", 1, {Up(Pod("web-0", "n1", "10", "10.0.0.5"))}));
  state_.Apply(MakeReport("n1", "e1", 2, {Del(Pod("web-0", "n1", "11", "10.0.0.5"))}));
  PodRecord moved = Pod("web-0", "n2", "12", "10.0.1.5");
  moved.uid = "uid-web-0-b";
  state_.Apply(MakeReport("n2", "f1", 1, {Up(moved)}));
  auto j = state_.PodByName("default", "web-0");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ((*j)["uids"].size(), 2u);
  EXPECT_EQ((*j)["current"]["node_name"], "n2");
  EXPECT_EQ((*j)["uids"][0]["history"].size(), 2u);
  EXPECT_FALSE(state_.PodByName("default", "nope").has_value());
}

TEST_F(StateTest, QueriesFilter) {
  PodRecord a = Pod("a", "n1", "10", "10.0.0.1");
  a.labels = {{"app", "web"}, {"tier", "front"}};
  PodRecord b = Pod("b", "n2", "11", "10.0.0.2", "Pending");
  b.namespace_ = "kube-system";
  b.containers = {{"app", "nginx:1.27", "docker.io/library/nginx@sha256:def"},
                  {"side", "envoy:1", ""}};
  state_.Apply(MakeReport("n1", "e1", 1, {Up(a)}));
  state_.Apply(MakeReport("n2", "e1", 1, {Up(b)}));
  auto count = [&](PodQuery q) { return state_.Pods(q)["count"].get<size_t>(); };
  EXPECT_EQ(count({}), 2u);
  EXPECT_EQ(count({.node = "n2"}), 1u);
  EXPECT_EQ(count({.namespace_ = "kube-system"}), 1u);
  EXPECT_EQ(count({.ip = "10.0.0.1"}), 1u);
  EXPECT_EQ(count({.phase = "Pending"}), 1u);
  EXPECT_EQ(count({.selector = *LabelSelector::Parse("app=web,tier in (front,back)")}), 1u);
  EXPECT_EQ(count({.selector = *LabelSelector::Parse("app!=web")}), 1u);
  auto images = state_.Images();
  EXPECT_EQ(images["images"][0]["image"], "nginx:1.27");
  EXPECT_EQ(images["images"][0]["pods"], 2);
  EXPECT_EQ(images["images"][0]["digests"].size(), 2u);
  auto nodes = state_.Nodes();
  EXPECT_EQ(nodes["count"], 2);
  EXPECT_EQ(nodes["nodes"][0]["stale"], false);
  clock_.now += std::chrono::minutes(10);
  EXPECT_EQ(state_.Nodes()["nodes"][0]["stale"], true);
  EXPECT_EQ(state_.Pods({})["pods"][0]["stale"], true);
}

TEST_F(StateTest, IpAtTimeAcrossReuse) {
  auto t0 = clock_.now;
  auto ms = [&](std::chrono::seconds s) {
    return std::chrono::duration_cast<std::chrono::milliseconds>((t0 + s).time_since_epoch())
        .count();
  };
  state_.Apply(MakeReport("n1", "e1", 1,
                          {Up(Pod("a", "n1", "10", "10.0.0.7"), ms(std::chrono::seconds(0)))}));
  state_.Apply(MakeReport("n1", "e1", 2,
                          {Del(Pod("a", "n1", "11", "10.0.0.7"), ms(std::chrono::seconds(60)))}));
  state_.Apply(MakeReport("n1", "e1", 3,
                          {Up(Pod("b", "n1", "12", "10.0.0.7"), ms(std::chrono::seconds(90)))}));
  auto holder = [&](std::chrono::seconds s) -> std::string {
    auto j = state_.Ip("10.0.0.7", t0 + s);
    if (j["holders"].empty()) return "";
    return j["holders"][0]["pod_name"];
  };
  EXPECT_EQ(holder(std::chrono::seconds(30)), "a");
  EXPECT_EQ(holder(std::chrono::seconds(75)), "");
  EXPECT_EQ(holder(std::chrono::seconds(120)), "b");
  EXPECT_EQ(holder(std::chrono::seconds(-5)), "");
  EXPECT_EQ(state_.Ip("10.0.0.7", std::nullopt)["holders"][0]["pod_name"], "b");
}

TEST(StateHistoryTest, BoundedOldestDroppedAndCounted) {
  FakeClock clock;
  LogCapture log;
  StateOptions o;
  o.history_size = 3;
  ClusterState state(o, log.file(), nullptr, &clock);
  ASSERT_TRUE(state.Open().ok());
  for (int i = 0; i < 5; ++i) {
    state.Apply(MakeReport("n1", "e1", i + 1, {Up(Pod("p" + std::to_string(i), "n1", "1"))}));
  }
  auto h = state.History(std::nullopt, std::nullopt, 100);
  EXPECT_EQ(h["events"].size(), 3u);
  EXPECT_EQ(h["events"][0]["pod_name"], "p2");
  EXPECT_EQ(h["history_dropped"], 2);
  EXPECT_EQ(state.History(std::nullopt, std::nullopt, 2)["truncated"], true);
}

TEST(StateFileTest, RestartLogsNothingTwice) {
  char dir[] = "/tmp/ashiato-state-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  StateOptions o;
  o.state_file = std::string(dir) + "/state.jsonl";
  FakeClock clock;
  {
    LogCapture log;
    ClusterState s(o, log.file(), nullptr, &clock);
    ASSERT_TRUE(s.Open().ok());
    s.Apply(MakeReport("n1", "e1", 1,
                       {Up(Pod("a", "n1", "10", "10.0.0.1")), Up(Pod("b", "n1", "11"))}));
    s.Apply(MakeReport("n1", "e1", 2, {Del(Pod("b", "n1", "12"))}));
    s.Apply(MakeReport("n1", "e1", 3, {Up(Pod("a", "n1", "13", "10.0.0.2"))}));
    EXPECT_EQ(log.Events().size(), 4u);
  }  // "Killed": no Flush needed, the journal was appended as we went.
  for (int restart = 0; restart < 2; ++restart) {
    LogCapture log;
    RecordingObserver obs;
    ClusterState s(o, log.file(), nullptr, &clock);
    s.AddObserver(&obs);
    ASSERT_TRUE(s.Open().ok());
    EXPECT_EQ(obs.seen, (std::vector<std::string>{"+a"}));
    EXPECT_EQ(s.live_pods(), 1u);
    // Every agent re-sends its view after the aggregator comes back.
    s.Apply(MakeReport("n1", "e1", 4, {Up(Pod("a", "n1", "13", "10.0.0.2"))}, true));
    s.Apply(MakeReport("n1", "e1", 2, {Del(Pod("b", "n1", "12"))}));
    EXPECT_EQ(log.Events(), Events{}) << "restart " << restart;
    EXPECT_EQ(s.History(std::nullopt, std::nullopt, 100)["events"].size(), 4u);
    EXPECT_EQ(s.Ip("10.0.0.2", std::nullopt)["holders"].size(), 1u);
    EXPECT_EQ(s.Ip("10.0.0.1", std::nullopt)["holders"].size(), 0u);
  }
  // A change made while the aggregator was down is logged exactly once.
  {
    LogCapture log;
    ClusterState s(o, log.file(), nullptr, &clock);
    ASSERT_TRUE(s.Open().ok());
    s.Apply(MakeReport("n1", "e2", 0, {Up(Pod("c", "n1", "20"))}, true));
    EXPECT_EQ(log.Events(), (Events{"SYNC default/c", "DELETED default/a"}));
  }
  {
    LogCapture log;
    ClusterState s(o, log.file(), nullptr, &clock);
    ASSERT_TRUE(s.Open().ok());
    EXPECT_EQ(s.live_pods(), 1u);
  }
  std::remove(o.state_file.c_str());
  rmdir(dir);
}

TEST(StateFileTest, PartialLastLineIgnored) {
  char dir[] = "/tmp/ashiato-state-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  StateOptions o;
  o.state_file = std::string(dir) + "/state.jsonl";
  FakeClock clock;
  {
    LogCapture log;
    ClusterState s(o, log.file(), nullptr, &clock);
    ASSERT_TRUE(s.Open().ok());
    s.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}));
  }
  {
    std::FILE* f = std::fopen(o.state_file.c_str(), "a");
    std::fputs("{\"event\":\"CREATED\",\"uid\":\"x", f);  // Killed mid-write.
    std::fclose(f);
  }
  LogCapture log;
  ClusterState s(o, log.file(), nullptr, &clock);
  ASSERT_TRUE(s.Open().ok());
  EXPECT_EQ(s.live_pods(), 1u);
  s.Apply(MakeReport("n1", "e1", 2, {Up(Pod("b", "n1", "11"))}));
  EXPECT_EQ(log.Events(), (Events{"CREATED default/b"}));
  std::remove(o.state_file.c_str());
  std::remove((o.state_file + ".tmp").c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace ashiato
