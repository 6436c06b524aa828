// Deployment records: configuration, the census (through ClusterState, so
// the outbox rows are what a real report commits), the outbox in the store,
// and the retry policy. The sender against a live server: tests/e2e.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <map>
#include <memory>

#include "aggregator/deploy/census.h"
#include "aggregator/deploy/config.h"
#include "aggregator/deploy/record.h"
#include "aggregator/deploy/retry_policy.h"
#include "aggregator/state.h"
#include "aggregator/test_util.h"

namespace ashiato {
namespace {

using nlohmann::json;
using testutil::Del;
using testutil::FakeClock;
using testutil::MakeReport;
using testutil::Pod;
using testutil::TempStore;
using testutil::Up;

Result<DeployConfig> Load(std::map<std::string, std::string> env, DeployFlags flags = {}) {
  return LoadDeployConfig(flags, [&env](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(DeployConfig, DisabledWithoutOrgAndDefaultsAsDeploymentTracker) {
  auto off = Load({});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->enabled());
  auto c = Load({{"ORG", "my-org"}, {"CLUSTER", "prod-1"}, {"API_TOKEN", "t0k"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->enabled());
  EXPECT_EQ(c->base_url, "https://api.github.com");
  EXPECT_EQ(c->dn_template, "{{namespace}}/{{deploymentName}}/{{containerName}}");
  EXPECT_EQ(c->cluster, "prod-1");
  EXPECT_EQ(c->api_token, "t0k");
  EXPECT_EQ(c->workers, 2);
}

TEST(DeployConfig, SchemeOptionalFlagsWinAndBadValuesAreNamed) {
  EXPECT_EQ(Load({{"ORG", "o"}, {"BASE_URL", "ghe.example.com/api/v3/"}})->base_url,
            "https://ghe.example.com/api/v3");
  EXPECT_EQ(Load({{"ORG", "o"}, {"BASE_URL", "http://127.0.0.1:8080"}})->base_url,
            "http://127.0.0.1:8080");
  EXPECT_EQ(Load({{"ORG", "o"}, {"BASE_URL", "http://am.tools.svc.cluster.local"}})->base_url,
            "http://am.tools.svc.cluster.local");
  DeployFlags f;
  f.org = "flag-org";
  f.cluster = "c2";
  auto c = Load({{"ORG", "env-org"}, {"CLUSTER", "c1"}}, f);
  EXPECT_EQ(c->org, "flag-org");
  EXPECT_EQ(c->cluster, "c2");
  auto bad_org = Load({{"ORG", "a/b"}});
  EXPECT_EQ(bad_org.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_org.status().message().find("ORG"), std::string::npos);
  auto plain = Load({{"ORG", "o"}, {"BASE_URL", "http://api.example.com"}});
  EXPECT_NE(plain.status().message().find("BASE_URL"), std::string::npos);
  auto tmpl = Load({{"ORG", "o"}, {"DN_TEMPLATE", "{{namespace}}/{{podName}}"}});
  EXPECT_NE(tmpl.status().message().find("{{podName}}"), std::string::npos);
  f = {};
  f.workers = 0;
  EXPECT_FALSE(Load({{"ORG", "o"}}, f).ok());
}

TEST(DeployRecord, TemplateImageSplitAndOutcomeLine) {
  EXPECT_EQ(RenderDeploymentName("{{namespace}}/{{deploymentName}}/{{containerName}}", "default",
                                 "nginx", "web"),
            "default/nginx/web");
  EXPECT_EQ(RenderDeploymentName("prod-{{deploymentName}}-{{deploymentName}}", "ns", "d", "c"),
            "prod-d-d");
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(SplitImageReference("nginx:1.27"), (P{"nginx", "1.27"}));
  EXPECT_EQ(SplitImageReference("nginx"), (P{"nginx", ""}));
  EXPECT_EQ(SplitImageReference("reg:5000/a/b@sha256:abc"), (P{"reg:5000/a/b", ""}));
  EXPECT_EQ(SplitImageReference("reg:5000/a/b:v2@sha256:abc"), (P{"reg:5000/a/b", "v2"}));
  DeploymentRecord r;
  r.name = "nginx";
  r.deployment_name = "default/nginx/nginx";
  r.digest = "sha256:abc";
  r.status = "deployed";
  EXPECT_EQ(OutcomeLine("2024-01-15T10:30:00Z", r, ""),
            "[2024-01-15T10:30:00Z] OK CREATED name=nginx deployment_name=default/nginx/nginx "
            "digest=sha256:abc status=deployed");
  r.status = "decommissioned";
  EXPECT_EQ(OutcomeLine("2024-01-15T10:30:00Z", r, "status 500: boom"),
            "[2024-01-15T10:30:00Z] FAILED DELETED name=nginx deployment_name=default/nginx/nginx "
            "digest=sha256:abc status=decommissioned error=status 500: boom");
  EXPECT_EQ(DeploymentRecord::FromJson(r.ToJson()).ToJson(), r.ToJson());
}

// A pod of Deployment `deploy` (ReplicaSet deploy-<hash>, as the agent infers it).
PodRecord DeployPod(const std::string& name, const std::string& deploy, const std::string& rv,
                    const std::string& image, const std::string& digest,
                    const std::string& phase = "Running") {
  PodRecord p = Pod(name, "n1", rv, "", phase);
  p.owner_kind = "Deployment";
  p.owner_name = deploy;
  p.owner_inferred = true;
  p.containers = {{"web", image, digest.empty() ? "" : "docker.io/library/x@" + digest}};
  return p;
}

class DeploymentCensusTest : public ::testing::Test {
 protected:
  DeploymentCensusTest() { Restart(); }
  void Restart() {
    state_.reset();
    DeployConfig c;
    c.org = "o";
    c.logical_environment = "prod";
    c.physical_environment = "eu";
    c.cluster = "k1";
    census_ = std::make_unique<DeploymentCensus>(c);
    state_ = std::make_unique<ClusterState>(StateOptions{}, store_.get(), nullptr, &clock_);
    state_->AddCensus(census_.get());
    ASSERT_TRUE(state_->Open().ok());
  }
  void Apply(const std::string& node, uint64_t seq, std::vector<ReportRecord> recs,
             bool replay = false) {
    Report r = MakeReport(node, "e-" + node, seq, std::move(recs));
    r.replay = replay;
    state_->Apply(std::move(r));
  }
  // "deployed default/web/web sha256:v1 nginx 1.27" per queued row, in order;
  // taken (deleted) from the outbox.
  std::vector<std::string> Take() {
    std::vector<std::string> out;
    for (;;) {
      auto due = store_->DueOutbox(INT64_MAX, 100);
      if (!due.ok() || due->empty()) break;
      for (const auto& row : *due) {
        json j = json::parse(row.body);
        EXPECT_EQ(row.key, j["deployment_name"]);
        EXPECT_EQ(j["logical_environment"], "prod");
        EXPECT_EQ(j["physical_environment"], "eu");
        EXPECT_EQ(j["cluster"], "k1");
        out.push_back(j["status"].get<std::string>() + " " +
                      j["deployment_name"].get<std::string>() + " " +
                      j["digest"].get<std::string>() + " " + j["name"].get<std::string>() + " " +
                      j.value("version", ""));
        EXPECT_TRUE(store_->DeleteOutbox(row.id).ok());
      }
    }
    return out;
  }
  using V = std::vector<std::string>;
  FakeClock clock_;
  TempStore store_;
  std::unique_ptr<DeploymentCensus> census_;
  std::unique_ptr<ClusterState> state_;
};

TEST_F(DeploymentCensusTest, RolloutThenScaleToZero) {
  Apply("n1", 1,
        {Up(DeployPod("web-a", "web", "10", "nginx:1.27", "sha256:v1")),
         Up(DeployPod("web-b", "web", "11", "nginx:1.27", "sha256:v1"))});
  EXPECT_EQ(Take(), (V{"deployed default/web/web sha256:v1 nginx 1.27"}));
  // Rollout: a v2 pod comes up, the v1 pods go; the name never runs nothing.
  Apply("n1", 2, {Up(DeployPod("web-c", "web", "12", "nginx:1.28", "sha256:v2"))});
  Apply("n1", 3,
        {Del(DeployPod("web-a", "web", "13", "nginx:1.27", "sha256:v1")),
         Del(DeployPod("web-b", "web", "14", "nginx:1.27", "sha256:v1"))});
  Apply("n1", 4, {Up(DeployPod("web-d", "web", "15", "nginx:1.28", "sha256:v2"))});
  EXPECT_EQ(Take(), (V{"deployed default/web/web sha256:v2 nginx 1.28"}));
  // Scale to zero: decommissioned once, with the last pod's digest.
  Apply("n1", 5, {Del(DeployPod("web-c", "web", "16", "nginx:1.28", "sha256:v2"))});
  EXPECT_EQ(Take(), V{});
  Apply("n1", 6, {Del(DeployPod("web-d", "web", "17", "nginx:1.28", "sha256:v2"))});
  EXPECT_EQ(Take(), (V{"decommissioned default/web/web sha256:v2 nginx 1.28"}));
  EXPECT_EQ(census_->InUse().size(), 0u);
}

TEST_F(DeploymentCensusTest, RecordedOnceRunningWithADigestAndUntilItEnds) {
  Apply("n1", 1, {Up(DeployPod("web-a", "web", "10", "nginx:1.27", "", "Pending"))});
  Apply("n1", 2, {Up(DeployPod("web-a", "web", "11", "nginx:1.27", ""))});  // Running, no digest.
  EXPECT_EQ(Take(), V{});
  Apply("n1", 3, {Up(DeployPod("web-a", "web", "12", "nginx:1.27", "sha256:v1"))});
  EXPECT_EQ(Take(), (V{"deployed default/web/web sha256:v1 nginx 1.27"}));
  // A restart of the aggregator restores the count and queues nothing.
  Restart();
  EXPECT_EQ(census_->pods("default/web/web", "sha256:v1"), 1u);
  Apply("n1", 4, {Up(DeployPod("web-b", "web", "13", "nginx:1.27", "sha256:v1"))});
  EXPECT_EQ(Take(), V{});
  Apply("n1", 5, {Up(DeployPod("web-a", "web", "14", "nginx:1.27", "sha256:v1", "Failed"))});
  Apply("n1", 6, {Up(DeployPod("web-b", "web", "15", "nginx:1.27", "sha256:v1", "Succeeded"))});
  EXPECT_EQ(Take(), (V{"decommissioned default/web/web sha256:v1 nginx 1.27"}));
}

TEST_F(DeploymentCensusTest, OwnersOtherThanDeploymentsAndBarePods) {
  PodRecord ss = Pod("db-0", "n1", "10");
  ss.owner_kind = "StatefulSet";
  ss.owner_name = "db";
  ss.containers = {{"pg", "postgres:16", "sha256:p"}};
  PodRecord bare = Pod("debug", "n1", "11");
  bare.containers = {{"sh", "ghcr.io/acme/tools@sha256:t", "sha256:t"}};
  Apply("n1", 1, {Up(ss), Up(bare)});
  EXPECT_EQ(Take(), (V{"deployed default/db/pg sha256:p postgres 16",
                       "deployed default/debug/sh sha256:t ghcr.io/acme/tools "}));
}

TEST_F(DeploymentCensusTest, ReplayedChangesAreCountedButNotQueued) {
  Apply("n1", 1, {Up(DeployPod("web-a", "web", "10", "nginx:1.27", "sha256:v1"))}, true);
  EXPECT_EQ(Take(), V{});
  EXPECT_EQ(census_->pods("default/web/web", "sha256:v1"), 1u);
  Apply("n1", 2, {Del(DeployPod("web-a", "web", "11", "nginx:1.27", "sha256:v1"))});
  EXPECT_EQ(Take(), (V{"decommissioned default/web/web sha256:v1 nginx 1.27"}));
}

TEST(DeploymentOutbox, SurvivesReopenInOrderPerDeploymentName) {
  TempStore s;
  ChangeBatch b;
  b.outbox = {{"a", "{\"n\":1}", 1}, {"b", "{\"n\":2}", 2}, {"a", "{\"n\":3}", 3}};
  ASSERT_TRUE(s->Commit(b).ok());
  s.Reopen();
  auto due = s->DueOutbox(100, 10);
  ASSERT_TRUE(due.ok());
  // The second row of "a" waits for the first.
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].body, "{\"n\":1}");
  EXPECT_EQ((*due)[1].body, "{\"n\":2}");
  EXPECT_EQ(s->DueOutbox(100, 10, {"a"})->size(), 1u);  // "a" in flight.
  // A failed attempt: not due until its next attempt, and "a" waits.
  ASSERT_TRUE(s->RescheduleOutbox((*due)[0].id, 1, 500, "status 500").ok());
  s.Reopen();
  EXPECT_EQ(s->DueOutbox(100, 10)->size(), 1u);
  auto later = s->DueOutbox(500, 10);
  ASSERT_EQ(later->size(), 2u);
  EXPECT_EQ((*later)[0].attempts, 1);
  EXPECT_EQ((*later)[0].last_error, "status 500");
  ASSERT_TRUE(s->DeleteOutbox((*later)[0].id).ok());
  auto rest = s->DueOutbox(500, 10);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[1].body, "{\"n\":3}");
  auto depth = s->OutboxDepth();
  EXPECT_EQ(depth->first, 2);
}

TEST(DeploymentOutbox, AVersion1StoreIsMigrated) {
  TempStore s;
  std::string path = s->path();
  // Turn the file into what a version 1 aggregator wrote: no outbox table
  // (nor the later node_info).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE deployment_outbox; DROP TABLE node_info; "
                         "ALTER TABLE events DROP COLUMN out_of_scope; PRAGMA user_version=1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  s.Reopen();
  ASSERT_TRUE(s->healthy());
  ChangeBatch b;
  b.outbox = {{"a", "{}", 1}};
  ASSERT_TRUE(s->Commit(b).ok());
  EXPECT_EQ(s->OutboxDepth()->first, 1);
}

ClientResponse Response(long status, std::map<std::string, std::string> headers = {},
                        std::string body = "") {
  ClientResponse r;
  r.status = status;
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

TEST(DeployRetryPolicy, Classification) {
  RetryOptions o;
  o.initial = std::chrono::milliseconds(1000);
  o.max = std::chrono::milliseconds(60000);
  std::mt19937_64 rng(1);
  SystemTime now = SystemTime(std::chrono::seconds(1700000000));
  using K = AttemptOutcome::Kind;
  EXPECT_EQ(ClassifyAttempt(Response(201), 1, o, now, rng).kind, K::kDelivered);
  EXPECT_EQ(ClassifyAttempt(Response(200), 1, o, now, rng).kind, K::kDelivered);
  auto bad =
      ClassifyAttempt(Response(422, {}, "{\"message\":\"Validation Failed\"}"), 1, o, now, rng);
  EXPECT_EQ(bad.kind, K::kDrop);
  EXPECT_NE(bad.error.find("Validation Failed"), std::string::npos);
  EXPECT_EQ(ClassifyAttempt(Response(404), 1, o, now, rng).kind, K::kDrop);
  EXPECT_EQ(ClassifyAttempt(Response(403), 1, o, now, rng).kind, K::kDrop);
  auto net =
      ClassifyAttempt(Result<ClientResponse>(Unavailable("connection refused")), 1, o, now, rng);
  EXPECT_EQ(net.kind, K::kRetry);
  EXPECT_GE(net.delay.count(), 500);
  EXPECT_LE(net.delay.count(), 1000);
  // Exponential, capped, with jitter in [d/2, d].
  auto fifth = ClassifyAttempt(Response(503), 5, o, now, rng);
  EXPECT_EQ(fifth.kind, K::kRetry);
  EXPECT_GE(fifth.delay.count(), 8000);
  EXPECT_LE(fifth.delay.count(), 16000);
  EXPECT_LE(ClassifyAttempt(Response(500), 40, o, now, rng).delay.count(), 60000);
  // 429 with Retry-After: never sooner.
  auto ra = ClassifyAttempt(Response(429, {{"retry-after", "30"}}), 1, o, now, rng);
  EXPECT_EQ(ra.kind, K::kRetry);
  EXPECT_GE(ra.delay.count(), 30000);
  // GitHub's primary rate limit: 403 with remaining 0 waits for the reset.
  auto rl = ClassifyAttempt(
      Response(403, {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1700000120"}}), 1, o,
      now, rng);
  EXPECT_EQ(rl.kind, K::kRetry);
  EXPECT_GE(rl.delay.count(), 120000);
  // A server asking for days is waited for an hour at most.
  EXPECT_EQ(ClassifyAttempt(Response(429, {{"retry-after", "999999"}}), 1, o, now, rng).delay,
            std::chrono::hours(1));
}

}  // namespace
}  // namespace ashiato
