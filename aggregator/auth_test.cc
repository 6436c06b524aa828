#include "aggregator/auth.h"

#include <gtest/gtest.h>

#include <map>

#include "aggregator/token_review.h"
#include "common/sha256.h"

namespace ashiato {
namespace {

constexpr char kAgent[] = "system:serviceaccount:ashiato:ashiato-agent";

// Tokens and what a TokenReview says about them: "agent" is bound to no pod,
// "agent-node1" carries the node-name extra (Kubernetes >= 1.30), "pod:*"
// only pod-name and pod-uid (1.25-1.29).
class FakeReviewer : public TokenReviewer {
 public:
  Result<TokenReviewResult> Review(const std::string& token, const std::string& audience) override {
    ++calls;
    last_audience = audience;
    if (fail) return Unavailable("connection refused");
    TokenReviewResult r;
    if (token == "agent") r = {true, kAgent, "", ""};
    if (token == "agent-node1") r = {true, kAgent, "node-1", ""};
    if (token.rfind("pod:", 0) == 0) {
      // "pod:NAME:UID[:n]": bound to pod NAME with that uid (n: a rotation).
      size_t c1 = token.find(':', 4), c2 = token.find(':', c1 + 1);
      r = {true, kAgent, "", ""};
      r.pod_name = token.substr(4, c1 - 4);
      r.pod_uid = token.substr(c1 + 1, c2 == std::string::npos ? c2 : c2 - c1 - 1);
    }
    if (token == "other") r = {true, "system:serviceaccount:default:default", "", ""};
    if (token == "bad") r = {false, "", "", "invalid bearer token"};
    if (token.rfind("junk", 0) == 0) r = {false, "", "", "token lookup failed"};
    return r;
  }
  int calls = 0;
  bool fail = false;
  std::string last_audience;
};

class FakePods : public PodLookup {
 public:
  Result<std::optional<PodPlacement>> Get(const std::string& ns, const std::string& name) override {
    ++calls;
    if (fail) return Unavailable("API server down");
    auto it = pods.find(ns + "/" + name);
    if (it == pods.end()) return std::optional<PodPlacement>();
    return std::optional<PodPlacement>(it->second);
  }
  std::map<std::string, PodPlacement> pods;
  int calls = 0;
  bool fail = false;
};

struct Fixture {
  explicit Fixture(AuthOptions o = {}) {
    auto r = std::make_unique<FakeReviewer>();
    auto p = std::make_unique<FakePods>();
    reviewer = r.get();
    pods = p.get();
    pods->pods["ashiato/agent-a"] = {"uid-a", "node-2"};
    pods->pods["ashiato/agent-u"] = {"uid-u", ""};  // Not scheduled yet.
    auth = std::make_unique<Authenticator>(o, std::move(r), nullptr, std::move(p));
  }
  FakeReviewer* reviewer;
  FakePods* pods;
  std::unique_ptr<Authenticator> auth;
};

AuthOptions AllowUnbound() {
  AuthOptions o;
  o.allow_unbound = true;
  return o;
}

TEST(AuthTest, CodesAndCache) {
  Fixture f(AllowUnbound());
  Authenticator& auth = *f.auth;
  EXPECT_EQ(auth.Authenticate("").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("Basic abc").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("Bearer bad").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("Bearer other").status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(auth.Authenticate("Bearer agent").ok());
  int calls = f.reviewer->calls;
  ASSERT_TRUE(auth.Authenticate("Bearer agent").ok());
  EXPECT_EQ(f.reviewer->calls, calls) << "second call must hit the cache";
  EXPECT_EQ(f.reviewer->last_audience, "ashiato");
  f.reviewer->fail = true;
  EXPECT_EQ(auth.Authenticate("Bearer fresh").status().code(), StatusCode::kUnavailable);
}

TEST(AuthTest, NodeBinding) {
  AgentIdentity bound{"u", "node-1"};
  EXPECT_TRUE(Authenticator::AuthorizeNode(bound, "node-1").ok());
  EXPECT_EQ(Authenticator::AuthorizeNode(bound, "node-2").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Authenticator::AuthorizeNode(AgentIdentity{"u", ""}, "node-2").ok());
}

TEST(AuthTest, TokenBoundToNoPodIsRefusedUnlessAllowed) {
  Fixture strict;
  auto r = strict.auth->Authenticate("Bearer agent");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("--allow-unbound-agent-tokens"), std::string::npos);
  Fixture lax(AllowUnbound());
  auto ok = lax.auth->Authenticate("Bearer agent");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->node_name, "");
}

TEST(AuthTest, NodeNameExtraBindsWithoutALookup) {
  // Kubernetes >= 1.30.
  Fixture f;
  auto r = f.auth->Authenticate("Bearer agent-node1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->node_name, "node-1");
  EXPECT_EQ(f.pods->calls, 0);
}

TEST(AuthTest, PodBoundTokenIsBoundToThePodsNode) {
  // Kubernetes 1.25-1.29: only pod-name and pod-uid.
  Fixture f;
  auto r = f.auth->Authenticate("Bearer pod:agent-a:uid-a");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->node_name, "node-2");
  EXPECT_EQ(f.pods->calls, 1);
  EXPECT_EQ(Authenticator::AuthorizeNode(*r, "node-1").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Authenticator::AuthorizeNode(*r, "node-2").ok());
  // The token is cached: no second review, no second lookup.
  int reviews = f.reviewer->calls;
  ASSERT_TRUE(f.auth->Authenticate("Bearer pod:agent-a:uid-a").ok());
  EXPECT_EQ(f.reviewer->calls, reviews);
  EXPECT_EQ(f.pods->calls, 1);
}

TEST(AuthTest, PodCacheIsByUid) {
  Fixture f;
  ASSERT_TRUE(f.auth->Authenticate("Bearer pod:agent-a:uid-a:1").ok());
  EXPECT_EQ(f.pods->calls, 1);
  // The kubelet rotated the token: a new review, but the pod (same uid) is
  // not looked up again; a pod never changes node.
  auto rotated = f.auth->Authenticate("Bearer pod:agent-a:uid-a:2");
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->node_name, "node-2");
  EXPECT_EQ(f.pods->calls, 1);
}

TEST(AuthTest, PodUidMismatchIsRefused) {
  // The pod was recreated under the same name: the token is the old pod's.
  Fixture f;
  auto r = f.auth->Authenticate("Bearer pod:agent-a:uid-old");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("uid-old"), std::string::npos);
  auto gone = f.auth->Authenticate("Bearer pod:agent-gone:uid-g");
  EXPECT_EQ(gone.status().code(), StatusCode::kPermissionDenied);
  auto unscheduled = f.auth->Authenticate("Bearer pod:agent-u:uid-u");
  EXPECT_EQ(unscheduled.status().code(), StatusCode::kPermissionDenied);
}

TEST(AuthTest, PodLookupFailureIsUnavailableAndNotCached) {
  Fixture f;
  f.pods->fail = true;
  EXPECT_EQ(f.auth->Authenticate("Bearer pod:agent-a:uid-a").status().code(),
            StatusCode::kUnavailable);
  f.pods->fail = false;
  auto r = f.auth->Authenticate("Bearer pod:agent-a:uid-a");
  ASSERT_TRUE(r.ok()) << "a transient failure must not be remembered";
  EXPECT_EQ(r->node_name, "node-2");
}

TEST(AuthTest, CacheIsKeyedByHashAndBounded) {
  AuthOptions o = AllowUnbound();
  o.max_cache_entries = 3;
  Fixture f(o);
  std::vector<std::string> tokens;
  for (int i = 0; i < 10; ++i) tokens.push_back("junk-token-secret-" + std::to_string(i));
  tokens.push_back("agent");
  for (const auto& t : tokens) {
    auto r = f.auth->Authenticate("Bearer " + t);
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().find(t), std::string::npos)
          << "a token in an error: " << r.status().message();
    }
    auto keys = f.auth->CacheKeysForTest();
    EXPECT_LE(keys.size(), 3u);
    for (const auto& k : keys) {
      EXPECT_EQ(k.size(), 64u);
      EXPECT_EQ(k.find_first_not_of("0123456789abcdef"), std::string::npos);
      for (const auto& tok : tokens) EXPECT_EQ(k.find(tok), std::string::npos);
    }
  }
  auto keys = f.auth->CacheKeysForTest();
  EXPECT_NE(std::find(keys.begin(), keys.end(), Sha256Hex("agent")), keys.end());
}

TEST(AuthTest, ServiceAccountNamespace) {
  EXPECT_EQ(ServiceAccountNamespace(kAgent), "ashiato");
  EXPECT_EQ(ServiceAccountNamespace("alice"), "");
  EXPECT_EQ(ServiceAccountNamespace("system:serviceaccount:"), "");
}

TEST(TokenReviewTest, ParsesApiAnswer) {
  auto body = KubeTokenReviewer::RequestBody("tok", "ashiato");
  EXPECT_EQ(body["spec"]["token"], "tok");
  EXPECT_EQ(body["spec"]["audiences"][0], "ashiato");
  EXPECT_FALSE(KubeTokenReviewer::RequestBody("tok", "")["spec"].contains("audiences"));
  // Kubernetes >= 1.30.
  auto answer = nlohmann::json::parse(R"({
    "apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",
    "status":{"authenticated":true,"audiences":["ashiato"],
      "user":{"username":"system:serviceaccount:ashiato:ashiato-agent","uid":"1",
        "groups":["system:serviceaccounts","system:serviceaccounts:ashiato","system:authenticated"],
        "extra":{"authentication.kubernetes.io/node-name":["node-3"],
                 "authentication.kubernetes.io/pod-name":["agent-x"],
                 "authentication.kubernetes.io/pod-uid":["u-x"]}}}})");
  auto r = KubeTokenReviewer::ParseResponse(answer, "ashiato");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->authenticated);
  EXPECT_EQ(r->node_name, "node-3");
  EXPECT_EQ(r->pod_name, "agent-x");
  EXPECT_EQ(r->pod_uid, "u-x");
  EXPECT_EQ(r->uid, "1");
  EXPECT_EQ(r->groups.size(), 3u);
  EXPECT_EQ(r->extra.size(), 3u);
  // Kubernetes 1.25-1.29: exactly pod-name and pod-uid.
  auto old = KubeTokenReviewer::ParseResponse(nlohmann::json::parse(R"({
    "status":{"authenticated":true,"audiences":["ashiato"],
      "user":{"username":"system:serviceaccount:ashiato:ashiato-agent",
        "extra":{"authentication.kubernetes.io/pod-name":["agent-y"],
                 "authentication.kubernetes.io/pod-uid":["u-y"]}}}})"),
                                              "ashiato");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->node_name, "");
  EXPECT_EQ(old->pod_name, "agent-y");
  EXPECT_EQ(old->pod_uid, "u-y");
  // An answer for another audience is a rejection.
  auto wrong = KubeTokenReviewer::ParseResponse(answer, "vault");
  ASSERT_TRUE(wrong.ok());
  EXPECT_FALSE(wrong->authenticated);
  auto no = KubeTokenReviewer::ParseResponse(
      nlohmann::json::parse(R"({"status":{"authenticated":false,"error":"expired"}})"), "ashiato");
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(no->authenticated);
  EXPECT_EQ(no->error, "expired");
  EXPECT_FALSE(KubeTokenReviewer::ParseResponse(nlohmann::json::object(), "a").ok());
}

}  // namespace
}  // namespace ashiato
