#include "tests/kubesim/selectors.h"

#include <gtest/gtest.h>

namespace kubesim {
namespace {

bool Match(const std::string& sel, std::map<std::string, std::string> labels) {
  auto s = ParseLabelSelector(sel);
  EXPECT_TRUE(s.ok()) << sel << ": " << s.error().message;
  return s.ok() && s->Matches(labels);
}

TEST(LabelSelectorTest, WrapsCommonParserWithApiErrors) {
  // The syntax itself is tested in common/label_selector_test.cc.
  EXPECT_TRUE(Match("app in (web, api),tier", {{"app", "api"}, {"tier", "x"}}));
  auto bad = ParseLabelSelector("app in web");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, 400);
}

TEST(FieldSelectorTest, PodFields) {
  nlohmann::json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", "p"}, {"namespace", "ns"}, {"resourceVersion", "5"}}},
      {"spec", {{"nodeName", "node-2"}}},
      {"status", {{"phase", "Running"}}}};
  ObjectPtr o = MakeObject(Kind::kPod, pod);
  auto m = [&](const std::string& s) {
    auto f = FieldSelector::Parse(s, Kind::kPod);
    EXPECT_TRUE(f.ok()) << s;
    return f->Matches(*o);
  };
  EXPECT_TRUE(m("spec.nodeName=node-2"));
  EXPECT_TRUE(m("spec.nodeName==node-2,metadata.namespace=ns"));
  EXPECT_FALSE(m("spec.nodeName!=node-2"));
  EXPECT_TRUE(m("status.phase!=Pending,metadata.name=p"));
  EXPECT_FALSE(m("spec.nodeName="));
  EXPECT_EQ(FieldSelector::Parse("spec.nodeName=node-2", Kind::kPod)->Exact("spec.nodeName"),
            "node-2");
  auto bad = FieldSelector::Parse("spec.foo=x", Kind::kPod);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "field label not supported: spec.foo");
  EXPECT_FALSE(FieldSelector::Parse("spec.nodeName=x", Kind::kConfigMap).ok());
}

}  // namespace
}  // namespace kubesim
