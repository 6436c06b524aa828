#include "aggregator/cm_shard.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "aggregator/cm_key.h"

namespace ashiato {
namespace {

// 2026-11-24T03:00:00Z.
const HourIndex kHour = *ParseHourLabel("2026112403");

TEST(HourTest, LabelsAndNames) {
  EXPECT_EQ(HourLabel(kHour), "2026112403");
  EXPECT_EQ(FormatRfc3339(HourStart(kHour)), "2026-11-24T03:00:00Z");
  EXPECT_EQ(HourOf(*ParseRfc3339("2026-11-24T03:59:59Z")), kHour);
  EXPECT_EQ(HourOf(*ParseRfc3339("2026-11-24T04:00:00Z")), kHour + 1);
  EXPECT_FALSE(ParseHourLabel("2026023103"));  // February 31st.
  EXPECT_FALSE(ParseHourLabel("202611240"));
  EXPECT_FALSE(ParseHourLabel("2026112424"));
  EXPECT_EQ(ShardName(kHour, 0), "pod-ashiato-2026112403");
  EXPECT_EQ(ShardName(kHour, 12), "pod-ashiato-2026112403-12");
  auto p = ParseShardName("pod-ashiato-2026112403-12");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->hour, kHour);
  EXPECT_EQ(p->shard, 12);
  EXPECT_EQ(ParseShardName("pod-ashiato-2026112403")->shard, 0);
  EXPECT_FALSE(ParseShardName("pod-ashiato-2026112403-0"));
  EXPECT_FALSE(ParseShardName("pod-ashiato-2026112403-01"));
  EXPECT_FALSE(ParseShardName("pod-ashiato-2026112403-"));
  EXPECT_FALSE(ParseShardName("pod-ashiato-2026112403x"));
  EXPECT_FALSE(ParseShardName("other-2026112403"));
}

std::string PodName(int i) {
  return "workload-" + std::to_string(i / 30) + "-7d9f8c6b5-" + std::to_string(i);
}
std::string Ns(int i) { return "team-" + std::to_string(i % 200); }
std::string Node(int i) { return "ip-10-0-" + std::to_string(i % 5000) + ".ec2.internal"; }

size_t DataBytes(const nlohmann::json& cm) {
  size_t n = 0;
  for (auto& [k, v] : cm["data"].items()) n += k.size() + v.get<std::string>().size();
  return n;
}

// A cluster as pods are named: 1 in 20 a StatefulSet pod ("db-7-2"), the
// rest ReplicaSet pods with generateName's 5-character suffix.
std::string GeneratedSuffix(int i) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (int d = 0; d < 5; ++d, i /= 27) out += kAlphabet[i % 27];
  return out;
}
std::string RealisticName(int i) {
  if (i % 20 == 0) return "db-" + std::to_string(i / 60) + "-" + std::to_string(i / 20 % 3);
  return "web-" + std::to_string(i / 30) + "-7d9f8c6b5-" + GeneratedSuffix(i);
}

// A ReplicaSet pod created during the hour.
std::string NewPodName(int i) { return "api-7c9d8b6f5-" + GeneratedSuffix(i); }

// Writes every dirty shard; returns the bytes sent.
size_t WriteAll(ShardedHour& hour, std::vector<int>* written = nullptr) {
  size_t bytes = 0;
  for (int s : hour.DirtyShards()) {
    auto req = hour.BuildWrite(s, "ns");
    bytes += req.config_map.dump().size();
    hour.Written(s, req.generation, "rv");
    if (written) written->push_back(s);
  }
  return bytes;
}

TEST(ShardedHourTest, ScaleStaysUnderLimitAndUnionIsThePodSet) {
  ShardLimits limits;
  ShardedHour hour(kHour, limits);
  const int kPods = 150000;
  std::set<std::string> want;
  for (int i = 0; i < kPods; ++i) {
    PodKey k = MakePodKey(Ns(i), RealisticName(i));
    hour.Record(k.key, Node(i), k.full_name);
    want.insert(k.key);
  }
  hour.Place();
  // ~9.4 MB: ~14 large shards, and the StatefulSet pods in small ones.
  EXPECT_GT(hour.shard_count(), 10);
  EXPECT_LE(hour.shard_count(), 40 + limits.max_small_shards);
  std::set<std::string> got;
  size_t entries = 0;
  for (int s : hour.DirtyShards()) {
    auto req = hour.BuildWrite(s, "default");
    EXPECT_TRUE(req.create);
    size_t object = req.config_map.dump().size();
    EXPECT_LE(object, limits.max_bytes) << "shard " << s;
    EXPECT_LE(DataBytes(req.config_map), 1024u * 1024u);
    for (auto& [k, v] : req.config_map["data"].items()) {
      got.insert(k);
      ++entries;
    }
  }
  EXPECT_EQ(entries, want.size());  // Each key in exactly one shard.
  EXPECT_EQ(got, want);
}

TEST(ShardedHourTest, PlacementIsDeterministicAndSticky) {
  ShardedHour a(kHour, {}), b(kHour, {});
  const int kPods = 30000;
  for (int i = 0; i < kPods; ++i) a.Record(MakePodKey(Ns(i), PodName(i)).key, Node(i), "");
  for (int i = kPods - 1; i >= 0; --i) b.Record(MakePodKey(Ns(i), PodName(i)).key, Node(i), "");
  a.Place();
  b.Place();
  ASSERT_EQ(a.shard_count(), b.shard_count());
  for (int s = 0; s < a.shard_count(); ++s) EXPECT_EQ(a.shard_data(s), b.shard_data(s));

  for (int s : a.DirtyShards()) a.Written(s, a.BuildWrite(s, "ns").generation, "1");
  EXPECT_TRUE(a.DirtyShards().empty());
  // One pod moving dirties exactly the shard that holds it.
  std::string key = MakePodKey(Ns(7), PodName(7)).key;
  a.Record(key, "node-new", "");
  a.Place();
  ASSERT_EQ(a.DirtyShards().size(), 1u);
  EXPECT_EQ(*a.Lookup(key), "node-new," + Node(7));
  // Re-recording the same node changes nothing.
  int s = a.DirtyShards()[0];
  a.Written(s, a.BuildWrite(s, "ns").generation, "2");
  a.Record(key, "node-new", "");
  a.Place();
  EXPECT_TRUE(a.DirtyShards().empty());
}

TEST(ShardedHourTest, GrowingValuesMoveKeysOutOfAFullShard) {
  ShardLimits limits;
  limits.max_bytes = 64 * 1024;
  ShardedHour hour(kHour, limits);
  for (int i = 0; i < 800; ++i) hour.Record("ns_pod-" + std::to_string(i), "node-0", "");
  hour.Place();
  int before = hour.shard_count();
  // Every pod visits 20 more nodes: values grow ~10x.
  for (int n = 1; n <= 20; ++n) {
    for (int i = 0; i < 800; ++i) {
      hour.Record("ns_pod-" + std::to_string(i), "node-" + std::to_string(n), "");
    }
    hour.Place();
  }
  EXPECT_GT(hour.shard_count(), before);
  size_t keys = 0;
  for (int s = 0; s < hour.shard_count(); ++s) {
    EXPECT_LE(hour.shard_bytes(s) + kShardMetadataBytes, limits.max_bytes);
    keys += hour.shard_data(s).size();
  }
  EXPECT_EQ(keys, 800u);
  EXPECT_EQ(ParseValue(*hour.Lookup("ns_pod-5")).nodes.size(), 21u);
  EXPECT_EQ(ParseValue(*hour.Lookup("ns_pod-5")).nodes.front(), "node-20");
}

TEST(ShardedHourTest, KeysThatMayChangeGetSmallShardsFinalOnesLargeShards) {
  ShardLimits limits;
  ShardedHour hour(kHour, limits);
  for (int i = 0; i < 150000; ++i)
    hour.Record(MakePodKey(Ns(i), RealisticName(i)).key, Node(i), "");
  hour.Place();
  int small = 0;
  for (int s = 0; s < hour.shard_count(); ++s) {
    const auto& data = hour.shard_data(s);
    ASSERT_FALSE(data.empty()) << s;
    bool generated = KeyHasGeneratedName(data.begin()->first);
    for (const auto& [k, v] : data) EXPECT_EQ(KeyHasGeneratedName(k), generated) << k;
    if (!generated) {
      ++small;
      EXPECT_LE(hour.shard_bytes(s), 8 * 1024u) << s;  // 128 shards for ~375 KB.
    }
  }
  EXPECT_GT(small, 20);
  EXPECT_LE(small, limits.max_small_shards);
}

// The issue-15 case: in a 150,000-pod hour, a flush with 90 new pods and 20
// StatefulSet pods moved rewrites one small open shard and the small shards
// of the moved pods, never a large one (the old layout: ~12 shards, 7.5 MB).
TEST(ShardedHourTest, AFlushOfNewAndMovedPodsRewritesOnlySmallShards) {
  ShardLimits limits;
  ShardedHour hour(kHour, limits);
  const int kPods = 150000;
  for (int i = 0; i < kPods; ++i) hour.Record(MakePodKey(Ns(i), RealisticName(i)).key, Node(i), "");
  hour.Place();
  size_t initial = WriteAll(hour);
  EXPECT_GT(initial, 9000000u);
  const int initial_shards = hour.shard_count();
  int next = kPods;
  std::set<int> sealed;
  for (int flush = 0; flush < 40; ++flush) {
    for (int c = 0; c < 90; ++c, ++next) {
      hour.Record(MakePodKey(Ns(next), NewPodName(next)).key, Node(next), "");
    }
    for (int m = 0; m < 20; ++m) {
      int i = (flush * 20 + m) * 20 * 7 % kPods / 20 * 20;  // A StatefulSet pod.
      hour.Record(MakePodKey(Ns(i), RealisticName(i)).key, "moved-" + std::to_string(flush), "");
    }
    hour.Place();
    std::vector<int> written;
    size_t bytes = WriteAll(hour, &written);
    // At most 20 small shards and the open one: ~100 KB, not megabytes.
    EXPECT_LE(bytes, 20 * (8 * 1024 + 1024) + limits.append_max_bytes + 1024) << "flush " << flush;
    int opened = 0;
    for (int s : written) {
      EXPECT_FALSE(sealed.count(s)) << "sealed shard " << s << " took new keys";
      EXPECT_LE(hour.shard_bytes(s), limits.append_max_bytes) << s;
      if (s >= initial_shards) ++opened;
    }
    EXPECT_LE(opened, 2);  // The open shard, and the next one when it fills.
    for (int s = initial_shards; s + 1 < hour.shard_count(); ++s) sealed.insert(s);
  }
  EXPECT_GT(sealed.size(), 3u);  // 40 x 90 new pods filled several append shards.
}

TEST(ShardedHourTest, AppendingContinuesInTheLastShardAfterARestart) {
  ShardLimits limits;
  ShardedHour before(kHour, limits);
  for (int i = 0; i < 20000; ++i)
    before.Record(MakePodKey(Ns(i), RealisticName(i)).key, Node(i), "");
  before.Place();
  WriteAll(before);
  for (int i = 20000; i < 20100; ++i) {
    before.Record(MakePodKey(Ns(i), RealisticName(i)).key, Node(i), "");
  }
  before.Place();
  WriteAll(before);
  // A new process reads the shards back: same layout, new keys go where they
  // would have gone without the restart.
  ShardedHour after(kHour, limits);
  for (int s = 0; s < before.shard_count(); ++s) {
    after.MergeFromServer(s,
                          {{"metadata", {{"name", ShardName(kHour, s)}, {"resourceVersion", "1"}}},
                           {"data", before.shard_data(s)}});
  }
  after.Place();
  EXPECT_TRUE(after.DirtyShards().empty());
  PodKey k = MakePodKey("late", "web-1-7d9f8c6b5-bcdfg");
  before.Record(k.key, "n", "");
  after.Record(k.key, "n", "");
  before.Place();
  after.Place();
  EXPECT_EQ(after.DirtyShards(), before.DirtyShards());
  EXPECT_EQ(after.DirtyShards(), std::vector<int>{after.shard_count() - 1});
}

TEST(ShardedHourTest, AGrowingShardMovesKeysOnlyToTheOpenShard) {
  ShardLimits limits;
  limits.max_bytes = 64 * 1024;
  limits.append_max_bytes = 8 * 1024;
  ShardedHour hour(kHour, limits);
  for (int i = 0; i < 4000; ++i) hour.Record(MakePodKey(Ns(i), NewPodName(i)).key, Node(i), "");
  hour.Place();
  WriteAll(hour);
  const int before = hour.shard_count();
  ASSERT_GT(before, 3);
  // The keys of shard 1 visit many nodes: it outgrows max_bytes.
  std::vector<std::string> keys;
  for (const auto& [k, v] : hour.shard_data(1)) keys.push_back(k);
  for (int n = 0; n < 12; ++n) {
    for (const std::string& k : keys) hour.Record(k, "node-extra-" + std::to_string(n), "");
  }
  hour.Place();
  for (int s : hour.DirtyShards()) EXPECT_TRUE(s == 1 || s >= before) << s;
  EXPECT_LE(hour.shard_bytes(1) + kShardMetadataBytes, limits.max_bytes);
  size_t placed = 0;
  for (int s = 0; s < hour.shard_count(); ++s) placed += hour.shard_data(s).size();
  EXPECT_EQ(placed, 4000u);
}

nlohmann::json ServerCm(int shard, const std::string& rv, nlohmann::json data) {
  return {{"metadata", {{"name", ShardName(kHour, shard)}, {"resourceVersion", rv}}},
          {"data", std::move(data)}};
}

TEST(ShardedHourTest, MergeFromServerIsAUnion) {
  ShardedHour hour(kHour, {});
  hour.Record("ns_a", "node-1", "");
  hour.Record("ns_b", "node-2", "");
  hour.Place();
  ASSERT_EQ(hour.shard_count(), 1);
  hour.MergeFromServer(0, ServerCm(0, "77", {{"ns_b", "node-9"}, {"ns_c", "node-3"}}));
  EXPECT_EQ(*hour.Lookup("ns_a"), "node-1");
  EXPECT_EQ(*hour.Lookup("ns_b"), "node-2,node-9");
  EXPECT_EQ(*hour.Lookup("ns_c"), "node-3");
  ASSERT_EQ(hour.DirtyShards(), std::vector<int>{0});
  auto req = hour.BuildWrite(0, "default");
  EXPECT_FALSE(req.create);
  EXPECT_EQ(req.config_map["metadata"]["resourceVersion"], "77");
  EXPECT_EQ(req.config_map["data"].size(), 3u);
}

TEST(ShardedHourTest, LoadedShardThatMatchesIsClean) {
  ShardedHour hour(kHour, {});
  hour.MergeFromServer(0, ServerCm(0, "5", {{"ns_a", "node-1"}}));
  hour.MergeFromServer(2, ServerCm(2, "6", {{"ns_b", "node-2"}}));
  hour.Place();
  EXPECT_TRUE(hour.DirtyShards().empty());  // Shard 1 is empty and never created.
  EXPECT_EQ(hour.shard_count(), 3);
  // A pending key that the server already has joins the server's shard.
  hour.Record("ns_b", "node-3", "");
  hour.Place();
  EXPECT_EQ(hour.DirtyShards(), std::vector<int>{2});
  EXPECT_EQ(*hour.Lookup("ns_b"), "node-3,node-2");
}

TEST(ShardedHourTest, MetadataLabelsAndAnnotations) {
  ShardedHour hour(kHour, {});
  hour.MergeFromServer(0, {{"metadata",
                            {{"name", ShardName(kHour, 0)},
                             {"resourceVersion", "3"},
                             {"labels", {{"team", "sre"}}},
                             {"annotations", {{"note", "keep"}}}}},
                           {"data", {{"ns_a", "n1"}}}});
  hour.Record("ns_b", "n2", "");
  hour.Place();
  auto cm = hour.BuildWrite(0, "ashiato").config_map;
  EXPECT_EQ(cm["metadata"]["namespace"], "ashiato");
  EXPECT_EQ(cm["metadata"]["labels"]["app"], "pod-ashiato");
  EXPECT_EQ(cm["metadata"]["labels"]["type"], "pod-node-mapping");
  EXPECT_EQ(cm["metadata"]["labels"]["ashiato.io/hour"], "2026112403");
  EXPECT_EQ(cm["metadata"]["labels"]["team"], "sre");
  EXPECT_EQ(cm["metadata"]["annotations"]["note"], "keep");
  EXPECT_EQ(cm["metadata"]["annotations"]["ashiato.io/shard"], "0");
  EXPECT_EQ(cm["metadata"]["annotations"]["ashiato.io/hour-start"], "2026-11-24T03:00:00Z");
  EXPECT_FALSE(cm["metadata"]["labels"].contains("ashiato.io/cluster")) << "no name, no label";
  // --cluster-name: one more label; the others, and the name, unchanged.
  auto named = hour.BuildWrite(0, "ashiato", "prod-eu-1").config_map;
  EXPECT_EQ(named["metadata"]["labels"]["ashiato.io/cluster"], "prod-eu-1");
  named["metadata"]["labels"].erase("ashiato.io/cluster");
  EXPECT_EQ(named, cm);
}

TEST(ShardedHourTest, MergeKeepsTheExistingOrderAndOnlyAddsNodes) {
  ShardedHour hour(kHour, ShardLimits());
  hour.MergeFromServer(
      0, {{"metadata", {{"name", "pod-ashiato-2026112403"}, {"resourceVersion", "7"}}},
          {"data", {{"ns_a", "node-b,node-a"}}}});
  ASSERT_TRUE(hour.DirtyShards().empty());
  hour.Merge("ns_a", "node-a,node-b");  // Same set, other order: no change.
  EXPECT_TRUE(hour.DirtyShards().empty());
  EXPECT_EQ(hour.Lookup("ns_a"), "node-b,node-a");
  hour.Merge("ns_a", "node-c,node-a");
  EXPECT_EQ(hour.Lookup("ns_a"), "node-b,node-a,node-c");
  hour.Merge("ns_new", "node-x");
  hour.Merge("ns_new", "node-y,node-x");
  EXPECT_EQ(hour.Lookup("ns_new"), "node-x,node-y");
  hour.Place();
  EXPECT_EQ(hour.DirtyShards(), std::vector<int>{0});
}

TEST(ShardedHourTest, EstimatedBytesIsCloseToTheSerializedSize) {
  ShardedHour hour(kHour, ShardLimits());
  EXPECT_EQ(hour.EstimatedBytes(), 0u);
  for (int i = 0; i < 20000; ++i) {
    PodKey k = MakePodKey(Ns(i), PodName(i));
    hour.Record(k.key, Node(i), k.full_name);
  }
  size_t before_place = hour.EstimatedBytes();
  hour.Place();
  EXPECT_EQ(hour.EstimatedBytes(), before_place);
  size_t serialized = 0;
  for (int s = 0; s < hour.shard_count(); ++s) {
    serialized += hour.BuildWrite(s, "ashiato").config_map.dump().size();
  }
  EXPECT_GT(hour.shard_count(), 1);
  EXPECT_NEAR(static_cast<double>(hour.EstimatedBytes()), static_cast<double>(serialized),
              0.01 * static_cast<double>(serialized));
  EXPECT_EQ(hour.EstimatedBytes(1000), before_place + 1000);
}

}  // namespace
}  // namespace ashiato
