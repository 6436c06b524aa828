// The HTTP API over real loopback sockets: every kind of bad input gets its
// status code and leaves the state unchanged.
#include "aggregator/service.h"

#include <gtest/gtest.h>

#include <set>

#include "aggregator/aggregator.h"
#include "aggregator/test_util.h"
#include "common/http_client.h"

namespace ashiato {
namespace {

using testutil::LogCapture;
using testutil::MakeReport;
using testutil::Pod;
using testutil::Up;

class FakeReviewer : public TokenReviewer {
 public:
  Result<TokenReviewResult> Review(const std::string& token, const std::string&) override {
    if (token == "agent")
      return TokenReviewResult{true, "system:serviceaccount:ashiato:ashiato-agent", "", ""};
    if (token == "agent-n1") {
      return TokenReviewResult{true, "system:serviceaccount:ashiato:ashiato-agent", "n1", ""};
    }
    if (token == "other") return TokenReviewResult{true, "system:serviceaccount:x:y", "", ""};
    return TokenReviewResult{false, "", "", "invalid"};
  }
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AggregatorOptions o;
    o.listen = "127.0.0.1:0";
    o.max_body_bytes = 64 * 1024;
    o.threads = 2;
    o.data_dir = store_dir_.dir();
    // Agent authentication only: reads are open here (ServiceReadAuthTest
    // covers them), and the fake tokens are bound to no pod.
    o.read_auth = "none";
    o.allow_unbound_agent_tokens = true;
    auto a = Aggregator::Create(o, std::make_unique<FakeReviewer>(), log_.file());
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    agg_ = std::move(a.value());
    ASSERT_TRUE(agg_->Start().ok());
    HttpClientOptions co;
    co.base_url = "http://127.0.0.1:" + std::to_string(agg_->port());
    client_ = std::make_unique<HttpClient>(co);
  }

  long Post(const std::string& body, const std::string& token = "agent",
            std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    headers.emplace_back("Content-Type", "application/json");
    auto r = client_->Do("POST", "/v1/reports", body, headers);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok() && r->status != 200) {
      auto j = nlohmann::json::parse(r->body, nullptr, false);
      EXPECT_TRUE(j.is_object() && j.contains("error")) << r->body;
    }
    return r.ok() ? r->status : -1;
  }

  nlohmann::json Get(const std::string& path, long want = 200) {
    auto r = client_->Do("GET", path);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->status, want) << path << ": " << r->body;
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  std::string Snapshot() { return Get("/v1/pods").dump() + Get("/v1/history").dump(); }

  // The unified log once the writer has caught up with every commit.
  std::vector<std::string> LoggedEvents() {
    EXPECT_TRUE(agg_->log_writer().WaitCaughtUp(std::chrono::seconds(5)));
    return log_.Events();
  }
  std::vector<nlohmann::json> LoggedLines() {
    EXPECT_TRUE(agg_->log_writer().WaitCaughtUp(std::chrono::seconds(5)));
    return log_.Lines();
  }

  testutil::TempDir store_dir_;
  LogCapture log_;
  std::unique_ptr<Aggregator> agg_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(ServiceTest, AcceptsAndDeduplicates) {
  std::string body = EncodeReport(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}));
  EXPECT_EQ(Post(body), 200);
  EXPECT_EQ(Post(body), 200);  // A retried POST.
  auto gz = GzipCompress(EncodeReport(MakeReport("n1", "e1", 2, {Up(Pod("b", "n1", "11"))})));
  EXPECT_EQ(Post(*gz, "agent", {{"Content-Encoding", "gzip"}}), 200);
  // The first pod running nginx:1.27 also brings it into the cluster.
  EXPECT_EQ(LoggedEvents(), (std::vector<std::string>{"CREATED default/a", "IMAGE_ADDED default/a",
                                                      "CREATED default/b"}));
  EXPECT_EQ(Get("/v1/pods")["count"], 2);
  EXPECT_EQ(Get("/v1/pods?node=n1&selector=app%3Da")["count"], 1);
  EXPECT_EQ(Get("/v1/pods/default/a")["current"]["pod_name"], "a");
  EXPECT_EQ(Get("/v1/nodes")["nodes"][0]["node"], "n1");
  EXPECT_EQ(Get("/v1/images")["count"], 1);
  Get("/v1/pods/default/zzz", 404);
  Get("/v1/nope", 404);
  auto r = client_->Do("GET", "/metrics");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("ashiato_aggregator_reports_total{result=\"replayed\"} 1"),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("ashiato_aggregator_pods 2"), std::string::npos);
  EXPECT_EQ(client_->Do("GET", "/healthz")->status, 200);
  EXPECT_EQ(client_->Do("GET", "/readyz")->status, 200);
}

TEST_F(ServiceTest, AnswerNamesTheStoreInstanceAndCommittedSeq) {
  std::string body = EncodeReport(MakeReport("n1", "e1", 5, {Up(Pod("a", "n1", "10"))}));
  auto r = client_->Do("POST", "/v1/reports", body,
                       {{"Authorization", "Bearer agent"}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["instance"], agg_->store().instance());
  EXPECT_EQ(j["instance"].get<std::string>().size(), 32u);
  EXPECT_EQ(j["committed_seq"], 5);
  auto lines = LoggedLines();
  ASSERT_EQ(lines.size(), 2u);  // CREATED, IMAGE_ADDED.
  EXPECT_TRUE(lines[0]["id"].is_number_integer());
  EXPECT_EQ(lines[1]["id"].get<int64_t>(), lines[0]["id"].get<int64_t>() + 1);
}

TEST_F(ServiceTest, BadInputNeverChangesState) {
  ASSERT_EQ(Post(EncodeReport(MakeReport("n1", "e1", 1, {Up(Pod("a", "n1", "10"))}))), 200);
  const std::string before = Snapshot();
  const size_t lines_before = LoggedLines().size();
  std::string good = EncodeReport(MakeReport("n1", "e1", 2, {Up(Pod("b", "n1", "11"))}));
  struct Case {
    std::string name, body, token;
    std::vector<std::pair<std::string, std::string>> headers;
    long want;
  };
  std::vector<Case> cases = {
      {"malformed", "{not json", "agent", {}, 400},
      {"truncated", good.substr(0, good.size() / 2), "agent", {}, 400},
      {"empty", "", "agent", {}, 400},
      {"wrong types", R"({"v":1,"node":"n1","epoch":"e1","seq":"2","r":[]})", "agent", {}, 400},
      {"unknown version", R"({"v":9,"node":"n1","epoch":"e1","seq":2,"r":[]})", "agent", {}, 400},
      {"record for another node",
       EncodeReport(MakeReport("n1", "e1", 2, {Up(Pod("b", "n2", "11"))})),
       "agent",
       {},
       400},
      {"bad gzip", "\x1f\x8b garbage", "agent", {{"Content-Encoding", "gzip"}}, 400},
      {"unknown encoding", good, "agent", {{"Content-Encoding", "br"}}, 400},
      {"too large", std::string(100 * 1024, ' ') + good, "agent", {}, 413},
      {"gzip bomb",
       *GzipCompress(good + std::string(1 << 20, ' ')),
       "agent",
       {{"Content-Encoding", "gzip"}},
       413},
      {"no token", good, "", {}, 401},
      {"bad token", good, "nope", {}, 401},
      {"other identity", good, "other", {}, 403},
      {"other node", good, "agent-n1", {}, 200},  // Bound to n1: allowed (sanity).
  };
  for (const auto& c : cases) {
    if (c.want == 200) continue;
    EXPECT_EQ(Post(c.body, c.token, c.headers), c.want) << c.name;
    EXPECT_EQ(Snapshot(), before) << c.name;
  }
  std::string n2 = EncodeReport(MakeReport("n2", "f1", 1, {Up(Pod("c", "n2", "12"))}));
  EXPECT_EQ(Post(n2, "agent-n1"), 403) << "token bound to n1 reporting for n2";
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(LoggedLines().size(), lines_before);
  // Bad query parameters.
  Get("/v1/pods?selector=a%20in%20(", 400);
  Get("/v1/ips/10.0.0.1?at=yesterday", 400);
  Get("/v1/history?since=x", 400);
  Get("/v1/history?limit=-1", 400);
  // Names no event or namespace can have, not even UTF-8 (found by the
  // service fuzzer: the event list reached the store as JSON and threw).
  Get("/v1/history?event=CREATED,%97", 400);
  Get("/v1/history?event=DELETE", 400);
  Get("/v1/history?namespace=%97", 400);
  Get("/v1/pods?namespace=Team_A", 400);
  Get("/v1/placements?namespace=%ff%fe", 400);
  Get("/v1/pods/%97/a", 400);
  EXPECT_EQ(Get("/v1/history?event=CREATED,SYNC")["events"].size(), 1u);
  EXPECT_EQ(client_->Do("DELETE", "/v1/pods")->status, 405);
  EXPECT_EQ(client_->Do("GET", "/v1/reports")->status, 405);
  // The server is still fine.
  EXPECT_EQ(Post(good, "agent-n1"), 200);
  EXPECT_EQ(Get("/v1/pods")["count"], 2);
}

// Reads with --read-auth tokenreview: who sees what.
class FakeReaderTokens : public TokenReviewer {
 public:
  Result<TokenReviewResult> Review(const std::string& token, const std::string& audience) override {
    TokenReviewResult r;
    // Reader tokens carry the audience "ashiato"; Prometheus' the API server's ("").
    if (audience == "ashiato" && (token == "alice" || token == "admin" || token == "nobody")) {
      r = {true, token, "", ""};
    }
    if (audience == "ashiato" && token == "agent") {
      r = {true, "system:serviceaccount:ashiato:ashiato-agent", "", ""};
    }
    if (audience.empty() && token == "prom") r = {true, "prom", "", ""};
    if (!r.authenticated) r.error = "token audiences is invalid for the target audiences";
    return r;
  }
};

class FakeAccess : public AccessReviewer {
 public:
  Result<bool> Review(const UserInfo& u, const AccessQuestion& q) override {
    if (!q.path.empty()) return u.username == "prom" && q.path == "/metrics" && q.verb == "get";
    if (q.verb != "list" || q.resource != "pods") return false;
    if (u.username == "admin") return true;
    if (u.username == "agent") return true;  // Never asked: agents may not read at all.
    return u.username == "alice" && q.ns == "team-a";
  }
};

class ServiceReadAuthTest : public ServiceTest {
 protected:
  void SetUp() override {
    AggregatorOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    o.data_dir = store_dir_.dir();
    o.allow_unbound_agent_tokens = true;
    AuthApis apis;
    apis.agent_tokens = std::make_unique<FakeReviewer>();
    apis.reader_tokens = std::make_unique<FakeReaderTokens>();
    apis.access = std::make_unique<FakeAccess>();
    auto a = Aggregator::Create(o, std::move(apis), log_.file());
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    agg_ = std::move(a.value());
    ASSERT_TRUE(agg_->Start().ok());
    client_ = std::make_unique<HttpClient>(
        HttpClientOptions{.base_url = "http://127.0.0.1:" + std::to_string(agg_->port())});
    PodRecord a1 = Pod("a1", "n1", "10", "10.0.0.1"), b1 = Pod("b1", "n1", "11", "10.0.0.2");
    a1.namespace_ = "team-a";
    b1.namespace_ = "team-b";
    b1.containers = {{"app", "secret-image:1", ""}};
    ASSERT_EQ(Post(EncodeReport(MakeReport("n1", "e1", 1, {Up(a1), Up(b1)}))), 200);
  }

  // GET as `token` ("" = no token): status and body.
  std::pair<long, nlohmann::json> As(const std::string& token, const std::string& path) {
    std::vector<std::pair<std::string, std::string>> h;
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    auto r = client_->Do("GET", path, "", h);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return {-1, nullptr};
    return {r->status, nlohmann::json::parse(r->body, nullptr, false)};
  }
  std::set<std::string> Namespaces(const nlohmann::json& j, const std::string& list) {
    std::set<std::string> out;
    for (const auto& x : j[list]) out.insert(x["namespace"].get<std::string>());
    return out;
  }
};

TEST_F(ServiceReadAuthTest, EveryReadNeedsAToken) {
  for (const char* path : {"/v1/nodes", "/v1/pods", "/v1/pods/team-a/a1", "/v1/ips/10.0.0.1",
                           "/v1/history", "/v1/placements", "/v1/images", "/v1/images/x"}) {
    auto [code, body] = As("", path);
    EXPECT_EQ(code, 401) << path;
    EXPECT_EQ(As("junk", path).first, 401) << path;
    EXPECT_EQ(As("prom", path).first, 401) << path << ": a token for another audience";
  }
  auto r = client_->Do("GET", "/v1/pods");
  EXPECT_EQ(r->Header("www-authenticate"), "Bearer");
  // Health stays open.
  EXPECT_EQ(As("", "/healthz").first, 200);
  EXPECT_EQ(As("", "/readyz").first, 200);
}

TEST_F(ServiceReadAuthTest, ClusterWideReaderSeesEverything) {
  EXPECT_EQ(Namespaces(As("admin", "/v1/pods").second, "pods"),
            (std::set<std::string>{"team-a", "team-b"}));
  EXPECT_EQ(As("admin", "/v1/nodes").second["count"], 1);
  EXPECT_EQ(As("admin", "/v1/images").second["count"], 2);
}

TEST_F(ServiceReadAuthTest, NamespacedReaderSeesOnlyItsNamespace) {
  auto [code, pods] = As("alice", "/v1/pods");
  ASSERT_EQ(code, 200) << pods.dump();
  EXPECT_EQ(Namespaces(pods, "pods"), (std::set<std::string>{"team-a"}));
  EXPECT_EQ(pods["count"], 1);
  EXPECT_EQ(As("alice", "/v1/pods?namespace=team-a").first, 200);
  EXPECT_EQ(As("alice", "/v1/pods?namespace=team-b").first, 403);
  EXPECT_EQ(As("alice", "/v1/pods?ip=10.0.0.2").second["count"], 0);
  EXPECT_EQ(As("alice", "/v1/pods/team-a/a1").first, 200);
  EXPECT_EQ(As("alice", "/v1/pods/team-b/b1").first, 403);
  EXPECT_EQ(As("alice", "/v1/nodes").first, 403) << "cluster-wide: needs list pods everywhere";
  auto history = As("alice", "/v1/history").second;
  EXPECT_EQ(Namespaces(history, "events"), (std::set<std::string>{"team-a"}));
  EXPECT_EQ(As("alice", "/v1/history?namespace=team-b").first, 403);
  EXPECT_EQ(Namespaces(As("alice", "/v1/placements").second, "placements"),
            (std::set<std::string>{"team-a"}));
  EXPECT_EQ(As("alice", "/v1/placements?namespace=team-b").first, 403);
  EXPECT_EQ(As("alice", "/v1/ips/10.0.0.2").second["holders"].size(), 0u);
  EXPECT_EQ(As("alice", "/v1/ips/10.0.0.1").second["holders"].size(), 1u);
  auto images = As("alice", "/v1/images").second;
  ASSERT_EQ(images["count"], 1) << images.dump();
  EXPECT_EQ(images["images"][0]["image"], "nginx:1.27");
  EXPECT_EQ(As("alice", "/v1/images/secret-image:1").second["count"], 0);
  EXPECT_EQ(As("admin", "/v1/images/secret-image:1").second["count"], 1);
  std::string at = FormatRfc3339Micros(std::chrono::system_clock::now() + std::chrono::hours(1));
  EXPECT_EQ(As("alice", "/v1/images?at=" + UrlEncode(at)).second["count"], 1);
  EXPECT_EQ(As("admin", "/v1/images?at=" + UrlEncode(at)).second["count"], 2);
}

TEST_F(ServiceReadAuthTest, ANamespaceThatIsNoNameIsRefusedBeforeItIsReviewed) {
  // Invalid UTF-8 would not survive the SubjectAccessReview's JSON.
  EXPECT_EQ(As("alice", "/v1/pods?namespace=team-a%97").first, 400);
  EXPECT_EQ(As("alice", "/v1/history?namespace=%c3%28").first, 400);
  EXPECT_EQ(As("alice", "/v1/pods/Team-A/a1").first, 400);
  EXPECT_EQ(As("alice", "/v1/pods?namespace=team-a").first, 200);
}

TEST_F(ServiceReadAuthTest, NoRightsIsForbiddenAndAgentsMayNotRead) {
  for (const char* path : {"/v1/pods", "/v1/history", "/v1/images", "/v1/nodes"}) {
    EXPECT_EQ(As("nobody", path).first, 403) << path;
    EXPECT_EQ(As("agent", path).first, 403) << path << ": a push token must not read";
  }
}

TEST_F(ServiceReadAuthTest, MetricsNeedGetOnTheMetricsUrl) {
  EXPECT_EQ(As("", "/metrics").first, 401);
  EXPECT_EQ(As("alice", "/metrics").first, 401) << "reviewed for the API server's audience";
  auto r = client_->Do("GET", "/metrics", "", {{"Authorization", "Bearer prom"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("ashiato_aggregator_reads_total{result=\"forbidden\"}"),
            std::string::npos);
}

}  // namespace
}  // namespace ashiato
