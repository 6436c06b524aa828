#include "aggregator/cm_key.h"

#include <gtest/gtest.h>

namespace ashiato {
namespace {

TEST(ConfigMapKeyTest, ValidKeys) {
  EXPECT_TRUE(IsValidConfigMapKey("default_web-0"));
  EXPECT_TRUE(IsValidConfigMapKey("a.b-c_D9"));
  EXPECT_TRUE(IsValidConfigMapKey(std::string(253, 'a')));
  EXPECT_FALSE(IsValidConfigMapKey(std::string(254, 'a')));
  EXPECT_FALSE(IsValidConfigMapKey(""));
  EXPECT_FALSE(IsValidConfigMapKey("."));
  EXPECT_FALSE(IsValidConfigMapKey(".."));
  EXPECT_FALSE(IsValidConfigMapKey("..a"));
  EXPECT_FALSE(IsValidConfigMapKey("a/b"));
  EXPECT_FALSE(IsValidConfigMapKey("a b"));
  EXPECT_FALSE(IsValidConfigMapKey("caf\xc3\xa9"));
}

TEST(ConfigMapKeyTest, GeneratedNamesAreRecognised) {
  EXPECT_TRUE(KeyHasGeneratedName("default_web-7d4b9c8f6d-6x9qd"));  // ReplicaSet pod.
  EXPECT_TRUE(KeyHasGeneratedName("kube-system_kube-proxy-z2v8k"));  // DaemonSet pod.
  EXPECT_FALSE(KeyHasGeneratedName("team-a_db-0"));                  // StatefulSet pod.
  EXPECT_FALSE(KeyHasGeneratedName("team-a_db-12345"));    // 1 and 3 are not in the alphabet.
  EXPECT_FALSE(KeyHasGeneratedName("default_web-abcde"));  // Nor are vowels.
  EXPECT_FALSE(KeyHasGeneratedName("default_web-6x9q"));   // Four characters.
  EXPECT_FALSE(KeyHasGeneratedName("default_6x9qd"));      // No '-' before the suffix.
  EXPECT_FALSE(KeyHasGeneratedName("-6x9qd"));
  EXPECT_FALSE(KeyHasGeneratedName(MakePodKey("ns", std::string(300, 'p') + "-6x9qd").key));
}

TEST(ConfigMapKeyTest, PlainKeyWhenValid) {
  PodKey k = MakePodKey("default", "web-0");
  EXPECT_EQ(k.key, "default_web-0");
  EXPECT_FALSE(k.fallback());
  // Longest plain key: 253 bytes exactly.
  std::string name(253 - 1 - 3, 'p');
  PodKey longest = MakePodKey("kub", name);
  EXPECT_EQ(longest.key, "kub_" + name);
  EXPECT_FALSE(longest.fallback());
}

TEST(ConfigMapKeyTest, LongNamesFallBackWithoutCollisions) {
  std::string ns(63, 'n');
  std::string name_a = std::string(252, 'x') + "a";
  std::string name_b = std::string(252, 'x') + "b";
  PodKey a = MakePodKey(ns, name_a);
  PodKey b = MakePodKey(ns, name_b);
  EXPECT_TRUE(a.fallback());
  EXPECT_TRUE(IsValidConfigMapKey(a.key)) << a.key;
  EXPECT_TRUE(IsValidConfigMapKey(b.key));
  EXPECT_EQ(a.key.size(), 253u);
  EXPECT_NE(a.key, b.key);
  EXPECT_EQ(a.full_name, ns + "/" + name_a);
  // Readable prefix, then "__" and 32 hex digits.
  EXPECT_EQ(a.key.substr(0, 64), ns + "_");
  size_t sep = a.key.rfind("__");
  ASSERT_NE(sep, std::string::npos);
  EXPECT_EQ(a.key.size() - sep - 2, 32u);
  // Deterministic.
  EXPECT_EQ(MakePodKey(ns, name_a).key, a.key);
}

TEST(ConfigMapKeyTest, OddCharactersFallBackAndNeverCollideWithPlainKeys) {
  // '_' is not DNS-1123: "a_b"/"c" and "a"/"b_c" must stay distinct.
  PodKey x = MakePodKey("a_b", "c");
  PodKey y = MakePodKey("a", "b_c");
  EXPECT_TRUE(x.fallback());
  EXPECT_TRUE(y.fallback());
  EXPECT_NE(x.key, y.key);
  EXPECT_TRUE(IsValidConfigMapKey(x.key));
  EXPECT_EQ(x.key.find("__") != std::string::npos, true);
  PodKey odd = MakePodKey("ns", "caf\xc3\xa9 pod/1");
  EXPECT_TRUE(odd.fallback());
  EXPECT_TRUE(IsValidConfigMapKey(odd.key)) << odd.key;
  PodKey dots = MakePodKey("..", "x");
  EXPECT_TRUE(IsValidConfigMapKey(dots.key)) << dots.key;
  // A plain key has exactly one '_', a fallback key "__": never equal.
  EXPECT_EQ(MakePodKey("ns", "pod").key.find("__"), std::string::npos);
}

TEST(ConfigMapValueTest, NewestNodeFirstWithoutDuplicates) {
  std::string v = AddNodeToValue("", "node-a", "");
  EXPECT_EQ(v, "node-a");
  v = AddNodeToValue(v, "node-a", "");
  EXPECT_EQ(v, "node-a");
  v = AddNodeToValue(v, "node-b", "");
  EXPECT_EQ(v, "node-b,node-a");
  v = AddNodeToValue(v, "node-a", "");
  EXPECT_EQ(v, "node-a,node-b");
  EXPECT_EQ(AddNodeToValue("x", "bad,node|1", ""), "bad_node_1,x");
}

TEST(ConfigMapValueTest, FallbackValuesCarryTheFullName) {
  std::string v = AddNodeToValue("", "node-a", "ns/long");
  EXPECT_EQ(v, "node-a|ns/long");
  v = AddNodeToValue(v, "node-b", "ns/long");
  EXPECT_EQ(v, "node-b,node-a|ns/long");
  NodeList list = ParseValue(v);
  EXPECT_EQ(list.nodes, (std::vector<std::string>{"node-b", "node-a"}));
  EXPECT_EQ(list.full_name, "ns/long");
  EXPECT_EQ(FormatValue(list), v);
}

TEST(ConfigMapValueTest, MergeIsAUnionThatKeepsOurOrder) {
  EXPECT_EQ(MergeValues("node-b,node-a", "node-c,node-a"), "node-b,node-a,node-c");
  EXPECT_EQ(MergeValues("node-a", "node-a"), "node-a");
  EXPECT_EQ(MergeValues("", "node-a"), "node-a");
  EXPECT_EQ(MergeValues("node-a|ns/p", "node-b|ns/p"), "node-a,node-b|ns/p");
  EXPECT_EQ(MergeValues("node-a", "node-b|ns/p"), "node-a,node-b|ns/p");
}

}  // namespace
}  // namespace ashiato
