#include "tests/kubesim/patch.h"

#include <gtest/gtest.h>

#include "tests/kubesim/protobuf.h"

namespace kubesim {
namespace {

using json = nlohmann::json;

TEST(PatchTest, StrategicMergesListsByKey) {
  json pod = {{"status",
               {{"conditions",
                 {{{"type", "Ready"}, {"status", "False"}},
                  {{"type", "PodScheduled"}, {"status", "True"}}}}}}};
  StrategicMergePatch(pod,
                      {{"status", {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}});
  ASSERT_EQ(pod["status"]["conditions"].size(), 2u);
  EXPECT_EQ(pod["status"]["conditions"][0]["status"], "True");
  StrategicMergePatch(pod,
                      {{"status", {{"conditions", {{{"type", "Ready"}, {"$patch", "delete"}}}}}}});
  EXPECT_EQ(pod["status"]["conditions"].size(), 1u);
  StrategicMergePatch(
      pod, {{"metadata", {{"labels", {{"a", "b"}}}}}, {"$setElementOrder/x", json::array()}});
  EXPECT_EQ(pod["metadata"]["labels"]["a"], "b");
  EXPECT_FALSE(pod.contains("$setElementOrder/x"));
  StrategicMergePatch(pod, {{"metadata", {{"labels", {{"a", nullptr}}}}}});
  EXPECT_FALSE(pod["metadata"]["labels"].contains("a"));
}

TEST(PatchTest, MergePatchReplacesLists) {
  json o = {{"a", {1, 2}}, {"b", {{"c", 1}}}};
  MergePatch(o, {{"a", {3}}, {"b", {{"c", nullptr}, {"d", 2}}}});
  EXPECT_EQ(o, json({{"a", {3}}, {"b", {{"d", 2}}}}));
}

TEST(PatchTest, YamlBodies) {
  auto j = ParseJsonOrYaml(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: \"1\"\n  b: "
      "yes-string\n");
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["data"]["a"], "1");
  EXPECT_EQ((*j)["metadata"]["name"], "x");
  EXPECT_EQ(ParsePatchType("application/merge-patch+json; charset=utf-8"), PatchType::kMerge);
  EXPECT_FALSE(ParsePatchType("text/plain"));
}

TEST(ProtobufTest, DecodesConfigMap) {
  // k8s\0 + Unknown{typeMeta{apiVersion:"v1",kind:"ConfigMap"}, raw=ConfigMap{metadata{name:"c"},
  // data{"k":"v"}}}
  auto ld = [](int field, const std::string& s) {
    return std::string(1, static_cast<char>(field << 3 | 2)) +
           std::string(1, static_cast<char>(s.size())) + s;
  };
  std::string meta = ld(1, "c");
  std::string entry = ld(1, "k") + ld(2, "v");
  std::string raw = ld(1, meta) + ld(2, entry);
  std::string type_meta = ld(1, "v1") + ld(2, "ConfigMap");
  std::string body = std::string("k8s\0", 4) + ld(1, type_meta) + ld(2, raw);
  auto j = DecodeProtobuf(body);
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["kind"], "ConfigMap");
  EXPECT_EQ((*j)["metadata"]["name"], "c");
  EXPECT_EQ((*j)["data"]["k"], "v");
  EXPECT_FALSE(DecodeProtobuf("not protobuf"));
}

}  // namespace
}  // namespace kubesim
