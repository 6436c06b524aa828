#include "aggregator/intern_table.h"

#include <gtest/gtest.h>

#include <string>

#include "aggregator/stored_pod.h"

namespace ashiato {
namespace {

TEST(InternTableTest, EqualStringsShareOneIdUntilTheLastReferenceGoes) {
  InternTable t;
  uint32_t a = t.Acquire("kube-system");
  uint32_t b = t.Acquire(std::string("kube-") + "system");
  EXPECT_EQ(a, b);
  EXPECT_EQ(t.Get(a), "kube-system");
  EXPECT_EQ(t.refs(a), 2u);
  EXPECT_EQ(t.size(), 1u);
  uint32_t c = t.Acquire("default");
  EXPECT_NE(c, a);
  t.Release(a);
  EXPECT_EQ(t.Get(b), "kube-system");  // Still held once.
  t.Release(b);
  EXPECT_EQ(t.refs(a), 0u);
  EXPECT_EQ(t.size(), 1u);
  // The freed id is reused, and the old string is not found any more.
  uint32_t d = t.Acquire("team-a");
  EXPECT_EQ(d, a);
  EXPECT_EQ(t.Get(d), "team-a");
  EXPECT_EQ(t.Acquire("kube-system"), a + 2);  // A new id: the old one is taken.
  EXPECT_EQ(t.Get(c), "default");
}

TEST(InternTableTest, EmptyStringIsNeverCounted) {
  InternTable t;
  EXPECT_EQ(t.Acquire(""), InternTable::kEmpty);
  t.Release(InternTable::kEmpty);
  t.Release(InternTable::kEmpty);
  EXPECT_EQ(t.Get(InternTable::kEmpty), "");
  EXPECT_EQ(t.size(), 0u);
}

TEST(InternTableTest, ManyStringsKeepTheirTextWhileTheTableGrows) {
  InternTable t;
  std::vector<uint32_t> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back(t.Acquire("s" + std::to_string(i)));
  for (int i = 0; i < 10000; ++i) EXPECT_EQ(t.Get(ids[i]), "s" + std::to_string(i));
  for (uint32_t id : ids) t.Release(id);
  EXPECT_EQ(t.size(), 0u);
}

TEST(InternTableTest, InternedStringHoldsOneReference) {
  InternTable t;
  {
    InternedString a(&t, "epoch-1");
    InternedString b(&t, "epoch-1");
    EXPECT_EQ(a.view(), "epoch-1");
    EXPECT_EQ(t.size(), 1u);
    InternedString c = std::move(a);
    EXPECT_EQ(a.view(), "");
    EXPECT_TRUE(c == "epoch-1");
    b = InternedString(&t, "epoch-2");
    EXPECT_EQ(t.size(), 2u);
  }
  EXPECT_EQ(t.size(), 0u);
}

PodRecord FullPod() {
  PodRecord p;
  p.uid = "3f2a9c1e-5b7d-4e0a-9c8b-1d2e3f4a5b6c";
  p.namespace_ = "team-a";
  p.name = "web-7d4b9c8f6d-x8k2p";
  p.node_name = "ip-10-0-1-17.eu-west-1.compute.internal";
  p.phase = "Running";
  p.creation_timestamp = "2026-11-24T03:00:00Z";
  p.deletion_timestamp = "2026-11-24T04:00:00.5+01:00";  // Kept as written.
  p.pod_ip = "10.64.1.2";
  p.pod_ips = {"10.64.1.2", "fd00::2"};
  p.host_ip = "10.0.1.17";
  p.owner_kind = "ReplicaSet";
  p.owner_name = "web-7d4b9c8f6d";
  p.owner_inferred = true;
  p.conditions = {{"Ready", "True", "2026-11-24T03:00:04Z"},
                  {"PodScheduled", "True", "1969-12-31T23:59:59Z"},  // Before the epoch.
                  {"Initialized", "False", "not a time"}};
  p.containers = {{"app", "nginx:1.27", "docker.io/library/nginx@sha256:0f0a"},
                  {"sidecar", "nginx:1.27", ""}};
  p.labels = {{"app", "web"}, {"pod-template-hash", "7d4b9c8f6d"}, {"empty", ""}};
  p.annotations = {{"a/b", "some value"}, {"c", ""}};
  p.resource_version = "123456";
  return p;
}

TEST(StoredPodTest, UnpackGivesBackEveryField) {
  InternTable t;
  PodRecord p = FullPod();
  StoredPod s = StoredPod::Pack(p, &t);
  PodRecord q = s.Unpack();
  EXPECT_EQ(PodRecordToLogJson(q), PodRecordToLogJson(p));
  EXPECT_EQ(q.resource_version, p.resource_version);
  EXPECT_EQ(q.annotations, p.annotations);
  EXPECT_EQ(q.owner_inferred, p.owner_inferred);
  EXPECT_EQ(s.uid(), p.uid);
  EXPECT_EQ(s.name(), p.name);
  EXPECT_EQ(s.namespace_(), p.namespace_);
  EXPECT_EQ(s.Get(StoredPod::kNode), p.node_name);
  EXPECT_EQ(s.Get(StoredPod::kPhase), p.phase);
  EXPECT_EQ(s.Key(), "team-a/web-7d4b9c8f6d-x8k2p");
  EXPECT_EQ(s.resource_version(), "123456");
  // A timestamp in Kubernetes' form is packed as a number, any other as written.
  PodRecord fraction = p;
  fraction.creation_timestamp = "2026-11-24T03:00:00.5Z";
  StoredPod f = StoredPod::Pack(fraction, &t);
  EXPECT_EQ(f.Unpack().creation_timestamp, "2026-11-24T03:00:00.5Z");
  EXPECT_GT(f.packed_size(), s.packed_size() + 15);
}

TEST(StoredPodTest, SameObservableStateIgnoresTheResourceVersionOnly) {
  InternTable t;
  PodRecord p = FullPod();
  StoredPod a = StoredPod::Pack(p, &t);
  p.resource_version = "123457";
  StoredPod b = StoredPod::Pack(p, &t);
  EXPECT_TRUE(a.SameObservableState(b));
  p.labels["app"] = "web2";
  StoredPod c = StoredPod::Pack(p, &t);
  EXPECT_FALSE(a.SameObservableState(c));
  p = FullPod();
  p.conditions[0].last_transition_time = "2026-11-24T03:00:05Z";
  EXPECT_FALSE(a.SameObservableState(StoredPod::Pack(p, &t)));
}

TEST(StoredPodTest, ReleasesItsStringsOnceWhenDestroyedOrMovedFrom) {
  InternTable t;
  {
    StoredPod a = StoredPod::Pack(FullPod(), &t);
    size_t held = t.size();
    EXPECT_GT(held, 10u);
    StoredPod b = StoredPod::Pack(FullPod(), &t);
    EXPECT_EQ(t.size(), held);  // Shared, not copied.
    StoredPod c = std::move(a);
    EXPECT_TRUE(a.empty());
    b = std::move(c);  // b's own references are released here.
    EXPECT_EQ(t.size(), held);
    EXPECT_EQ(b.Unpack().labels.at("app"), "web");
  }
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace ashiato
