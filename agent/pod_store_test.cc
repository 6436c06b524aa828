#include "agent/pod_store.h"

#include <gtest/gtest.h>

namespace ashiato {
namespace {

PodRecord Pod(const std::string& name, const std::string& rv,
              const std::string& phase = "Running") {
  PodRecord r;
  r.uid = "uid-" + name;
  r.namespace_ = "default";
  r.name = name;
  r.phase = phase;
  r.resource_version = rv;
  return r;
}

std::vector<std::string> Describe(const std::vector<PodChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(c.event + " " + c.record.name);
  return out;
}

TEST(PodStoreTest, FirstListIsSyncLaterListsDiff) {
  PodStore store;
  EXPECT_EQ(Describe(store.Replace({Pod("b", "1"), Pod("a", "2")}, true)),
            (std::vector<std::string>{"SYNC a", "SYNC b"}));
  // b unchanged but newer RV, a changed, c new, nothing for b.
  auto changes = store.Replace({Pod("b", "5"), Pod("a", "6", "Failed"), Pod("c", "7")}, false);
  EXPECT_EQ(Describe(changes), (std::vector<std::string>{"UPDATED a", "CREATED c"}));
  changes = store.Replace({Pod("c", "7")}, false);
  EXPECT_EQ(Describe(changes), (std::vector<std::string>{"DELETED a", "DELETED b"}));
  EXPECT_EQ(store.size(), 1u);
}

TEST(PodStoreTest, ApplyEmitsOnlyObservableChanges) {
  PodStore store;
  auto c = store.Apply("ADDED", Pod("a", "1", "Pending"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->event, "CREATED");
  EXPECT_FALSE(store.Apply("MODIFIED", Pod("a", "2", "Pending")));  // Bare RV bump.
  EXPECT_FALSE(store.Apply("ADDED", Pod("a", "3", "Pending")));     // Replayed ADDED.
  c = store.Apply("MODIFIED", Pod("a", "4", "Running"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->event, "UPDATED");
  EXPECT_EQ(c->record.resource_version, "4");
  PodRecord terminating = Pod("a", "5");
  terminating.deletion_timestamp = "2026-11-24T04:00:00Z";
  c = store.Apply("MODIFIED", terminating);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->event, "UPDATED");
  EXPECT_EQ(c->record.deletion_timestamp, "2026-11-24T04:00:00Z");
  c = store.Apply("DELETED", Pod("a", "6"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->event, "DELETED");
  EXPECT_FALSE(store.Apply("DELETED", Pod("a", "7")));  // Already gone.
  EXPECT_FALSE(store.Apply("BOOKMARK", Pod("a", "8")));
  EXPECT_EQ(store.size(), 0u);
}

TEST(PodStoreTest, MissingFromStoreModifiedIsCreated) {
  PodStore store;
  auto c = store.Apply("MODIFIED", Pod("x", "1"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->event, "CREATED");
  EXPECT_EQ(store.All().size(), 1u);
}

}  // namespace
}  // namespace ashiato
