// Agent + Reflector against FakePodApi: the event sequences users see.
#include "agent/agent.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <thread>

#include "agent/fake_pod_api.h"
#include "agent/recording_sink.h"
#include "agent/stdout_sink.h"

namespace ashiato {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

bool WaitFor(const std::function<bool()>& pred,
             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

AgentOptions TestOptions() {
  AgentOptions o;
  o.node = "node-2";
  o.backoff_initial = std::chrono::milliseconds(10);
  o.backoff_max = std::chrono::milliseconds(50);
  return o;
}

// Runs an Agent on its own thread for the scope of a test.
class RunningAgent {
 public:
  RunningAgent(const AgentOptions& o, FakePodApi* api, RecordingSink* sink,
               AgentMetrics* metrics = nullptr)
      : agent_(o, api, {sink}, metrics) {
    thread_ = std::thread([this] { status_ = agent_.Run(); });
  }
  ~RunningAgent() { StopAndJoin(); }
  void StopAndJoin() {
    agent_.Stop();
    if (thread_.joinable()) thread_.join();
  }
  Agent& agent() { return agent_; }

 private:
  Agent agent_;
  std::thread thread_;
  Status status_;
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.Create(FakePodApi::MakePod("default", "a", "node-2", "10.0.0.1"));
    api_.Create(FakePodApi::MakePod("default", "other", "node-1", "10.0.1.1"));
    api_.Create(FakePodApi::MakePod("kube-system", "b", "node-2", "10.0.0.2"));
  }
  // Waits until the agent has a watch open again after `watches` watches.
  bool WatchingAfter(int watches) {
    return WaitFor([&] { return api_.WatchCount() > watches && api_.OpenWatches() == 1; });
  }

  FakePodApi api_;
  RecordingSink sink_;
};

TEST_F(AgentTest, InitialListIsSyncThenWatchFromListVersion) {
  RunningAgent agent(TestOptions(), &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC b"));
  EXPECT_THAT(sink_.snapshots(), ElementsAre(2u));
  auto q = api_.Queries();
  ASSERT_GE(q.size(), 2u);
  EXPECT_EQ(q[0], "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-2&resourceVersion=0");
  EXPECT_THAT(q[1], HasSubstr("/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=103&"
                              "timeoutSeconds="));
  EXPECT_THAT(q[1], HasSubstr("&fieldSelector=spec.nodeName%3Dnode-2"));
  int timeout = std::stoi(q[1].substr(q[1].find("timeoutSeconds=") + 15));
  EXPECT_GE(timeout, 300);
  EXPECT_LE(timeout, 600);
}

TEST_F(AgentTest, CreateUpdateDeleteExactlyOnceEach) {
  RunningAgent agent(TestOptions(), &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  api_.Create(FakePodApi::MakePod("default", "c", "node-2", ""));
  api_.Create(FakePodApi::MakePod("default", "elsewhere", "node-3"));          // Not ours.
  api_.Modify("c", [](json& p) { p["metadata"]["annotations"]["x"] = "1"; });  // RV bump only.
  api_.Modify("c", [](json& p) { p["status"]["podIP"] = "10.0.0.9"; });
  api_.Modify("c", [](json& p) { p["status"]["podIP"] = "10.0.0.9"; });  // Same again.
  api_.Modify("c", [](json& p) {
    p["status"]["containerStatuses"] = json::array({{{"name", "c"}, {"imageID", "img@sha256:1"}}});
  });
  api_.Modify("c", [](json& p) { p["metadata"]["deletionTimestamp"] = "2026-11-24T05:00:00Z"; });
  api_.Delete("c");
  // One watch stream delivers in order: once the sentinel is in, anything
  // extra that the changes above caused is in too.
  api_.Create(FakePodApi::MakePod("default", "sentinel", "node-2"));
  ASSERT_TRUE(WaitFor([&] { return sink_.events().size() >= 8; }));
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC b", "CREATED c", "UPDATED c", "UPDATED c",
                                          "UPDATED c", "DELETED c", "CREATED sentinel"));
  auto records = sink_.records();
  EXPECT_EQ(records[3].pod_ip, "10.0.0.9");
  EXPECT_EQ(records[4].containers[0].image_id, "img@sha256:1");
  EXPECT_EQ(records[5].deletion_timestamp, "2026-11-24T05:00:00Z");
  EXPECT_EQ(agent.agent().PodCount(), 3u);  // a, b and the sentinel.
}

TEST_F(AgentTest, DroppedWatchResumesFromLastVersionWithoutDuplicates) {
  RunningAgent agent(TestOptions(), &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  api_.Create(FakePodApi::MakePod("default", "c", "node-2"));
  ASSERT_TRUE(WaitFor([&] { return sink_.events().size() == 3; }));
  api_.DropWatches();
  ASSERT_TRUE(WatchingAfter(1));
  api_.Create(FakePodApi::MakePod("default", "d", "node-2"));
  ASSERT_TRUE(WaitFor([&] { return sink_.events().size() == 4; }));
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC b", "CREATED c", "CREATED d"));
  EXPECT_EQ(api_.ListCount(), 1);  // Re-watched, not re-listed.
  auto q = api_.Queries();
  EXPECT_THAT(q[2], HasSubstr("resourceVersion=104"));  // After c.
}

// The watch goes away; meanwhile a pod is deleted, one created, one changed,
// and the server compacts its history, so the watch resumes into a 410.
// Returns the lists the agent made after its first one.
std::vector<std::string> ExpiredWithDeletionInGap(FakePodApi& api, RecordingSink& sink,
                                                  bool as_event, int list_at_rv_status = 0) {
  api.set_expired_as_event(as_event);
  api.set_list_at_rv_status(list_at_rv_status);
  AgentMetrics metrics;
  RunningAgent agent(TestOptions(), &api, &sink, &metrics);
  EXPECT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  api.FailNext(1000, 503);
  api.DropWatches();
  EXPECT_TRUE(WaitFor([&] { return api.WatchCount() >= 3; }));
  api.Delete("a");
  api.Create(FakePodApi::MakePod("default", "c", "node-2"));
  api.Modify("b", [](json& p) { p["status"]["phase"] = "Failed"; });
  api.Compact();
  int lists = api.ListCount();
  api.FailNext(0, 0);
  EXPECT_TRUE(WaitFor([&] { return api.ListCount() > lists && agent.agent().Ready(); }));
  EXPECT_TRUE(WaitFor([&] { return sink.events().size() >= 5; }));
  EXPECT_THAT(sink.events(),
              ElementsAre("SYNC a", "SYNC b", "DELETED a", "CREATED c", "UPDATED b"));
  EXPECT_THAT(metrics.Serialize(), HasSubstr("ashiato_agent_relists_total 1"));
  // And the agent goes on watching: a later change is seen once.
  api.Create(FakePodApi::MakePod("default", "d", "node-2"));
  EXPECT_TRUE(WaitFor([&] { return sink.events().size() == 6; }));
  EXPECT_EQ(sink.events().back(), "CREATED d");
  std::vector<std::string> relists;
  for (const auto& q : api.Queries()) {
    if (q.find("watch=1") == std::string::npos) relists.push_back(q);
  }
  if (!relists.empty()) relists.erase(relists.begin());
  return relists;
}

const char kNodeList[] = "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-2";

TEST_F(AgentTest, ExpiredErrorEventRelistsAtLastVersionFromCache) {
  // client-go's relistResourceVersion: the last RV seen (103, the first
  // list's), without limit, so the watch cache answers and etcd is spared.
  EXPECT_THAT(ExpiredWithDeletionInGap(api_, sink_, /*as_event=*/true),
              ElementsAre(std::string(kNodeList) + "&resourceVersion=103"));
}

TEST_F(AgentTest, ExpiredHttp410RelistsAtLastVersionFromCache) {
  EXPECT_THAT(ExpiredWithDeletionInGap(api_, sink_, /*as_event=*/false),
              ElementsAre(std::string(kNodeList) + "&resourceVersion=103"));
}

TEST_F(AgentTest, RelistFallsBackToQuorumWhenListAtVersionExpired) {
  EXPECT_THAT(ExpiredWithDeletionInGap(api_, sink_, /*as_event=*/true, /*list_at_rv_status=*/410),
              ElementsAre(std::string(kNodeList) + "&resourceVersion=103",
                          std::string(kNodeList) + "&limit=500"));
}

TEST_F(AgentTest, RelistFallsBackToQuorumWhenVersionTooLargeForCache) {
  EXPECT_THAT(ExpiredWithDeletionInGap(api_, sink_, /*as_event=*/true, /*list_at_rv_status=*/504),
              ElementsAre(std::string(kNodeList) + "&resourceVersion=103",
                          std::string(kNodeList) + "&limit=500"));
}

TEST_F(AgentTest, ServerErrorsBackOffThenRecover) {
  api_.FailNext(3, 500);
  AgentMetrics metrics;
  RunningAgent agent(TestOptions(), &api_, &sink_, &metrics);
  ASSERT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  EXPECT_EQ(api_.ListCount(), 4);
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC b"));
  EXPECT_THAT(metrics.Serialize(), HasSubstr("ashiato_agent_api_errors_total{code=\"500\"} 3"));
  // Errors on the watch: re-watch from the last RV, nothing re-emitted.
  api_.FailNext(2, 500);
  api_.DropWatches();
  api_.Create(FakePodApi::MakePod("default", "c", "node-2"));
  ASSERT_TRUE(WaitFor([&] { return sink_.events().size() == 3; }));
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC b", "CREATED c"));
  EXPECT_EQ(api_.ListCount(), 4);
}

TEST_F(AgentTest, HonoursRetryAfter) {
  api_.FailNext(1, 429, /*retry_after_seconds=*/1);
  auto start = std::chrono::steady_clock::now();
  RunningAgent agent(TestOptions(), &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(950));
  EXPECT_EQ(api_.ListCount(), 2);
}

TEST_F(AgentTest, FiltersApplyToListAndWatch) {
  AgentOptions o = TestOptions();
  o.namespaces = {"*-system"};
  o.name_prefix = "b";
  RunningAgent agent(o, &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  api_.Create(FakePodApi::MakePod("default", "b2", "node-2"));
  api_.Create(FakePodApi::MakePod("kube-system", "x", "node-2"));
  api_.Create(FakePodApi::MakePod("kube-system", "b3", "node-2"));
  api_.Create(FakePodApi::MakePod("kube-system", "b-sentinel", "node-2"));  // In order, last.
  ASSERT_TRUE(WaitFor([&] { return sink_.events().size() >= 3; }));
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC b", "CREATED b3", "CREATED b-sentinel"));
}

TEST_F(AgentTest, LabelSelectorSentToServer) {
  AgentOptions o = TestOptions();
  o.label_selector = "app in (a,b)";
  RunningAgent agent(o, &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  for (const auto& q : api_.Queries()) {
    EXPECT_THAT(q, HasSubstr("labelSelector=app%20in%20%28a%2Cb%29"));
    EXPECT_THAT(q, HasSubstr("fieldSelector=spec.nodeName%3Dnode-2"));
  }
}

TEST_F(AgentTest, IntervalDeliversSnapshots) {
  AgentOptions o = TestOptions();
  o.interval = std::chrono::milliseconds(30);
  RunningAgent agent(o, &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return sink_.snapshots().size() >= 3; }));
  for (size_t n : sink_.snapshots()) EXPECT_EQ(n, 2u);
}

TEST_F(AgentTest, StopIsPromptAndFlushReachesSinks) {
  auto agent = std::make_unique<RunningAgent>(TestOptions(), &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return agent->agent().Ready(); }));
  auto start = std::chrono::steady_clock::now();
  agent->StopAndJoin();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(agent->agent().Flush(std::chrono::seconds(1)).ok());
  EXPECT_EQ(sink_.flushes(), 1);
}

TEST_F(AgentTest, OneshotListsOnceAndFlushes) {
  AgentOptions o = TestOptions();
  o.oneshot = true;
  Agent agent(o, &api_, {&sink_}, nullptr);
  ASSERT_TRUE(agent.RunOneshot().ok());
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC b"));
  EXPECT_THAT(sink_.snapshots(), ElementsAre(2u));
  EXPECT_EQ(sink_.flushes(), 1);
  EXPECT_EQ(api_.WatchCount(), 0);

  FakePodApi down;
  down.FailNext(1, 503);
  RecordingSink none;
  Agent failing(o, &down, {&none}, nullptr);
  Status s = failing.RunOneshot();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(none.events().empty());
}

TEST_F(AgentTest, ContinuousModeRefusesToWatchWithoutNode) {
  AgentOptions o = TestOptions();
  o.all_nodes = true;
  Agent agent(o, &api_, {&sink_}, nullptr);
  EXPECT_EQ(agent.Run().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(api_.Queries().empty());
}

TEST_F(AgentTest, OneshotAllNodesHasNoFieldSelector) {
  AgentOptions o = TestOptions();
  o.oneshot = true;
  o.all_nodes = true;
  o.node = "";
  Agent agent(o, &api_, {&sink_}, nullptr);
  ASSERT_TRUE(agent.RunOneshot().ok());
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC other", "SYNC b"));
}

// Standalone mode: one process may watch the whole cluster; no field selector.
TEST_F(AgentTest, StandaloneWatchesEveryNode) {
  AgentOptions o = TestOptions();
  o.node = "";
  o.standalone = true;
  RunningAgent agent(o, &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return agent.agent().Ready(); }));
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC other", "SYNC b"));
  api_.Create(FakePodApi::MakePod("default", "c", "node-3", "10.0.3.1"));
  ASSERT_TRUE(WaitFor([&] { return sink_.events().size() == 4; }));
  EXPECT_EQ(sink_.events().back(), "CREATED c");
  for (const auto& q : api_.Queries()) EXPECT_THAT(q, ::testing::Not(HasSubstr("fieldSelector")));
}

// --log-all-every hands the whole view to the sinks, apart from the events.
TEST_F(AgentTest, LogAllEveryHandsTheViewToTheSinks) {
  AgentOptions o = TestOptions();
  o.log_all_every = std::chrono::milliseconds(20);
  RunningAgent agent(o, &api_, &sink_);
  ASSERT_TRUE(WaitFor([&] { return sink_.log_all().size() >= 2; }));
  api_.Create(FakePodApi::MakePod("default", "c", "node-2", "10.0.0.3"));
  ASSERT_TRUE(WaitFor([&] { return !sink_.log_all().empty() && sink_.log_all().back() == 3u; }));
  agent.StopAndJoin();
  for (size_t n : sink_.log_all()) EXPECT_TRUE(n == 2u || n == 3u) << n;
  EXPECT_THAT(sink_.events(), ElementsAre("SYNC a", "SYNC b", "CREATED c"));
}

TEST(StdoutSinkTest, LogAllPrintsOnePeriodicLinePerPodWithOneTimestamp) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  StdoutSink sink(out);
  std::vector<PodRecord> all = {
      PodRecordFromPodJson(FakePodApi::MakePod("default", "a", "node-2")),
      PodRecordFromPodJson(FakePodApi::MakePod("kube-system", "b", "node-2"))};
  sink.OnLogAll(all);
  fclose(out);
  std::stringstream lines{std::string(buf, len)};
  free(buf);
  std::vector<json> got;
  for (std::string l; std::getline(lines, l);) got.push_back(json::parse(l));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["event"], "PERIODIC");
  EXPECT_EQ(got[1]["event"], "PERIODIC");
  EXPECT_EQ(got[0]["pod_name"], "a");
  EXPECT_EQ(got[1]["namespace"], "kube-system");
  EXPECT_EQ(got[0]["timestamp"], got[1]["timestamp"]);
}

TEST(StdoutSinkTest, LineFormat) {
  PodRecord r = PodRecordFromPodJson(FakePodApi::MakePod("default", "a", "node-2"));
  std::string line = FormatEventLine(
      "CREATED", r, std::chrono::system_clock::time_point(std::chrono::microseconds(1234567)));
  EXPECT_EQ(line.rfind(R"({"event":"CREATED","timestamp":"1970-01-01T00:00:01.234567Z",)", 0), 0u);
  json j = json::parse(line);
  EXPECT_EQ(j["pod_name"], "a");
  EXPECT_EQ(j["node_name"], "node-2");
  EXPECT_TRUE(PodRecordFromLogJson(j).SameObservableState(r));
}

}  // namespace
}  // namespace ashiato
