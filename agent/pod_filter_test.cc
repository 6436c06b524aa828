#include "agent/pod_filter.h"

#include <gtest/gtest.h>

namespace ashiato {
namespace {

PodRecord Pod(const std::string& ns, const std::string& name) {
  PodRecord r;
  r.namespace_ = ns;
  r.name = name;
  return r;
}

TEST(PodFilterTest, EmptyMatchesAll) { EXPECT_TRUE(PodFilter({}, "").Matches(Pod("a", "b"))); }

TEST(PodFilterTest, NamespaceExactAndGlob) {
  PodFilter f({"default", "*-system"}, "");
  EXPECT_TRUE(f.Matches(Pod("default", "x")));
  EXPECT_TRUE(f.Matches(Pod("kube-system", "x")));
  EXPECT_FALSE(f.Matches(Pod("team-a", "x")));
  EXPECT_FALSE(f.Matches(Pod("defaults", "x")));
  EXPECT_FALSE(f.Matches(Pod("kube-system-x", "x")));
}

TEST(PodFilterTest, NamePrefix) {
  PodFilter f({"team-?"}, "web-");
  EXPECT_TRUE(f.Matches(Pod("team-a", "web-1")));
  EXPECT_FALSE(f.Matches(Pod("team-a", "db-1")));
  EXPECT_FALSE(f.Matches(Pod("team-ab", "web-1")));
}

}  // namespace
}  // namespace ashiato
