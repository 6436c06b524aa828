#include "common/label_selector.h"

#include <gtest/gtest.h>

namespace ashiato {
namespace {

bool M(const std::string& sel, const std::map<std::string, std::string>& labels) {
  auto s = LabelSelector::Parse(sel);
  EXPECT_TRUE(s.ok()) << sel << ": " << s.status().ToString();
  return s.ok() && s->Matches(labels);
}

TEST(LabelSelectorTest, Operators) {
  std::map<std::string, std::string> l = {{"app", "web"}, {"tier", "front"}};
  EXPECT_TRUE(M("", l));
  EXPECT_TRUE(M("app=web", l));
  EXPECT_TRUE(M("app==web", l));
  EXPECT_FALSE(M("app=db", l));
  EXPECT_TRUE(M("app!=db", l));
  EXPECT_TRUE(M("missing!=x", l));
  EXPECT_TRUE(M("app", l));
  EXPECT_FALSE(M("!app", l));
  EXPECT_TRUE(M("!missing", l));
  EXPECT_TRUE(M("tier in (front, back)", l));
  EXPECT_FALSE(M("tier notin (front)", l));
  EXPECT_TRUE(M("app=web, tier in (front),!missing", l));
  EXPECT_FALSE(M("app=web,tier=back", l));
  EXPECT_TRUE(M("app.kubernetes.io/name!=x", l));
}

TEST(LabelSelectorTest, Errors) {
  for (const char* bad :
       {"app in (a", "app)", ",", "a b in (x)x", "app in ()", "bad key=1", "app foo (x)"}) {
    EXPECT_FALSE(LabelSelector::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace ashiato
