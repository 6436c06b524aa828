// Reflector against FakePodApi: which resourceVersion each (re)list asks for.
#include "agent/reflector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "agent/fake_pod_api.h"
#include "tests/testing/subprocess.h"

namespace ashiato {
namespace {

using ::testing::ElementsAre;

// Counts what the reflector reports; lists and watch openings are observed.
class CountingHandler : public ReflectorHandler {
 public:
  void OnList(const std::vector<PodRecord>& pods) override {
    (void)pods;
    ++lists;
  }
  void OnWatchEvent(const std::string& type, const PodRecord& pod) override {
    (void)type;
    (void)pod;
    ++events;
  }
  void OnWatchState(bool open) override {
    if (open) ++watches_opened;
  }
  std::atomic<int> lists{0}, events{0}, watches_opened{0};
};

bool WaitFor(const std::function<bool()>& pred) {
  return ashiato::testing::WaitFor(pred, std::chrono::seconds(10));
}

ReflectorOptions Options() {
  ReflectorOptions o;
  o.node = "node-2";
  o.backoff.initial = std::chrono::milliseconds(10);
  o.backoff.max = std::chrono::milliseconds(50);
  o.seed = 7;
  return o;
}

// Runs a Reflector on its own thread for the scope of a test.
class RunningReflector {
 public:
  RunningReflector(ReflectorOptions o, FakePodApi* api, CountingHandler* handler)
      : reflector_(std::move(o), api, handler) {
    thread_ = std::thread([this] { (void)reflector_.Run(); });
  }
  ~RunningReflector() {
    reflector_.Stop();
    thread_.join();
  }
  Reflector& reflector() { return reflector_; }

 private:
  Reflector reflector_;
  std::thread thread_;
};

class ReflectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.Create(FakePodApi::MakePod("default", "a", "node-2"));  // RV 101.
  }
  // The list queries sent so far (watches left out).
  std::vector<std::string> Lists() {
    std::vector<std::string> out;
    for (const auto& q : api_.Queries()) {
      if (q.find("watch=1") == std::string::npos) out.push_back(q);
    }
    return out;
  }
  // Makes the open watch end in 410: a change it misses, then compaction.
  void ExpireWatch(CountingHandler& h, int lists_before) {
    int opened = h.watches_opened;
    api_.FailNext(1000, 503);
    api_.DropWatches();
    ASSERT_TRUE(WaitFor([&] { return api_.WatchCount() >= opened + 2; }));
    api_.Create(FakePodApi::MakePod("default", "n" + std::to_string(lists_before), "node-2"));
    api_.Compact();
    api_.FailNext(0, 0);
    ASSERT_TRUE(WaitFor([&] { return h.lists > lists_before && api_.OpenWatches() == 1; }));
  }

  FakePodApi api_;
};

const char kList[] = "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-2";

TEST_F(ReflectorTest, FirstListIsAnyVersionFromCache) {
  CountingHandler h;
  Reflector r(Options(), &api_, &h);
  EXPECT_EQ(r.RelistResourceVersion(), "0");
}

TEST_F(ReflectorTest, FirstListWithQuorumListIsFromEtcd) {
  CountingHandler h;
  ReflectorOptions o = Options();
  o.quorum_list = true;
  Reflector r(o, &api_, &h);
  EXPECT_EQ(r.RelistResourceVersion(), "");
}

TEST_F(ReflectorTest, RelistAfterExpiredWatchIsAtLastSeenVersion) {
  CountingHandler h;
  RunningReflector r(Options(), &api_, &h);
  ASSERT_TRUE(WaitFor([&] { return h.lists == 1 && api_.OpenWatches() == 1; }));
  ExpireWatch(h, 1);  // Creates RV 102 while the watch is down.
  ExpireWatch(h, 2);  // Second time: the list of the first relist said 102.
  EXPECT_THAT(Lists(), ElementsAre(std::string(kList) + "&resourceVersion=0",
                                   std::string(kList) + "&resourceVersion=101",
                                   std::string(kList) + "&resourceVersion=102"));
}

TEST_F(ReflectorTest, FallbackToQuorumLastsOneList) {
  // A list at the RV answered 410: quorum at once, no backoff; the next
  // relist tries the watch cache again.
  api_.set_list_at_rv_status(410);
  CountingHandler h;
  RunningReflector r(Options(), &api_, &h);
  ASSERT_TRUE(WaitFor([&] { return h.lists == 1 && api_.OpenWatches() == 1; }));
  ExpireWatch(h, 1);
  api_.set_list_at_rv_status(0);
  ExpireWatch(h, 2);
  EXPECT_THAT(Lists(), ElementsAre(std::string(kList) + "&resourceVersion=0",
                                   std::string(kList) + "&resourceVersion=101",
                                   std::string(kList) + "&limit=500",
                                   std::string(kList) + "&resourceVersion=102"));
}

TEST_F(ReflectorTest, OldBehaviourSwitchRelistsFromEtcd) {
  ReflectorOptions o = Options();
  o.relist_from_cache = false;
  CountingHandler h;
  RunningReflector r(o, &api_, &h);
  ASSERT_TRUE(WaitFor([&] { return h.lists == 1 && api_.OpenWatches() == 1; }));
  ExpireWatch(h, 1);
  EXPECT_THAT(Lists(), ElementsAre(std::string(kList) + "&resourceVersion=0",
                                   std::string(kList) + "&limit=500"));
}

// The live configuration's captureAnnotations: the running watch ends, the
// reflector relists from the watch cache, and the listed records carry the
// newly captured annotation; the watch opens again and still works.
TEST_F(ReflectorTest, NewAnnotationCaptureRelistsFromTheCache) {
  api_.Modify("a", [](nlohmann::json& pod) {
    pod["metadata"]["annotations"] = {{"example.com/team", "a"}, {"other", "x"}};
  });  // RV 102.
  struct Handler : CountingHandler {
    void OnList(const std::vector<PodRecord>& pods) override {
      std::lock_guard<std::mutex> l(mu);
      last = pods;
      CountingHandler::OnList(pods);
    }
    std::mutex mu;
    std::vector<PodRecord> last;
  } h;
  RunningReflector r(Options(), &api_, &h);
  ASSERT_TRUE(WaitFor([&] { return h.lists == 1 && api_.OpenWatches() == 1; }));
  {
    std::lock_guard<std::mutex> l(h.mu);
    ASSERT_EQ(h.last.size(), 1u);
    EXPECT_TRUE(h.last[0].annotations.empty());
  }
  r.reflector().SetAnnotationCapture(*AnnotationCapture::Parse({"example.com/*"}));
  ASSERT_TRUE(WaitFor([&] { return h.lists == 2 && api_.OpenWatches() == 1; }));
  {
    std::lock_guard<std::mutex> l(h.mu);
    ASSERT_EQ(h.last.size(), 1u);
    EXPECT_EQ(h.last[0].annotations,
              (std::map<std::string, std::string>{{"example.com/team", "a"}}));
  }
  EXPECT_THAT(Lists(), ElementsAre(std::string(kList) + "&resourceVersion=0",
                                   std::string(kList) + "&resourceVersion=102"));
  int events = h.events;
  api_.Create(FakePodApi::MakePod("default", "b", "node-2"));
  EXPECT_TRUE(WaitFor([&] { return h.events > events; })) << "the watch after the relist";
}

TEST(IsResourceVersionUnavailableTest, ExpiredAndTooLargeOnly) {
  EXPECT_TRUE(IsResourceVersionUnavailable(Expired("too old resource version")));
  Status too_large = Unavailable("Timeout: Too large resource version: 9, current: 5");
  too_large.set_http_status(504);
  EXPECT_TRUE(IsResourceVersionUnavailable(too_large));
  Status timeout = Unavailable("Timeout: request did not complete");
  timeout.set_http_status(504);
  EXPECT_FALSE(IsResourceVersionUnavailable(timeout));
  Status server_error = Unavailable("HTTP 500");
  server_error.set_http_status(500);
  EXPECT_FALSE(IsResourceVersionUnavailable(server_error));
}

}  // namespace
}  // namespace ashiato
