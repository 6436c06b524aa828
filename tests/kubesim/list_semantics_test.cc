// PlanList against the table in the Kubernetes API docs ("Semantics for get
// and list") and the watch cache's choice of cache or etcd.
#include "tests/kubesim/list_semantics.h"

#include <gtest/gtest.h>

namespace kubesim {
namespace {

ListPlan Plan(ListParams p) {
  auto plan = PlanList(p);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  return plan.ok() ? *plan : ListPlan{};
}

int Code(ListParams p) {
  auto plan = PlanList(p);
  return plan.ok() ? 200 : plan.error().code;
}

TEST(PlanListTest, UnsetIsMostRecentFromEtcdBefore131) {
  ListPlan p = Plan({.resource_version = ""});
  EXPECT_EQ(p.semantics, ListSemantics::kMostRecent);
  EXPECT_TRUE(p.from_etcd);
  // ConsistentListFromCache (1.31+): from the cache, unless paginated.
  EXPECT_FALSE(Plan({.consistent_reads_from_cache = true}).from_etcd);
  EXPECT_TRUE(Plan({.limit = true, .consistent_reads_from_cache = true}).from_etcd);
}

TEST(PlanListTest, ZeroIsAnyFromCacheEvenWithLimit) {
  for (bool limit : {false, true}) {
    ListPlan p = Plan({.resource_version = "0", .limit = limit});
    EXPECT_EQ(p.semantics, ListSemantics::kAny);
    EXPECT_FALSE(p.from_etcd);
  }
  EXPECT_EQ(Plan({.resource_version = "0", .match = "NotOlderThan"}).semantics,
            ListSemantics::kAny);
}

TEST(PlanListTest, VersionWithoutLimitIsNotOlderThanFromCache) {
  ListPlan p = Plan({.resource_version = "42"});
  EXPECT_EQ(p.semantics, ListSemantics::kNotOlderThan);
  EXPECT_EQ(p.rv, 42u);
  EXPECT_FALSE(p.from_etcd);
  // With a limit and NotOlderThan the cache delegates to etcd.
  p = Plan({.resource_version = "42", .match = "NotOlderThan", .limit = true});
  EXPECT_EQ(p.semantics, ListSemantics::kNotOlderThan);
  EXPECT_TRUE(p.from_etcd);
}

TEST(PlanListTest, VersionWithLimitOrExactIsExactFromEtcd) {
  ListPlan p = Plan({.resource_version = "42", .limit = true});
  EXPECT_EQ(p.semantics, ListSemantics::kExact);
  EXPECT_TRUE(p.from_etcd);
  p = Plan({.resource_version = "42", .match = "Exact"});
  EXPECT_EQ(p.semantics, ListSemantics::kExact);
  EXPECT_TRUE(p.from_etcd);
}

TEST(PlanListTest, ContinueIsFromEtcd) {
  ListPlan p = Plan({.limit = true, .continue_token = true});
  EXPECT_EQ(p.semantics, ListSemantics::kContinue);
  EXPECT_TRUE(p.from_etcd);
  // "0" with a continue token is treated as the token.
  EXPECT_EQ(Plan({.resource_version = "0", .continue_token = true}).semantics,
            ListSemantics::kContinue);
}

TEST(PlanListTest, RefusedCombinations) {
  EXPECT_EQ(Code({.resource_version = "42", .continue_token = true}), 400);
  EXPECT_EQ(Code({.resource_version = "abc"}), 400);
  EXPECT_EQ(Code({.match = "NotOlderThan"}), 422);
  EXPECT_EQ(Code({.resource_version = "0", .match = "Exact"}), 422);
  EXPECT_EQ(Code({.resource_version = "42", .match = "Newest"}), 422);
  EXPECT_EQ(Code({.resource_version = "42", .match = "Exact", .continue_token = true}), 422);
}

}  // namespace
}  // namespace kubesim
