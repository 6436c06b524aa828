#include "aggregator/state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "aggregator/query.h"
#include "aggregator/test_util.h"

namespace ashiato {
namespace {

using nlohmann::json;
using testutil::Del;
using testutil::FakeClock;
using testutil::MakeReport;
using testutil::Pod;
using testutil::StoreLog;
using testutil::TempStore;
using testutil::Up;
using Events = std::vector<std::string>;

class RecordingObserver : public PodObserver {
 public:
  void OnPodPresent(const PodRecord& pod, SystemTime) override { seen.push_back("+" + pod.name); }
  void OnPodGone(const PodRecord& pod, SystemTime) override { seen.push_back("-" + pod.name); }
  std::vector<std::string> seen;
};

// GET `path` with `query` on a QueryApi over `state`; the body as JSON
// (with "_status" added).
json Get(ClusterState& state, const std::string& path,
         std::map<std::string, std::string> query = {}) {
  QueryApi api(QueryOptions{}, &state, &state.store());
  HttpRequest req;
  req.method = "GET";
  req.path = path;
  req.query = std::move(query);
  HttpResponse r;
  if (path.rfind("/v1/pods/", 0) == 0) {
    r = api.PodByName(req, path.substr(9));
  } else if (path.rfind("/v1/ips/", 0) == 0) {
    r = api.Ip(req, path.substr(8));
  } else if (path == "/v1/history") {
    r = api.History(req);
  } else if (path == "/v1/placements") {
    r = api.Placements(req);
  } else if (path.rfind("/v1/images/", 0) == 0) {
    r = api.Image(req, path.substr(11));
  } else {
    r = api.Images(req);
  }
  json j = json::parse(r.body);
  j["_status"] = r.status;
  return j;
}

std::string At(SystemTime t) { return FormatRfc3339Micros(t); }

class StateTest : public ::testing::Test {
 protected:
  StateTest() : log_(store_.get()), state_(StateOptions{}, store_.get(), nullptr, &clock_) {
    EXPECT_TRUE(state_.Open().ok());
  }
  FakeClock clock_;
  TempStore store_;
  StoreLog log_;
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
  json j = Get(state_, "/v1/pods/default/web-0");
  EXPECT_EQ(j["uids"].size(), 2u);
  EXPECT_EQ(j["current"]["node_name"], "n2");
  EXPECT_EQ(j["uids"][0]["history"].size(), 2u);
  EXPECT_EQ(j["uids"][0]["placements"][0]["node_name"], "n1");
  EXPECT_FALSE(j["uids"][0]["placements"][0]["to"].is_null());
  EXPECT_TRUE(j["uids"][1]["placements"][0]["to"].is_null());
  EXPECT_EQ(Get(state_, "/v1/pods/default/nope")["_status"], 404);
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
    auto j = Get(state_, "/v1/ips/10.0.0.7", {{"at", At(t0 + s)}});
    if (j["holders"].empty()) return "";
    return j["holders"][0]["pod_name"];
  };
  EXPECT_EQ(holder(std::chrono::seconds(30)), "a");
  EXPECT_EQ(holder(std::chrono::seconds(75)), "");
  EXPECT_EQ(holder(std::chrono::seconds(120)), "b");
  EXPECT_EQ(holder(std::chrono::seconds(-5)), "");
  EXPECT_EQ(Get(state_, "/v1/ips/10.0.0.7")["holders"][0]["pod_name"], "b");
}

TEST_F(StateTest, SnapshotLeaseStartsWhenThePodStarted) {
  clock_.now = *ParseRfc3339("2026-11-24T04:00:00Z");
  // A pod first seen in a snapshot got its IP when it started (its first
  // condition after scheduling), not when the report arrived.
  PodRecord p = Pod("a", "n1", "10", "10.0.0.8");
  p.conditions = {{"PodScheduled", "True", "2026-11-24T02:59:00Z"},
                  {"Initialized", "True", "2026-11-24T03:00:05Z"},
                  {"Ready", "True", "2026-11-24T03:00:09Z"}};
  state_.Apply(MakeReport("n1", "e1", 1, {Up(p)}, true));
  json j = Get(state_, "/v1/ips/10.0.0.8", {{"at", "2026-11-24T03:00:06Z"}});
  ASSERT_EQ(j["holders"].size(), 1u);
  EXPECT_EQ(j["holders"][0]["from"], "2026-11-24T03:00:05.000000Z");
  EXPECT_TRUE(Get(state_, "/v1/ips/10.0.0.8", {{"at", "2026-11-24T03:00:04Z"}})["holders"].empty());
}

TEST_F(StateTest, ImagesAndPlacementsAtATime) {
  auto t0 = clock_.now;
  auto ms = [&](int s) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               (t0 + std::chrono::seconds(s)).time_since_epoch())
        .count();
  };
  PodRecord a = Pod("a", "n1", "10", "10.0.0.1");
  state_.Apply(MakeReport("n1", "e1", 1, {Up(a, ms(0))}));
  a.resource_version = "11";
  a.containers[0].image = "nginx:1.28";
  a.containers[0].image_id = "docker.io/library/nginx@sha256:new";
  state_.Apply(MakeReport("n1", "e1", 2, {Up(a, ms(60))}));
  state_.Apply(MakeReport("n1", "e1", 3, {Del(a, ms(120))}));
  auto images_at = [&](int s) {
    return Get(state_, "/v1/images", {{"at", At(t0 + std::chrono::seconds(s))}})["images"];
  };
  EXPECT_EQ(images_at(30)[0]["image"], "nginx:1.27");
  EXPECT_EQ(images_at(90)[0]["image"], "nginx:1.28");
  EXPECT_TRUE(images_at(150).empty());
  json usage = Get(state_, "/v1/images/docker.io/library/nginx@sha256:abc");
  ASSERT_EQ(usage["intervals"].size(), 1u);
  EXPECT_EQ(usage["intervals"][0]["to"], At(t0 + std::chrono::seconds(60)));
  json at =
      Get(state_, "/v1/placements", {{"node", "n1"}, {"at", At(t0 + std::chrono::seconds(100))}});
  ASSERT_EQ(at["placements"].size(), 1u);
  EXPECT_EQ(at["placements"][0]["pod_name"], "a");
  EXPECT_TRUE(Get(state_, "/v1/placements",
                  {{"node", "n1"}, {"at", At(t0 + std::chrono::seconds(130))}})["placements"]
                  .empty());
}

TEST_F(StateTest, HistoryPagesAreStableAndComplete) {
  for (int i = 0; i < 7; ++i) {
    state_.Apply(MakeReport("n1", "e1", i + 1, {Up(Pod("p" + std::to_string(i), "n1", "1"))}));
  }
  std::vector<std::string> names;
  std::string cont;
  int pages = 0;
  do {
    std::map<std::string, std::string> q = {{"limit", "3"}};
    if (!cont.empty()) q["continue"] = cont;
    json page = Get(state_, "/v1/history", q);
    ASSERT_EQ(page["_status"], 200);
    for (const auto& e : page["events"]) names.push_back(e["pod_name"]);
    cont = page.value("continue", "");
    ++pages;
  } while (!cont.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names, (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4", "p5", "p6"}));
  EXPECT_EQ(Get(state_, "/v1/history", {{"continue", "garbage"}})["_status"], 400);
}

TEST(StateRestartTest, RestartLogsNothingTwice) {
  FakeClock clock;
  TempStore store;
  {
    StoreLog log(store.get());
    ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
    ASSERT_TRUE(s.Open().ok());
    s.Apply(MakeReport("n1", "e1", 1,
                       {Up(Pod("a", "n1", "10", "10.0.0.1")), Up(Pod("b", "n1", "11"))}));
    s.Apply(MakeReport("n1", "e1", 2, {Del(Pod("b", "n1", "12"))}));
    s.Apply(MakeReport("n1", "e1", 3, {Up(Pod("a", "n1", "13", "10.0.0.2"))}));
    EXPECT_EQ(log.Events().size(), 4u);
  }  // "Killed": every acknowledged report was committed.
  for (int restart = 0; restart < 2; ++restart) {
    store.Reopen();
    StoreLog log(store.get());
    RecordingObserver obs;
    ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
    s.AddObserver(&obs);
    ASSERT_TRUE(s.Open().ok());
    EXPECT_EQ(obs.seen, (std::vector<std::string>{"+a"}));
    EXPECT_EQ(s.live_pods(), 1u);
    // Every agent re-sends its view after the aggregator comes back.
    s.Apply(MakeReport("n1", "e1", 4, {Up(Pod("a", "n1", "13", "10.0.0.2"))}, true));
    s.Apply(MakeReport("n1", "e1", 2, {Del(Pod("b", "n1", "12"))}));
    EXPECT_EQ(log.Events(), Events{}) << "restart " << restart;
    EXPECT_EQ(Get(s, "/v1/history")["events"].size(), 4u);
    EXPECT_EQ(Get(s, "/v1/ips/10.0.0.2")["holders"].size(), 1u);
    EXPECT_EQ(Get(s, "/v1/ips/10.0.0.1")["holders"].size(), 0u);
  }
  // A change made while the aggregator was down is logged exactly once.
  {
    store.Reopen();
    StoreLog log(store.get());
    ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
    ASSERT_TRUE(s.Open().ok());
    s.Apply(MakeReport("n1", "e2", 0, {Up(Pod("c", "n1", "20"))}, true));
    EXPECT_EQ(log.Events(), (Events{"SYNC default/c", "DELETED default/a"}));
  }
  store.Reopen();
  ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
  ASSERT_TRUE(s.Open().ok());
  EXPECT_EQ(s.live_pods(), 1u);
}

TEST(StateRestartTest, ReplayToAWipedStoreRecoversTheHour) {
  // The aggregator lost its volume; an agent replays what it retained
  // (a pod deleted meanwhile, with its original times) and its snapshot.
  FakeClock clock;
  clock.now = *ParseRfc3339("2026-11-24T04:00:00Z");  // Pods were created at 03:00.
  TempStore store;
  ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
  RecordingObserver obs;
  s.AddObserver(&obs);
  ASSERT_TRUE(s.Open().ok());
  StoreLog log(store.get());
  auto ms = [&](int sec) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               (clock.now - std::chrono::seconds(sec)).time_since_epoch())
        .count();
  };
  ApplyResult r = s.Apply(MakeReport(
      "n1", "e1", 7,
      {Del(Pod("gone", "n1", "30", "10.0.0.3"), ms(300)), Up(Pod("new", "n1", "31"), ms(200))}));
  EXPECT_EQ(r.committed_seq, 7u);
  s.Apply(MakeReport("n1", "e1", 8, {Up(Pod("new", "n1", "31")), Up(Pod("old", "n1", "5"))}, true));
  EXPECT_EQ(log.Events(),
            (Events{"DELETED default/gone", "CREATED default/new", "SYNC default/old"}));
  EXPECT_EQ(obs.seen, (std::vector<std::string>{"-gone", "+new", "+old"}));
  // The deleted pod held its IP until it was deleted.
  json ip = Get(s, "/v1/ips/10.0.0.3", {{"at", At(clock.now - std::chrono::seconds(400))}});
  ASSERT_EQ(ip["holders"].size(), 1u);
  EXPECT_EQ(ip["holders"][0]["pod_name"], "gone");
  EXPECT_TRUE(Get(s, "/v1/ips/10.0.0.3")["holders"].empty());
}

TEST(StateStoreFaultTest, FullDiskRefusesThenRecoversWithoutLoss) {
  FakeClock clock;
  TempStore store;
  ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
  ASSERT_TRUE(s.Open().ok());
  ASSERT_EQ(s.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "1"))})).outcome,
            ApplyOutcome::kApplied);
  // The disk fills up: no page beyond the file's current size.
  auto size = store->Size();
  ASSERT_TRUE(size.ok());
  store->SetMaxPageCountForTest(static_cast<int64_t>(size->bytes / 4096) + 1);
  StoreLog log(store.get());
  std::vector<ReportRecord> many;
  for (int i = 0; i < 300; ++i) {
    PodRecord p = Pod("big-" + std::to_string(i), "n1", "2");
    p.labels["filler"] = std::string(200, 'x');
    many.push_back(Up(p));
  }
  ApplyResult r = s.Apply(MakeReport("n1", "e1", 2, many));
  EXPECT_EQ(r.outcome, ApplyOutcome::kUnavailable);
  EXPECT_EQ(r.error.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(store->healthy());
  EXPECT_FALSE(s.accepting());
  EXPECT_EQ(s.Apply(MakeReport("n1", "e1", 3, {Up(Pod("c", "n1", "3"))})).outcome,
            ApplyOutcome::kUnavailable);
  EXPECT_EQ(s.live_pods(), 1u) << "the refused batch must not stay in the cache";
  // Reads keep working meanwhile.
  EXPECT_EQ(Get(s, "/v1/history")["events"].size(), 1u);
  EXPECT_EQ(s.Pods({})["count"], 1);
  s.CheckStore();  // Still full: still refusing.
  EXPECT_FALSE(s.accepting());
  // Space again: the next check recovers, and the agent's retry of seq 2
  // is applied in full.
  store->SetMaxPageCountForTest(0);
  s.CheckStore();
  EXPECT_TRUE(s.accepting());
  r = s.Apply(MakeReport("n1", "e1", 2, many));
  EXPECT_EQ(r.outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(r.applied, 300u);
  EXPECT_EQ(s.live_pods(), 301u);
  EXPECT_EQ(log.Events().size(), 300u);
}

// Holds the first commit's thread in the observer until `waiting` reports
// are queued behind it, so the test knows which reports share a commit.
class GateObserver : public PodObserver {
 public:
  explicit GateObserver(ClusterState* state, size_t waiting) : state_(state), waiting_(waiting) {}
  void OnPodPresent(const PodRecord&, SystemTime) override { Hold(); }
  void OnPodGone(const PodRecord&, SystemTime) override { Hold(); }
  std::function<void()> while_held;  // Runs once, with the queue full.

 private:
  void Hold() {
    if (held_) return;
    held_ = true;
    EXPECT_TRUE(testutil::WaitUntil([&] { return state_->reports_waiting() == waiting_ + 1; }))
        << "reports queued: " << state_->reports_waiting();
    if (while_held) while_held();
  }
  ClusterState* state_;
  size_t waiting_;
  bool held_ = false;
};

// Reports that arrive during a commit are committed together, in arrival
// order, and each gets its own answer.
TEST(StateGroupCommitTest, ReportsQueuedDuringACommitShareTheNext) {
  FakeClock clock;
  TempStore store;
  ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
  GateObserver gate(&s, 3);
  s.AddObserver(&gate);
  int commits = 0;
  s.SetCommitListener([&] { ++commits; });
  ASSERT_TRUE(s.Open().ok());
  StoreLog log(store.get());
  ApplyResult first;
  std::thread leader(
      [&] { first = s.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "1"))})); });
  ASSERT_TRUE(testutil::WaitUntil([&] { return s.reports_waiting() == 1; }));
  std::vector<ApplyResult> results(3);
  std::vector<std::thread> followers;
  followers.emplace_back(
      [&] { results[0] = s.Apply(MakeReport("n2", "e2", 1, {Up(Pod("b", "n2", "1"))})); });
  ASSERT_TRUE(testutil::WaitUntil([&] { return s.reports_waiting() == 2; }));
  followers.emplace_back([&] {
    results[1] = s.Apply(
        MakeReport("n2", "e2", 2, {Up(Pod("b", "n2", "2", "10.0.0.2")), Up(Pod("c", "n2", "1"))}));
  });
  ASSERT_TRUE(testutil::WaitUntil([&] { return s.reports_waiting() == 3; }));
  followers.emplace_back(
      [&] { results[2] = s.Apply(MakeReport("n2", "e2", 2, {Up(Pod("b", "n2", "2"))})); });
  leader.join();
  for (auto& t : followers) t.join();
  EXPECT_EQ(commits, 2) << "one commit for the leader, one for the three queued behind it";
  EXPECT_EQ(first.outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(first.events, 1u);
  EXPECT_EQ(results[0].outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(results[0].events, 1u);
  EXPECT_EQ(results[0].committed_seq, 1u);
  EXPECT_EQ(results[1].outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(results[1].applied, 2u);
  EXPECT_EQ(results[1].events, 2u);
  EXPECT_EQ(results[1].committed_seq, 2u);
  EXPECT_EQ(results[2].outcome, ApplyOutcome::kReplayed) << "a retry of seq 2, in the same group";
  EXPECT_EQ(results[2].committed_seq, 2u);
  EXPECT_EQ(log.Events(), (Events{"CREATED default/a", "CREATED default/b", "UPDATED default/b",
                                  "CREATED default/c"}));
  // The group's rows are in the store: a restart has the same state.
  ClusterState again(StateOptions{}, store.get(), nullptr, &clock);
  ASSERT_TRUE(again.Open().ok());
  EXPECT_EQ(again.live_pods(), 3u);
  EXPECT_EQ(again.Apply(MakeReport("n2", "e2", 2, {})).outcome, ApplyOutcome::kReplayed);
}

// A group whose commit fails refuses every report in it, the one answered
// as a replay of a report of the same group too (that report is not
// committed), and the agents' retries are then applied.
TEST(StateGroupCommitTest, AFailedGroupCommitRefusesEveryReportOfTheGroup) {
  FakeClock clock;
  TempStore store;
  ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
  GateObserver gate(&s, 2);
  s.AddObserver(&gate);
  ASSERT_TRUE(s.Open().ok());
  std::vector<ReportRecord> many;
  for (int i = 0; i < 300; ++i) {
    PodRecord p = Pod("big-" + std::to_string(i), "n2", "1");
    p.labels["filler"] = std::string(200, 'x');
    many.push_back(Up(p));
  }
  // While the first commit's thread is held, the disk fills up.
  gate.while_held = [&] {
    auto size = store->Size();
    ASSERT_TRUE(size.ok());
    store->SetMaxPageCountForTest(static_cast<int64_t>(size->bytes / 4096) + 1);
  };
  ApplyResult first;
  std::thread leader(
      [&] { first = s.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "1"))})); });
  ASSERT_TRUE(testutil::WaitUntil([&] { return s.reports_waiting() == 1; }));
  ApplyResult big, retry;
  std::thread t1([&] { big = s.Apply(MakeReport("n2", "e2", 1, many)); });
  ASSERT_TRUE(testutil::WaitUntil([&] { return s.reports_waiting() == 2; }));
  std::thread t2([&] { retry = s.Apply(MakeReport("n2", "e2", 1, many)); });
  leader.join();
  t1.join();
  t2.join();
  EXPECT_EQ(first.outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(big.outcome, ApplyOutcome::kUnavailable);
  EXPECT_EQ(retry.outcome, ApplyOutcome::kUnavailable)
      << "not kReplayed: the report it repeats was not committed";
  EXPECT_EQ(s.live_pods(), 1u) << "the refused group must not stay in the cache";
  store->SetMaxPageCountForTest(0);
  s.CheckStore();
  ASSERT_TRUE(s.accepting());
  ApplyResult again = s.Apply(MakeReport("n2", "e2", 1, many));
  EXPECT_EQ(again.outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(again.applied, 300u);
  EXPECT_EQ(s.live_pods(), 301u);
}

}  // namespace
}  // namespace ashiato

namespace ashiato {
namespace {

PodRecord PodIn(const std::string& ns, const std::string& name, const std::string& rv,
                std::map<std::string, std::string> labels = {}) {
  PodRecord p = Pod(name, "n1", rv);
  p.namespace_ = ns;
  p.uid = "uid-" + ns + "-" + name;
  if (!labels.empty()) p.labels = std::move(labels);
  return p;
}

PodScope Namespaces(std::vector<std::string> include) {
  return *PodScope::Make(std::move(include), {}, "");
}

// The live configuration's scope (docs/live-config.md).
TEST(StateScopeTest, OutOfScopeLinesAreKeptNotPrintedAndEntrantsAreSynced) {
  FakeClock clock;
  TempStore store;
  {
    StoreLog log(store.get());
    RecordingObserver obs;
    ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
    s.AddObserver(&obs);
    ASSERT_TRUE(s.SetScope(Namespaces({"team-*"})).ok());  // Before Open: applied at Open.
    ASSERT_TRUE(s.Open().ok());
    s.Apply(MakeReport("n1", "e1", 1,
                       {Up(PodIn("team-a", "a", "10")), Up(PodIn("kube-system", "k", "11"))}));
    EXPECT_EQ(log.Printed(), (Events{"CREATED team-a/a"}));
    EXPECT_EQ(log.Events().size(), 2u) << "out-of-scope lines are kept for history";
    EXPECT_EQ(obs.seen, (std::vector<std::string>{"+a"}));

    // Widening: each live pod that enters is SYNC, once.
    ASSERT_TRUE(s.SetScope(Namespaces({"team-*", "*-system"})).ok());
    EXPECT_EQ(log.Printed(), (Events{"CREATED team-a/a", "SYNC kube-system/k"}));
    EXPECT_EQ(obs.seen, (std::vector<std::string>{"+a", "+k"}));
    ASSERT_TRUE(s.SetScope(Namespaces({"*-system", "team-*"})).ok());  // The same scope.
    EXPECT_EQ(log.Printed().size(), 2u);

    // Narrowing: nothing printed (not DELETED); the ConfigMaps stop carrying it.
    ASSERT_TRUE(s.SetScope(Namespaces({"team-*"})).ok());
    EXPECT_EQ(log.Printed().size(), 2u);
    EXPECT_EQ(obs.seen, (std::vector<std::string>{"+a", "+k", "-k"}));
    s.Apply(MakeReport("n1", "e1", 2, {Del(PodIn("kube-system", "k", "12"))}));
    s.Apply(MakeReport("n1", "e1", 3, {Up(PodIn("default", "d", "13"))}));
    EXPECT_EQ(log.Printed().size(), 2u);
    EXPECT_EQ(obs.seen.size(), 3u);
    EXPECT_EQ(log.Events().size(), 5u);
    EXPECT_EQ(s.scope().Canonical(), Namespaces({"team-*"}).Canonical());
  }
  // Restarted with the same scope: nothing to do.
  {
    store.Reopen();
    StoreLog log(store.get());
    RecordingObserver obs;
    ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
    s.AddObserver(&obs);
    ASSERT_TRUE(s.SetScope(Namespaces({"team-*"})).ok());
    ASSERT_TRUE(s.Open().ok());
    EXPECT_EQ(obs.seen, (std::vector<std::string>{"+a"}));
    EXPECT_EQ(log.Events(), Events{});
  }
  // Restarted without a live configuration (everything in scope): the scope
  // in force was stored, so the pod that entered while we were down is SYNC.
  store.Reopen();
  StoreLog log(store.get());
  ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
  ASSERT_TRUE(s.Open().ok());
  EXPECT_EQ(log.Printed(), (Events{"SYNC default/d"}));
  EXPECT_TRUE(s.scope().everything());
}

// An agent whose captureAnnotations changed relists and sends the pods it
// now sees differently as changes at the same resourceVersion.
TEST(StateScopeTest, SameVersionWithNewlyCapturedAnnotationsIsAnUpdate) {
  FakeClock clock;
  TempStore store;
  StoreLog log(store.get());
  ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
  ASSERT_TRUE(s.Open().ok());
  PodRecord p = PodIn("team-a", "a", "10");
  s.Apply(MakeReport("n1", "e1", 1, {Up(p)}));
  p.annotations = {{"example.com/team", "a"}};
  s.Apply(MakeReport("n1", "e1", 2, {Up(p)}, /*snapshot=*/true));  // Snapshots are not compared.
  EXPECT_EQ(log.Printed(), (Events{"CREATED team-a/a"}));
  ApplyResult r = s.Apply(MakeReport("n1", "e1", 3, {Up(p)}));
  EXPECT_EQ(r.applied, 1u);
  r = s.Apply(MakeReport("n1", "e1", 4, {Up(p)}));  // Now the same: a duplicate.
  EXPECT_EQ(r.duplicate, 1u);
  EXPECT_EQ(log.Printed(), (Events{"CREATED team-a/a", "UPDATED team-a/a"}));
  EXPECT_EQ(log.Lines().back()["annotations"]["example.com/team"], "a");
}

TEST(StateScopeTest, ALabelChangeTakesAPodOutOfScope) {
  FakeClock clock;
  TempStore store;
  StoreLog log(store.get());
  RecordingObserver obs;
  ClusterState s(StateOptions{}, store.get(), nullptr, &clock);
  s.AddObserver(&obs);
  ASSERT_TRUE(s.Open().ok());
  ASSERT_TRUE(s.SetScope(*PodScope::Make({}, {}, "tier=web")).ok());
  s.Apply(MakeReport("n1", "e1", 1, {Up(PodIn("team-a", "w", "10", {{"tier", "web"}}))}));
  s.Apply(MakeReport("n1", "e1", 2, {Up(PodIn("team-a", "w", "11", {{"tier", "batch"}}))}));
  EXPECT_EQ(log.Printed(), (Events{"CREATED team-a/w"}));
  EXPECT_EQ(obs.seen, (std::vector<std::string>{"+w", "-w"}));
}

}  // namespace
}  // namespace ashiato
