#include "aggregator/authz.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "aggregator/token_review.h"

namespace ashiato {
namespace {

class FakeTokens : public TokenReviewer {
 public:
  Result<TokenReviewResult> Review(const std::string& token, const std::string& audience) override {
    ++calls;
    if (fail) return Unavailable("connection refused");
    TokenReviewResult r;
    // "alice" is valid for audience "ashiato" only, "prom" for the API server's.
    if (token == "alice" && audience == "ashiato") {
      r = {true, "alice", "", ""};
      r.groups = {"team-a", "system:authenticated"};
    }
    if (token == "prom" && audience.empty()) r = {true, "system:serviceaccount:mon:prom", "", ""};
    if (token == "agent") r = {true, "system:serviceaccount:ashiato:ashiato-agent", "", ""};
    if (!r.authenticated) r.error = "token audiences is invalid for the target audiences";
    return r;
  }
  std::atomic<int> calls{0};
  bool fail = false;
};

// Allowed: (user, namespace) pairs; "" = cluster-wide; path questions by "GET path".
class FakeAccess : public AccessReviewer {
 public:
  Result<bool> Review(const UserInfo& user, const AccessQuestion& q) override {
    std::lock_guard<std::mutex> lock(mu);
    ++calls;
    asked.push_back(user.username + "|" + q.verb + "|" + q.resource + "|" + q.ns + "|" + q.path);
    if (fail) return Unavailable("API server down");
    if (!q.path.empty()) return allowed.count({user.username, q.verb + " " + q.path}) > 0;
    return q.verb == "list" && q.resource == "pods" && allowed.count({user.username, q.ns}) > 0;
  }
  std::mutex mu;
  std::set<std::pair<std::string, std::string>> allowed;
  std::vector<std::string> asked;
  int calls = 0;
  bool fail = false;
};

struct Fixture {
  Fixture() {
    auto t = std::make_unique<FakeTokens>();
    auto a = std::make_unique<FakeAccess>();
    tokens = t.get();
    access = a.get();
    ReadAuthOptions o;
    o.denied_users = {"system:serviceaccount:ashiato:ashiato-agent"};
    authz = std::make_unique<ReadAuthorizer>(o, std::move(t), std::move(a));
  }
  FakeTokens* tokens;
  FakeAccess* access;
  std::unique_ptr<ReadAuthorizer> authz;
};

TEST(ReadAuthTest, TokensAreCheckedForTheAudienceAndCached) {
  Fixture f;
  EXPECT_EQ(f.authz->Authenticate("").status().code(), StatusCode::kUnauthenticated);
  auto alice = f.authz->Authenticate("Bearer alice");
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->username, "alice");
  EXPECT_EQ(alice->groups.size(), 2u);
  int calls = f.tokens->calls;
  ASSERT_TRUE(f.authz->Authenticate("Bearer alice").ok());
  EXPECT_EQ(f.tokens->calls, calls) << "cached";
  // The same token for another audience is another question, with another answer.
  EXPECT_EQ(f.authz->Authenticate("Bearer alice", "").status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(f.authz->Authenticate("Bearer prom").status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(f.authz->Authenticate("Bearer prom", "").ok());
  // Agents push; they never read.
  auto agent = f.authz->Authenticate("Bearer agent");
  EXPECT_EQ(agent.status().code(), StatusCode::kPermissionDenied);
  f.tokens->fail = true;
  EXPECT_EQ(f.authz->Authenticate("Bearer fresh").status().code(), StatusCode::kUnavailable);
}

TEST(ReadAuthTest, TokenCacheIsKeyedByHashAndBounded) {
  auto t = std::make_unique<FakeTokens>();
  ReadAuthOptions o;
  o.max_token_entries = 3;
  ReadAuthorizer authz(o, std::move(t), std::make_unique<FakeAccess>());
  std::vector<std::string> tokens = {"alice"};
  for (int i = 0; i < 10; ++i) tokens.push_back("secret-reader-token-" + std::to_string(i));
  for (const auto& tok : tokens) {
    auto r = authz.Authenticate("Bearer " + tok);
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().find(tok), std::string::npos);
    }
    auto keys = authz.TokenCacheKeysForTest();
    EXPECT_LE(keys.size(), 3u);
    for (const auto& k : keys) {
      EXPECT_EQ(k.size(), 64u);
      for (const auto& any : tokens) EXPECT_EQ(k.find(any), std::string::npos);
    }
  }
}

TEST(ReadAuthTest, PodAccessIsClusterWideOrTheAllowedNamespaces) {
  Fixture f;
  UserInfo alice{"alice", "", {}, {}};
  UserInfo admin{"admin", "", {}, {}};
  UserInfo nobody{"nobody", "", {}, {}};
  f.access->allowed = {{"alice", "team-a"}, {"alice", "team-b"}, {"admin", ""}};
  std::vector<std::string> all = {"default", "team-a", "team-b", "kube-system", "team-a"};
  auto a = f.authz->PodAccess(alice, all);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->all);
  EXPECT_EQ(a->namespaces, (std::vector<std::string>{"team-a", "team-b"}));
  EXPECT_TRUE(a->Allows("team-b"));
  EXPECT_FALSE(a->Allows("default"));
  ASSERT_NE(a->filter(), nullptr);
  auto b = f.authz->PodAccess(admin, all);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->all);
  EXPECT_EQ(b->filter(), nullptr);
  auto c = f.authz->PodAccess(nobody, all);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->all);
  EXPECT_TRUE(c->namespaces.empty());
  // Everything above is cached: asking again costs no review.
  int calls = f.access->calls;
  ASSERT_TRUE(f.authz->PodAccess(alice, all).ok());
  ASSERT_TRUE(f.authz->PodAccess(nobody, all).ok());
  EXPECT_EQ(f.access->calls, calls);
}

TEST(ReadAuthTest, ManyNamespacesAreReviewedOnceEach) {
  Fixture f;
  UserInfo alice{"alice", "", {}, {}};
  std::vector<std::string> many;
  for (int i = 0; i < 300; ++i) many.push_back("ns-" + std::to_string(i));
  f.access->allowed = {{"alice", "ns-7"}, {"alice", "ns-250"}};
  auto a = f.authz->PodAccess(alice, many);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->namespaces, (std::vector<std::string>{"ns-250", "ns-7"}));
  EXPECT_EQ(f.access->calls, 301);  // Cluster-wide, then each namespace once.
  std::set<std::string> distinct(f.access->asked.begin(), f.access->asked.end());
  EXPECT_EQ(distinct.size(), 301u);
}

TEST(ReadAuthTest, FailedReviewIsUnavailableAndNotCached) {
  Fixture f;
  UserInfo alice{"alice", "", {}, {}};
  f.access->allowed = {{"alice", "team-a"}};
  f.access->fail = true;
  EXPECT_EQ(f.authz->PodAccess(alice, {"team-a"}).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.authz->MayListPods(alice, "team-a").status().code(), StatusCode::kUnavailable);
  f.access->fail = false;
  auto a = f.authz->PodAccess(alice, {"team-a"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->namespaces, (std::vector<std::string>{"team-a"}));
}

TEST(ReadAuthTest, NonResourceQuestion) {
  Fixture f;
  UserInfo prom{"system:serviceaccount:mon:prom", "", {}, {}};
  f.access->allowed = {{prom.username, "get /metrics"}};
  auto yes = f.authz->Allowed(prom, AccessQuestion{"get", "", "", "", "/metrics"});
  ASSERT_TRUE(yes.ok());
  EXPECT_TRUE(*yes);
  auto no = f.authz->Allowed(UserInfo{"alice", "", {}, {}},
                             AccessQuestion{"get", "", "", "", "/metrics"});
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(*no);
}

TEST(SubjectAccessReviewTest, RequestAndAnswer) {
  UserInfo u{"system:serviceaccount:team-a:reader",
             "uid-1",
             {"system:serviceaccounts"},
             {{"authentication.kubernetes.io/pod-name", {"p"}}}};
  auto body = KubeAccessReviewer::RequestBody(u, AccessQuestion{"list", "", "pods", "team-a", ""});
  EXPECT_EQ(body["apiVersion"], "authorization.k8s.io/v1");
  EXPECT_EQ(body["kind"], "SubjectAccessReview");
  EXPECT_EQ(body["spec"]["user"], u.username);
  EXPECT_EQ(body["spec"]["uid"], "uid-1");
  EXPECT_EQ(body["spec"]["groups"][0], "system:serviceaccounts");
  EXPECT_EQ(body["spec"]["extra"]["authentication.kubernetes.io/pod-name"][0], "p");
  EXPECT_EQ(body["spec"]["resourceAttributes"]["namespace"], "team-a");
  EXPECT_EQ(body["spec"]["resourceAttributes"]["verb"], "list");
  EXPECT_EQ(body["spec"]["resourceAttributes"]["resource"], "pods");
  EXPECT_FALSE(body["spec"].contains("nonResourceAttributes"));
  auto m = KubeAccessReviewer::RequestBody(u, AccessQuestion{"get", "", "", "", "/metrics"});
  EXPECT_EQ(m["spec"]["nonResourceAttributes"]["path"], "/metrics");
  EXPECT_EQ(m["spec"]["nonResourceAttributes"]["verb"], "get");
  EXPECT_FALSE(m["spec"].contains("resourceAttributes"));
  using nlohmann::json;
  EXPECT_TRUE(*KubeAccessReviewer::ParseResponse(json::parse(R"({"status":{"allowed":true}})")));
  EXPECT_FALSE(*KubeAccessReviewer::ParseResponse(json::parse(R"({"status":{"allowed":false}})")));
  EXPECT_FALSE(*KubeAccessReviewer::ParseResponse(
      json::parse(R"({"status":{"allowed":true,"denied":true}})")));
  EXPECT_FALSE(
      *KubeAccessReviewer::ParseResponse(json::parse(R"({"status":{"evaluationError":"x"}})")));
  EXPECT_FALSE(KubeAccessReviewer::ParseResponse(json::parse("{}")).ok());
}

}  // namespace
}  // namespace ashiato
