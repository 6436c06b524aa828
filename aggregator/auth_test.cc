#include "aggregator/auth.h"

#include <gtest/gtest.h>

#include "aggregator/token_review.h"

namespace ashiato {
namespace {

class FakeReviewer : public TokenReviewer {
 public:
  Result<TokenReviewResult> Review(const std::string& token, const std::string& audience) override {
    ++calls;
    last_audience = audience;
    if (fail) return Unavailable("connection refused");
    TokenReviewResult r;
    if (token == "agent") r = {true, "system:serviceaccount:ashiato:ashiato-agent", "", ""};
    if (token == "agent-node1") {
      r = {true, "system:serviceaccount:ashiato:ashiato-agent", "node-1", ""};
    }
    if (token == "other") r = {true, "system:serviceaccount:default:default", "", ""};
    if (token == "bad") r = {false, "", "", "invalid bearer token"};
    return r;
  }
  int calls = 0;
  bool fail = false;
  std::string last_audience;
};

TEST(AuthTest, CodesAndCache) {
  auto reviewer = std::make_unique<FakeReviewer>();
  FakeReviewer* fake = reviewer.get();
  Authenticator auth(AuthOptions{}, std::move(reviewer));
  EXPECT_EQ(auth.Authenticate("").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("Basic abc").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("Bearer bad").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("Bearer other").status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(auth.Authenticate("Bearer agent").ok());
  int calls = fake->calls;
  ASSERT_TRUE(auth.Authenticate("Bearer agent").ok());
  EXPECT_EQ(fake->calls, calls) << "second call must hit the cache";
  EXPECT_EQ(fake->last_audience, "ashiato");
  fake->fail = true;
  EXPECT_EQ(auth.Authenticate("Bearer fresh").status().code(), StatusCode::kUnavailable);
}

TEST(AuthTest, NodeBinding) {
  AgentIdentity bound{"u", "node-1"};
  EXPECT_TRUE(Authenticator::AuthorizeNode(bound, "node-1").ok());
  EXPECT_EQ(Authenticator::AuthorizeNode(bound, "node-2").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Authenticator::AuthorizeNode(AgentIdentity{"u", ""}, "node-2").ok());
}

TEST(TokenReviewTest, ParsesApiAnswer) {
  auto body = KubeTokenReviewer::RequestBody("tok", "ashiato");
  EXPECT_EQ(body["spec"]["token"], "tok");
  EXPECT_EQ(body["spec"]["audiences"][0], "ashiato");
  auto answer = nlohmann::json::parse(R"({
    "apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",
    "status":{"authenticated":true,"audiences":["ashiato"],
      "user":{"username":"system:serviceaccount:ashiato:ashiato-agent","uid":"1",
        "groups":["system:serviceaccounts"],
        "extra":{"authentication.kubernetes.io/node-name":["node-3"]}}}})");
  auto r = KubeTokenReviewer::ParseResponse(answer, "ashiato");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->authenticated);
  EXPECT_EQ(r->node_name, "node-3");
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
