#include "aggregator/image_census.h"

#include <gtest/gtest.h>

#include <memory>

#include "aggregator/log_writer.h"
#include "aggregator/query.h"
#include "aggregator/state.h"
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

int64_t Ms(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// "IMAGE_ADDED nginx:1.27 sha256:abc pods=1 nodes=1" for each image line.
std::vector<std::string> ImageLines(StoreLog& log) {
  std::vector<std::string> out;
  for (const auto& j : log.Lines()) {
    std::string ev = j["event"];
    if (ev.rfind("IMAGE_", 0) != 0) continue;
    out.push_back(ev + " " + j["image"].get<std::string>() + " " + j["digest"].get<std::string>() +
                  " pods=" + std::to_string(j["pods"].get<int>()) +
                  " nodes=" + std::to_string(j["nodes"].get<int>()));
  }
  return out;
}

PodRecord WithImage(PodRecord p, const std::string& image, const std::string& image_id) {
  p.containers = {{"app", image, image_id}};
  return p;
}

class ImageCensusTest : public ::testing::Test {
 protected:
  ImageCensusTest() : log_(store_.get()) { Restart(); }
  // A new aggregator process on the same store.
  void Restart() {
    state_.reset();
    census_ = std::make_unique<ImageCensus>();
    state_ = std::make_unique<ClusterState>(StateOptions{}, store_.get(), nullptr, &clock_);
    state_->AddCensus(census_.get());
    ASSERT_TRUE(state_->Open().ok());
  }
  json Get(const std::string& path, std::map<std::string, std::string> query = {}) {
    QueryApi api(QueryOptions{}, state_.get(), store_.get());
    HttpRequest req;
    req.method = "GET";
    req.path = path;
    req.query = std::move(query);
    HttpResponse r = path.rfind("/v1/images/", 0) == 0 ? api.Image(req, path.substr(11))
                     : path == "/v1/history"           ? api.History(req)
                                                       : api.Images(req);
    json j = json::parse(r.body);
    j["_status"] = r.status;
    return j;
  }
  FakeClock clock_;
  TempStore store_;
  StoreLog log_;
  std::unique_ptr<ImageCensus> census_;
  std::unique_ptr<ClusterState> state_;
};

TEST(ImageCensusDigest, FromImageIds) {
  EXPECT_EQ(ImageCensus::DigestOf("docker.io/library/nginx@sha256:abc"), "sha256:abc");
  EXPECT_EQ(ImageCensus::DigestOf("sha256:abc"), "sha256:abc");
  EXPECT_EQ(ImageCensus::DigestOf("docker-pullable://nginx@sha256:abc"), "sha256:abc");
  EXPECT_EQ(ImageCensus::DigestOf(""), "");
  EXPECT_EQ(ImageCensus::DigestOf("nginx:1.27"), "");
}

TEST_F(ImageCensusTest, AddedByTheFirstPodRemovedWithTheLast) {
  state_->Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}));
  state_->Apply(MakeReport("n2", "f1", 1, {Up(Pod("b", "n2", "11"))}));
  state_->Apply(MakeReport("n1", "e1", 2, {Del(Pod("a", "n1", "12"))}));
  EXPECT_EQ(ImageLines(log_),
            (std::vector<std::string>{"IMAGE_ADDED nginx:1.27 sha256:abc pods=1 nodes=1"}));
  state_->Apply(MakeReport("n2", "f1", 2, {Del(Pod("b", "n2", "13"))}));
  EXPECT_EQ(ImageLines(log_),
            (std::vector<std::string>{"IMAGE_ADDED nginx:1.27 sha256:abc pods=1 nodes=1",
                                      "IMAGE_REMOVED nginx:1.27 sha256:abc pods=0 nodes=0"}));
  auto lines = log_.Lines();
  EXPECT_EQ(lines.back()["pod_name"], "b");
  EXPECT_EQ(lines.back()["node_name"], "n2");
  EXPECT_EQ(census_->size(), 0u);
}

TEST_F(ImageCensusTest, CountedOnceTheStatusNamesTheImageAndUntilThePodCompletes) {
  // Pending: the kubelet has not pulled it yet.
  state_->Apply(MakeReport("n1", "e1", 1,
                           {Up(WithImage(Pod("a", "n1", "10", "", "Pending"), "redis:7", ""))}));
  EXPECT_TRUE(ImageLines(log_).empty());
  state_->Apply(MakeReport(
      "n1", "e1", 2,
      {Up(WithImage(Pod("a", "n1", "11"), "redis:7", "docker.io/library/redis@sha256:r1"))}));
  state_->Apply(MakeReport("n1", "e1", 3,
                           {Up(WithImage(Pod("a", "n1", "12", "", "Succeeded"), "redis:7",
                                         "docker.io/library/redis@sha256:r1"))}));
  EXPECT_EQ(ImageLines(log_),
            (std::vector<std::string>{"IMAGE_ADDED redis:7 sha256:r1 pods=1 nodes=1",
                                      "IMAGE_REMOVED redis:7 sha256:r1 pods=0 nodes=0"}));
  // The completed pod's deletion changes nothing more.
  state_->Apply(MakeReport("n1", "e1", 4,
                           {Del(WithImage(Pod("a", "n1", "13", "", "Succeeded"), "redis:7",
                                          "docker.io/library/redis@sha256:r1"))}));
  EXPECT_EQ(ImageLines(log_).size(), 2u);
}

TEST_F(ImageCensusTest, ATagPushedAgainIsANewImage) {
  state_->Apply(
      MakeReport("n1", "e1", 1, {Up(WithImage(Pod("a", "n1", "10"), "app:latest", "sha256:old"))}));
  state_->Apply(
      MakeReport("n1", "e1", 2, {Up(WithImage(Pod("b", "n1", "11"), "app:latest", "sha256:new"))}));
  state_->Apply(MakeReport("n1", "e1", 3,
                           {Del(WithImage(Pod("a", "n1", "12"), "app:latest", "sha256:old"))}));
  EXPECT_EQ(ImageLines(log_),
            (std::vector<std::string>{"IMAGE_ADDED app:latest sha256:old pods=1 nodes=1",
                                      "IMAGE_ADDED app:latest sha256:new pods=1 nodes=1",
                                      "IMAGE_REMOVED app:latest sha256:old pods=0 nodes=0"}));
}

TEST_F(ImageCensusTest, TwoContainersOfOnePodCountOnce) {
  PodRecord p = Pod("a", "n1", "10");
  p.containers = {{"init", "nginx:1.27", "sha256:abc"}, {"app", "nginx:1.27", "sha256:abc"}};
  state_->Apply(MakeReport("n1", "e1", 1, {Up(p)}));
  state_->Apply(MakeReport("n1", "e1", 2, {Up(Pod("b", "n1", "11"))}));
  state_->Apply(MakeReport("n1", "e1", 3, {Del(Pod("b", "n1", "12"))}));
  EXPECT_EQ(ImageLines(log_),
            (std::vector<std::string>{"IMAGE_ADDED nginx:1.27 sha256:abc pods=1 nodes=1"}));
  EXPECT_EQ(census_->pods({"nginx:1.27", "sha256:abc"}), 1u);
}

TEST_F(ImageCensusTest, ARestartNeverLogsAnImageAgain) {
  state_->Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}));
  Restart();
  EXPECT_EQ(census_->pods({"nginx:1.27", "sha256:abc"}), 1u);
  // The agent's snapshot to the new process, and a second pod.
  state_->Apply(
      MakeReport("n1", "e2", 1, {Up(Pod("a", "n1", "10")), Up(Pod("b", "n1", "11"))}, true));
  EXPECT_EQ(ImageLines(log_).size(), 1u);
  state_->Apply(MakeReport("n1", "e2", 2, {Del(Pod("a", "n1", "12")), Del(Pod("b", "n1", "13"))}));
  EXPECT_EQ(ImageLines(log_).back(), "IMAGE_REMOVED nginx:1.27 sha256:abc pods=0 nodes=0");
  EXPECT_EQ(ImageLines(log_).size(), 2u);
}

TEST_F(ImageCensusTest, AReplayToAWipedStoreIsStoredButMarkedReplayed) {
  Report r = MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}, true);
  r.replay = true;
  state_->Apply(r);
  auto events = store_->EventsAfter(0, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].event, "IMAGE_ADDED");
  EXPECT_TRUE((*events)[1].replayed);
  EXPECT_EQ(json::parse((*events)[1].line)["replayed"], true);
}

TEST_F(ImageCensusTest, QueriesByDigestTimeWindowAndEvent) {
  SystemTime t0 = clock_.now;
  state_->Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"), Ms(t0))}));
  state_->Apply(MakeReport("n2", "f1", 1, {Up(Pod("b", "n2", "11"), Ms(t0))}));
  clock_.now = t0 + std::chrono::hours(1);
  state_->Apply(MakeReport("n1", "e1", 2, {Del(Pod("a", "n1", "12"), Ms(clock_.now))}));
  clock_.now = t0 + std::chrono::hours(30);
  auto at = [](SystemTime t) { return FormatRfc3339Micros(t); };
  // Which nodes ran the digest in the first half hour? Both.
  json j = Get("/v1/images/sha256:abc",
               {{"since", at(t0)}, {"until", at(t0 + std::chrono::minutes(30))}});
  EXPECT_EQ(j["nodes"], json({"n1", "n2"}));
  // Two hours in: only n2 still ran it. A full imageID means its digest.
  j = Get("/v1/images/docker.io/library/nginx@sha256:abc",
          {{"since", at(t0 + std::chrono::hours(2))}, {"until", at(t0 + std::chrono::hours(3))}});
  EXPECT_EQ(j["nodes"], json({"n2"}));
  j = Get("/v1/images", {{"digest", "sha256:abc"}});
  ASSERT_EQ(j["images"].size(), 1u);
  EXPECT_EQ(j["images"][0]["digest"], "sha256:abc");
  EXPECT_EQ(j["images"][0]["pods"], 1);
  EXPECT_EQ(Get("/v1/images", {{"digest", "sha256:other"}})["images"].size(), 0u);
  EXPECT_EQ(Get("/v1/images", {{"digest", "nginx"}})["_status"], 400);
  j = Get("/v1/history", {{"event", "IMAGE_ADDED,IMAGE_REMOVED"}});
  ASSERT_EQ(j["events"].size(), 1u);
  EXPECT_EQ(j["events"][0]["event"], "IMAGE_ADDED");
}

TEST(ImageTextLine, AsClusterImageLoggerPrintsIt) {
  StoredEvent e;
  e.event = "IMAGE_ADDED";
  e.line = R"({"event":"IMAGE_ADDED","image":"nginx:1.14.2","namespace":"foo",)"
           R"("pod_name":"nginx-deployment-66b6c48dd5-4g5nj"})";
  EXPECT_EQ(LogWriter::ImageTextLine(e),
            "[+|image]  nginx:1.14.2  [foo|nginx-deployment-66b6c48dd5-4g5nj]\n");
  e.event = "IMAGE_REMOVED";
  EXPECT_EQ(LogWriter::ImageTextLine(e),
            "[-|image]  nginx:1.14.2  [foo|nginx-deployment-66b6c48dd5-4g5nj]\n");
  e.event = "CREATED";
  EXPECT_EQ(LogWriter::ImageTextLine(e), "");
}

TEST(ImageLogFormat, TextGoesToTheSecondOutputAndJsonStaysClean) {
  for (ImageLogFormat f : {ImageLogFormat::kJson, ImageLogFormat::kText, ImageLogFormat::kBoth}) {
    TempStore store;
    FakeClock clock;
    ImageCensus census;
    ClusterState state(StateOptions{}, store.get(), nullptr, &clock);
    state.AddCensus(&census);
    ASSERT_TRUE(state.Open().ok());
    state.Apply(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}));
    testutil::LogCapture json_out, text_out;
    LogWriterOptions o;
    o.image_log = f;
    LogWriter w(o, store.get(), json_out.file(), nullptr, text_out.file());
    w.Start();
    ASSERT_TRUE(w.WaitCaughtUp(std::chrono::seconds(5)));
    w.Stop(std::chrono::seconds(1));
    size_t json_images = 0;
    for (const auto& l : json_out.Lines()) json_images += l["event"] == "IMAGE_ADDED";
    EXPECT_EQ(json_images, f == ImageLogFormat::kText ? 0u : 1u);
    EXPECT_EQ(text_out.RawLines().size(), f == ImageLogFormat::kJson ? 0u : 1u);
    EXPECT_EQ(json_out.Lines().size(), f == ImageLogFormat::kText ? 1u : 2u);
  }
}

}  // namespace
}  // namespace ashiato
